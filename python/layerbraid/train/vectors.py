"""Arithmetic on parameter sets (``dict`` name -> array) distributed over ranks.

Inner products and norms are global: each array's own dot product is computed where it lives,
and the per-array values of every rank are summed with ``math.fsum`` (correctly rounded, so
independent of order), which makes the result the same for any number of ranks.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from mpi4py import MPI

__all__ = ["dot", "norm", "axpy", "copy", "zeros_like", "scale"]

Params = dict[str, Any]


def dot(a: Mapping[str, Any], b: Mapping[str, Any], comm: MPI.Comm) -> float:
    """The global inner product of two parameter sets of the same layout."""
    local = [float((a[k].reshape(-1) @ b[k].reshape(-1))) for k in sorted(a)]
    if comm.Get_size() == 1:
        return math.fsum(local)
    return math.fsum(v for part in comm.allgather(local) for v in part)


def norm(a: Mapping[str, Any], comm: MPI.Comm) -> float:
    return math.sqrt(dot(a, a, comm))


def axpy(alpha: float, x: Mapping[str, Any], y: Params) -> None:
    """y <- y + alpha x, in place."""
    for k, v in x.items():
        y[k] += alpha * v


def scale(alpha: float, x: Params) -> None:
    for v in x.values():
        v *= alpha


def copy(a: Mapping[str, Any]) -> Params:
    return {k: v.copy() for k, v in a.items()}


def zeros_like(a: Mapping[str, Any]) -> Params:
    return {k: v * 0 for k, v in a.items()}
