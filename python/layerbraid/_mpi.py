"""MPI plumbing: the mpich wheel's launcher and the one-MPI-per-process check."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

__all__ = ["find_mpiexec", "check_same_mpi"]


def find_mpiexec() -> Path:
    """Return the path of the ``mpiexec`` shipped by the PyPI ``mpich`` wheel.

    Always launch layerbraid programs with this one: a system ``mpiexec`` (Open MPI, or another
    MPICH) cannot start ranks linked against the wheel's libmpi.

    Raises:
        FileNotFoundError: the ``mpich`` distribution is not installed, or has no executable
            ``bin/mpiexec``.
    """
    try:
        dist = importlib.metadata.distribution("mpich")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the PyPI 'mpich' package is not installed, so there is no mpiexec to launch "
            "layerbraid with; install it with: pip install mpich==5.0.2"
        ) from None
    for entry in dist.files or ():
        if entry.name == "mpiexec" and entry.parent.name == "bin":
            path = Path(os.path.abspath(dist.locate_file(entry)))
            if path.is_file() and os.access(path, os.X_OK):
                return path
    raise FileNotFoundError(
        f"the 'mpich' {dist.version} package has no executable bin/mpiexec "
        f"(looked in its file list under {dist.locate_file('')}); reinstall it with: "
        "pip install --force-reinstall mpich==5.0.2"
    )


def _normalise(version: str) -> str:
    return version.strip().rstrip("\x00").strip()


def check_same_mpi(core_version: str, mpi4py_version: str) -> None:
    """Raise ImportError unless layerbraid._core and mpi4py use the same MPI library.

    Two MPI libraries in one process fail silently or crash, so the mismatch is reported at
    import time, naming both.
    """
    if _normalise(core_version) != _normalise(mpi4py_version):
        raise ImportError(
            "layerbraid was built against a different MPI library than the one mpi4py loaded.\n"
            f"  layerbraid._core: {_normalise(core_version)!r}\n"
            f"  mpi4py:           {_normalise(mpi4py_version)!r}\n"
            "Build layerbraid and run mpi4py against the same MPI (by default the PyPI mpich "
            "wheel: pip install mpich==5.0.2, then reinstall layerbraid)."
        )
