"""A long solve to interrupt with Ctrl-C (SIGINT): every rank must stop within seconds.

    mpiexec -n N python tests/mpi/solver_sigint.py <marker dir>

The solve would run for hours: thousands of cycles with a sleep in every step of the last
rank, so the other ranks spend their time waiting for it inside the engine (where only the
engine's poll hook lets a signal through). Once a rank is inside ``step`` it writes
``<marker dir>/rank<r>.pid`` holding its process id, so the test knows when to send SIGINT
and which processes must be gone afterwards. Every rank writes the type of what ``drive()``
raised to ``<marker dir>/rank<r>.result`` (a file: the lines of two ranks can interleave on
the launcher's stdout), prints ``interrupted rank=<r> type=<type>`` and re-raises it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

import layerbraid


class Slow(layerbraid.App):
    def __init__(self, marker_dir: Path) -> None:
        super().__init__()
        comm = MPI.COMM_WORLD
        self.marker = marker_dir / f"rank{comm.rank}.pid"
        self.slow = comm.rank == comm.size - 1
        self.marked = False

    def init(self, t):
        return np.array([1.0 if t == self.tstart else 0.456])

    def step(self, u, ustop, status):
        if not self.marked:
            tmp = self.marker.with_suffix(".tmp")
            tmp.write_text(str(os.getpid()))
            tmp.rename(self.marker)  # appears complete or not at all
            self.marked = True
        if self.slow:
            time.sleep(0.002)
        u /= 1.0 + (status.tstop - status.tstart)


def main() -> None:
    comm = MPI.COMM_WORLD
    solver = layerbraid.Solver(Slow(Path(sys.argv[1])), 0.0, 64.0, 256, max_levels=2,
                               nrelax=2, abs_tol=1e-300, max_iter=100000, skip=False,
                               print_level=0)
    try:
        solver.drive()
    except BaseException as e:
        report(comm.rank, type(e).__name__)
        raise
    report(comm.rank, "None")


def report(rank: int, kind: str) -> None:
    result = Path(sys.argv[1]) / f"rank{rank}.result"
    result.with_suffix(".tmp").write_text(kind)
    result.with_suffix(".tmp").rename(result)
    print(f"interrupted rank={rank} type={kind}", flush=True)


if __name__ == "__main__":
    main()
