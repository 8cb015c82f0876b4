"""layerbraid: layer-parallel training of residual networks with MGRIT.

``layerbraid.nn`` describes the ResNet-ODE model; :class:`layerbraid.Propagator` computes its
loss and gradient by forward and adjoint solves over the layers (serial, or MGRIT over ranks).

Importing layerbraid loads mpi4py's MPI first and then the compiled core, and checks that
both use the same MPI library (ImportError otherwise).
"""

from __future__ import annotations

# mpi4py must load libmpi before the compiled core does, so that one MPI serves the process.
from mpi4py import MPI

from ._threads import share_cores_among_ranks

share_cores_among_ranks()  # before the compiled core loads NumPy and its thread pools

from . import _core  # noqa: E402
from ._core import Interrupted  # noqa: E402
from ._gpu import gpu_available
from ._mpi import check_same_mpi, find_mpiexec

check_same_mpi(_core.mpi_library_version(), MPI.Get_library_version())

from .app import AdjointApp, App, AppProtocol  # noqa: E402  (after the MPI check)
from .braid import (DivergenceError, RemoteRankError, Richardson, SolveResult,  # noqa: E402
                    Solver)
from . import nn  # noqa: E402
from .propagate import Evaluation, Propagator  # noqa: E402

__version__: str = _core.__version__

__all__ = [
    "AdjointApp",
    "App",
    "AppProtocol",
    "DivergenceError",
    "Evaluation",
    "Interrupted",
    "Propagator",
    "RemoteRankError",
    "Richardson",
    "SolveResult",
    "Solver",
    "__version__",
    "find_mpiexec",
    "gpu_available",
    "nn",
]
