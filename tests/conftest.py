"""Shared test helpers: the MPI launcher, running programs under it, and the C build tree.

MPI tests never run pytest itself under mpiexec. They launch ``<mpiexec> -n N <program>`` as a
subprocess in its own session with a timeout, and kill the whole process group when it runs
out, so a deadlock or a failure on one rank cannot hang the test run. Scripts under tests/mpi/
gather their results to rank 0, which prints one line that the test parses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MPI_SCRIPTS = Path(__file__).resolve().parent / "mpi"

# Launcher variables inherited from an outer mpiexec would make ours join the wrong job.
_LAUNCHER_PREFIXES = ("PMI_", "PMIX_", "HYDRA_", "OMPI_")

RunMPI = Callable[..., tuple[int, str]]

# Time limits are for hangs, not speed: each run_mpi limit is multiplied by this, so that the
# suite passes on a machine at 4x load (LAYERBRAID_TEST_TIMEOUT_SCALE overrides it).
TIMEOUT_SCALE = float(os.environ.get("LAYERBRAID_TEST_TIMEOUT_SCALE", "4"))


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment without MPI launcher variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LAUNCHER_PREFIXES)}
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def mpiexec() -> Path:
    """The mpich wheel's mpiexec (the only launcher that matches the libmpi we link)."""
    import layerbraid

    return layerbraid.find_mpiexec()


@pytest.fixture(scope="session")
def run_mpi(mpiexec: Path) -> RunMPI:
    """``run_mpi(np, argv, timeout=120, env=None) -> (returncode, output)``.

    Runs ``<mpiexec> -n np *argv`` in its own session, stdout and stderr merged. On timeout
    (``timeout`` times :data:`TIMEOUT_SCALE`) the whole process group is killed and the test
    fails with the output captured so far.
    """

    def run(
        np: int,
        argv: Sequence[str | os.PathLike[str]],
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        cmd = [str(mpiexec), "-n", str(np), *map(str, argv)]
        timeout *= TIMEOUT_SCALE
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(env),
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, _ = proc.communicate()
            pytest.fail(
                f"timed out after {timeout} s, process group killed: {' '.join(cmd)}\n"
                f"--- output ---\n{out}",
                pytrace=False,
            )
        return proc.returncode, out

    return run


@pytest.fixture(scope="session")
def python_exe() -> str:
    """The interpreter running the tests (the venv's), for MPI scripts."""
    return sys.executable


@pytest.fixture(scope="session")
def build_dir() -> Path:
    """The plain CMake build tree (``make examples``); LAYERBRAID_BUILD_DIR overrides it."""
    return Path(os.environ.get("LAYERBRAID_BUILD_DIR", REPO / "build")).resolve()


@pytest.fixture(scope="session")
def example_bin(build_dir: Path) -> Callable[[str], Path]:
    """``example_bin(name)``: path of build/examples/c/<name>; skips the test if not built."""

    def find(name: str) -> Path:
        path = build_dir / "examples" / "c" / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.skip(f"C example {path} is not built; run `make examples` first")
        return path

    return find


def run_propagate_ranks(run_mpi: RunMPI, python_exe: str, nprocs: int, out: Path,
                        backend: str = "numpy") -> dict:
    """Run tests/mpi/propagate_ranks.py on nprocs ranks with a backend: every loss, gathered
    gradient and residual history it saved, by name."""
    import json

    import numpy as np

    code, text = run_mpi(nprocs, [python_exe, MPI_SCRIPTS / "propagate_ranks.py", out, backend],
                         timeout=240)
    assert code == 0, text
    assert json.loads(text.strip().splitlines()[-1])["nprocs"] == nprocs
    with np.load(out) as data:
        return dict(data)
