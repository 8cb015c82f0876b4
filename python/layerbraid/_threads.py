"""Sharing a machine's cores between the ranks that run on it.

Each rank's BLAS (OpenBLAS, MKL) and OpenMP would otherwise start one thread per core, so P
ranks on a C-core machine run P*C threads and spend their time preempting each other (on 2
cores, 2 ranks of one-shot Peaks training ran 8x slower than with one thread each). Thread
pools read their size when NumPy loads, so this runs in ``import layerbraid`` before NumPy
does, and only when the user has set none of the variables.
"""

from __future__ import annotations

import os
import sys

__all__ = ["share_cores_among_ranks", "THREAD_VARIABLES"]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def share_cores_among_ranks() -> int | None:
    """Set the thread variables to cores / ranks-on-this-machine; the count set, or None when
    nothing was changed (one rank, variables already set, NumPy already loaded, or a launcher
    that does not say how many ranks share the machine)."""
    if "numpy" in sys.modules or any(v in os.environ for v in THREAD_VARIABLES):
        return None
    local = os.environ.get("MPI_LOCALNRANKS")  # set by MPICH's hydra launcher
    if local is None or not local.isdigit() or int(local) <= 1:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // int(local))
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    return threads
