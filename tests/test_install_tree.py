"""Install the C/C++ library with plain CMake and use it from downstream CMake projects.

One install (module-scoped) serves every test here:
- ``find_package(layerbraid)`` + ``layerbraid::braid`` gives a C consumer the engine, its headers
  and the MPI it was built against, and the program runs under the wheel's mpiexec;
- ``layerbraid::resnet`` gives examples/cpp what it needs to build, and train_peaks trains
  layer-parallel under the wheel's mpiexec to the same losses on 1 and 2 ranks;
- a package whose recorded BLAS is gone is reported as not found, with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake on PATH")

GENERATOR = ["-G", "Ninja"] if shutil.which("ninja") else []
JOBS = str(os.cpu_count() or 2)


def _cmake(*args: str | os.PathLike[str], cwd: Path, ok: bool = True) -> str:
    proc = subprocess.run(
        ["cmake", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    if ok:
        assert proc.returncode == 0, f"cmake {' '.join(map(str, args))} failed:\n{proc.stdout}"
    else:
        assert proc.returncode != 0, f"cmake {' '.join(map(str, args))} succeeded:\n{proc.stdout}"
    return proc.stdout


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The library built with examples and tests off (as a packager would) and installed."""
    root = tmp_path_factory.mktemp("install")
    build, prefix = root / "build", root / "prefix"
    _cmake(
        "-S", REPO, "-B", build, *GENERATOR,
        f"-DPython_EXECUTABLE={sys.executable}",
        f"-DCMAKE_INSTALL_PREFIX={prefix}",
        "-DLAYERBRAID_BUILD_EXAMPLES=OFF",
        "-DLAYERBRAID_BUILD_TESTS=OFF",
        cwd=root,
    )
    _cmake("--build", build, "-j", JOBS, cwd=root)
    _cmake("--install", build, cwd=root)
    return prefix


def _build_against(prefix: Path, source: Path, build: Path) -> None:
    _cmake("-S", source, "-B", build, *GENERATOR, f"-DCMAKE_PREFIX_PATH={prefix}", cwd=build.parent)
    _cmake("--build", build, "-j", JOBS, cwd=build.parent)


def test_install_layout(prefix: Path) -> None:
    assert (prefix / "include" / "layerbraid" / "braid" / "braid.h").is_file()
    for header in ("resnet.hpp", "resnet_app.hpp", "resnet_model.hpp"):
        assert (prefix / "include" / "layerbraid" / header).is_file(), header
    config = list(prefix.glob("lib*/cmake/layerbraid/layerbraidConfig.cmake"))
    assert len(config) == 1, list(prefix.rglob("*"))
    assert list(prefix.glob("lib*/liblayerbraid_resnet.a")), list(prefix.rglob("*"))


def test_find_package_consumer(prefix: Path, tmp_path: Path, run_mpi, mpiexec: Path) -> None:
    consumer = tmp_path / "consumer"
    _build_against(prefix, REPO / "tests" / "install_consumer", consumer)

    # the package records the launcher of the MPI it was built against: the wheel's
    assert Path((consumer / "mpiexec.txt").read_text()).resolve() == Path(mpiexec).resolve()

    rc, out = run_mpi(1, [consumer / "consumer"], timeout=60)
    assert rc == 0, out
    assert "consumer: OK" in out, out


EPOCH = re.compile(r"^epoch +(\d+): loss=(\S+) train_accuracy=(\S+) val_accuracy=(\S+)", re.M)
FINAL = re.compile(r"^final: loss=(\S+) train_accuracy=(\S+) val_accuracy=(\S+) time=", re.M)


def test_cpp_example_trains_peaks_layer_parallel(prefix: Path, tmp_path: Path, run_mpi,
                                                  mpiexec: Path) -> None:
    build = tmp_path / "examples-cpp"
    _build_against(prefix, REPO / "examples" / "cpp", build)
    assert Path((build / "mpiexec.txt").read_text()).resolve() == Path(mpiexec).resolve()

    # 16 layers over 2 MGRIT levels, 5 epochs: about a second per run
    args = [build / "train_peaks", "--layers", "16", "--epochs", "5"]
    histories = {}
    for np in (1, 2):
        rc, out = run_mpi(np, args, timeout=120, env={"OPENBLAS_NUM_THREADS": "1"})
        assert rc == 0, out
        epochs = EPOCH.findall(out)
        final = FINAL.search(out)
        assert [int(e[0]) for e in epochs] == [1, 2, 3, 4, 5], out
        assert final is not None, out
        loss, train_acc, val_acc = map(float, final.groups())
        # about half the square is one class: 85 % means the bands were learnt
        assert val_acc >= 0.85 and train_acc >= 0.85, out
        assert float(epochs[-1][1]) < float(epochs[0][1]), out
        assert loss == float(epochs[-1][1]), out
        histories[np] = [e[1:] for e in epochs]
    # the printed losses and accuracies (12 significant digits) do not depend on the ranks
    assert histories[1] == histories[2]

    rc, out = run_mpi(1, [build / "train_peaks", "--layers", "0"], timeout=60)
    assert rc == 2, out
    assert "--layers=0" in out and "[1," in out, out


def test_missing_blas_wheel_is_reported(prefix: Path, tmp_path: Path) -> None:
    # A copy of the install whose recorded BLAS library no longer exists.
    moved = tmp_path / "prefix"
    shutil.copytree(prefix, moved, symlinks=True)
    config = next(moved.glob("lib*/cmake/layerbraid/layerbraidConfig.cmake"))
    text = config.read_text()
    recorded = re.search(r'set\(layerbraid_BLAS_LIBRARY "([^"]+)"\)', text)
    assert recorded is not None, text
    gone = tmp_path / "gone" / Path(recorded.group(1)).name
    config.write_text(text.replace(recorded.group(1), str(gone)))

    out = _cmake("-S", REPO / "examples" / "cpp", "-B", tmp_path / "build", *GENERATOR,
                 f"-DCMAKE_PREFIX_PATH={moved}", cwd=tmp_path, ok=False)
    assert "scipy-openblas32" in out and "which is gone" in out, out
