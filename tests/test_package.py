"""The Python package: import guard, MPI launcher, MPI test helpers, GPU detection."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import time
import types
import uuid
from pathlib import Path

import pytest

import layerbraid
from conftest import TIMEOUT_SCALE
from layerbraid import _core, _mpi

MPI_SCRIPTS = Path(__file__).resolve().parent / "mpi"


def test_import_and_version() -> None:
    assert layerbraid.__version__ == _core.__version__ == importlib.metadata.version("layerbraid")
    assert set(layerbraid.__all__) >= {"__version__", "find_mpiexec", "gpu_available"}


def test_core_and_mpi4py_use_the_same_mpi() -> None:
    from mpi4py import MPI

    core = _core.mpi_library_version()
    assert core.strip() == MPI.Get_library_version().strip()
    assert "MPICH" in core


def test_import_guard_names_both_libraries() -> None:
    with pytest.raises(ImportError, match="different MPI") as info:
        _mpi.check_same_mpi("Open MPI v5.0.11", "MPICH Version: 5.0.2")
    assert "Open MPI v5.0.11" in str(info.value) and "MPICH Version: 5.0.2" in str(info.value)
    _mpi.check_same_mpi("MPICH Version: 5.0.2\n", "MPICH Version: 5.0.2")  # whitespace only


def test_find_mpiexec_is_the_wheels() -> None:
    path = layerbraid.find_mpiexec()
    assert path.is_absolute() and path.name == "mpiexec"
    assert path.is_file() and os.access(path, os.X_OK)
    # the launcher of the libmpi that _core links: <prefix>/bin/mpiexec beside <prefix>/lib
    assert (path.parent.parent / "lib" / "libmpi.so.12").exists()


def test_find_mpiexec_without_mpich(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(FileNotFoundError, match="pip install mpich"):
        layerbraid.find_mpiexec()


@pytest.mark.parametrize("np", [2])
def test_mpi_allreduce(run_mpi, python_exe: str, np: int) -> None:
    rc, out = run_mpi(np, [python_exe, MPI_SCRIPTS / "allreduce.py"], timeout=60)
    assert rc == 0, out
    lines = [line for line in out.splitlines() if line.startswith("allreduce ")]
    assert len(lines) == 1, out
    m = re.fullmatch(r"allreduce size=(\d+) sum=(\d+) ranks=([\d,]+)", lines[0])
    assert m, lines[0]
    assert int(m[1]) == np and int(m[2]) == np * (np + 1) // 2
    assert m[3] == ",".join(str(r) for r in range(np))


def _processes_with(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_deadlock_is_killed_without_orphans(run_mpi, python_exe: str) -> None:
    marker = f"layerbraid-deadlock-{uuid.uuid4().hex}"
    start = time.monotonic()
    limit = 5 * TIMEOUT_SCALE  # run_mpi scales every limit for loaded machines
    with pytest.raises(pytest.fail.Exception, match=f"timed out after {limit}"):
        run_mpi(2, [python_exe, MPI_SCRIPTS / "deadlock.py", marker], timeout=5)
    assert time.monotonic() - start < 25 + limit
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []


def test_gpu_available_is_a_bool() -> None:
    assert isinstance(layerbraid.gpu_available(), bool)


def test_gpu_available_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    # CuPy imports fine without a driver and fails at the first device call: emulate that.
    def no_driver() -> int:
        raise RuntimeError("cudaErrorInsufficientDriver")

    runtime = types.SimpleNamespace(getDeviceCount=no_driver)
    cuda = types.ModuleType("cupy.cuda")
    cuda.runtime = runtime  # type: ignore[attr-defined]
    cupy = types.ModuleType("cupy")
    cupy.cuda = cuda  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cuda)
    assert layerbraid.gpu_available() is False
    monkeypatch.setitem(sys.modules, "cupy", None)  # not installed: import raises ImportError
    monkeypatch.setitem(sys.modules, "cupy.cuda", None)
    assert layerbraid.gpu_available() is False


def _threads_after_import(env: dict[str, str]) -> str:
    code = ("import os, layerbraid; "
            "print(os.environ.get('OPENBLAS_NUM_THREADS'), os.environ.get('OMP_NUM_THREADS'))")
    from conftest import clean_env

    base = {k: v for k, v in clean_env().items()
            if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", code], env={**base, **env},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_ranks_sharing_a_machine_share_its_cores_for_blas_threads() -> None:
    cores = len(os.sched_getaffinity(0))
    share = str(max(1, cores // 2))
    assert _threads_after_import({"MPI_LOCALNRANKS": "2"}) == f"{share} {share}"
    assert _threads_after_import({}) == "None None"             # one rank: left alone
    assert _threads_after_import({"MPI_LOCALNRANKS": "2", "OMP_NUM_THREADS": "3"}) == "None 3"
