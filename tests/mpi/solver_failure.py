"""A callback raises on one rank: every rank must stop promptly with a clear exception.

    mpiexec -n N python tests/mpi/solver_failure.py <failing rank> <result dir>

Rank <failing rank> raises BoomError from ``step`` in the second MGRIT cycle. Every rank
catches what ``drive()`` raised, writes ``<result dir>/rank<r>.txt`` (two lines: the exception
type, the first line of its message), prints ``failure rank=<r> type=<type>`` and re-raises
it, so the traceback is in the output too and the job's exit status is nonzero. (After a
failure there is no collective left to gather with, so each rank reports for itself; files,
because the lines of two ranks can interleave on the launcher's stdout.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI
from solver_apps import BoomError

import layerbraid


class FailingDecay(layerbraid.App):
    def __init__(self, fail_rank: int) -> None:
        super().__init__()
        self.fail = MPI.COMM_WORLD.rank == fail_rank

    def init(self, t):
        return np.array([1.0 if t == self.tstart else 0.456])

    def step(self, u, ustop, status):
        if self.fail and status.iteration >= 1 and status.level == 0:
            raise BoomError(f"boom in step at time index {status.tindex}")
        u /= 1.0 + (status.tstop - status.tstart)


def main() -> None:
    comm = MPI.COMM_WORLD
    solver = layerbraid.Solver(FailingDecay(int(sys.argv[1])), 0.0, 32.0, 64, max_levels=3,
                               abs_tol=1e-300, max_iter=50, print_level=0)
    try:
        solver.drive()
    except BaseException as e:
        first = str(e).splitlines()[0] if str(e) else ""
        report(comm.rank, type(e).__name__, first)
        raise
    report(comm.rank, "None", "drive() returned")


def report(rank: int, kind: str, message: str) -> None:
    result = Path(sys.argv[2]) / f"rank{rank}.txt"
    tmp = result.with_suffix(".tmp")
    tmp.write_text(f"{kind}\n{message}\n")
    tmp.rename(result)
    print(f"failure rank={rank} type={kind}", flush=True)


if __name__ == "__main__":
    main()
