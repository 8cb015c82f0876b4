"""Install the C library with plain CMake and use it from a downstream CMake project.

Checks that ``find_package(layerbraid)`` + ``layerbraid::braid`` gives a consumer the engine,
its headers and the MPI it was built against, and that the program runs under the wheel's mpiexec.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake on PATH")


def _cmake(*args: str | os.PathLike[str], cwd: Path) -> None:
    proc = subprocess.run(
        ["cmake", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"cmake {' '.join(map(str, args))} failed:\n{proc.stdout}"


def test_find_package_consumer(tmp_path: Path, run_mpi, mpiexec: Path) -> None:
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    jobs = str(os.cpu_count() or 2)
    build, prefix, consumer = tmp_path / "build", tmp_path / "prefix", tmp_path / "consumer"

    _cmake(
        "-S", REPO, "-B", build, *generator,
        f"-DPython_EXECUTABLE={sys.executable}",
        f"-DCMAKE_INSTALL_PREFIX={prefix}",
        "-DLAYERBRAID_BUILD_EXAMPLES=OFF",
        "-DLAYERBRAID_BUILD_TESTS=OFF",
        cwd=tmp_path,
    )
    _cmake("--build", build, "-j", jobs, cwd=tmp_path)
    _cmake("--install", build, cwd=tmp_path)

    assert (prefix / "include" / "layerbraid" / "braid" / "braid.h").is_file()
    config = list(prefix.glob("lib*/cmake/layerbraid/layerbraidConfig.cmake"))
    assert len(config) == 1, list(prefix.rglob("*"))

    _cmake(
        "-S", REPO / "tests" / "install_consumer", "-B", consumer, *generator,
        f"-DCMAKE_PREFIX_PATH={prefix}",
        cwd=tmp_path,
    )
    _cmake("--build", consumer, "-j", jobs, cwd=tmp_path)

    # the package records the launcher of the MPI it was built against: the wheel's
    assert Path((consumer / "mpiexec.txt").read_text()).resolve() == Path(mpiexec).resolve()

    rc, out = run_mpi(1, [consumer / "consumer"], timeout=60)
    assert rc == 0, out
    assert "consumer: OK" in out, out
