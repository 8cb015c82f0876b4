"""Creating, driving and destroying solvers again and again must not leak.

    mpiexec -n N python tests/mpi/solver_memory.py <warm-up loops> <measured loops> <fail every>

Each loop builds a Solver over a TrackedDecay app (every state it makes is counted with a weak
reference), drives it, and drops it: every third loop also warm-restarts (a second drive);
with <fail every> = k > 0, every k-th loop has step raise BoomError on the last rank (the
failure path: the exception and its traceback must not keep states alive); odd loops call
close() and even loops just drop the solver. The resident set size comes from /proc/self/statm after the warm-up and after
the measured loops; the states still alive are counted right after each solver is dropped
(before any gc.collect()) and at the end (after gc.collect()).

Rank 0 prints one line: ``memory growth_kib=<largest RSS growth over the ranks, KiB>
loops=<measured loops> created=<states created, summed> live_end=<alive at the end>
live_max=<most alive right after a drop> failures=<failed drives> ok=<loops that drove>``.
"""

from __future__ import annotations

import gc
import os
import sys

from mpi4py import MPI
from solver_apps import BoomError, StateCounter, TrackedDecay

import layerbraid


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    comm = MPI.COMM_WORLD
    warmup, loops, fail_every = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    counter = StateCounter()
    live_max = failures = ok = 0
    rss0 = 0
    for k in range(warmup + loops):
        if k == warmup:
            gc.collect()
            rss0 = rss_bytes()
        fail = fail_every > 0 and k % fail_every == fail_every - 1
        app = TrackedDecay(counter, fail_rank=comm.size - 1 if fail else None, rank=comm.rank)
        solver = layerbraid.Solver(app, 0.0, 4.0, 8, max_levels=2, abs_tol=1e-12,
                                   print_level=0)
        try:
            solver.drive()
            if k % 3 == 0:
                solver.drive()
            ok += 1
        except (BoomError, layerbraid.RemoteRankError):
            failures += 1
        if k % 2:
            solver.close()
        del solver, app
        live_max = max(live_max, counter.live)
    gc.collect()
    growth = rss_bytes() - rss0
    growth_max = comm.reduce(growth, op=MPI.MAX, root=0)
    created = comm.reduce(counter.created, op=MPI.SUM, root=0)
    live_end = comm.reduce(counter.live, op=MPI.SUM, root=0)
    live_max = comm.reduce(live_max, op=MPI.MAX, root=0)
    failures = comm.reduce(failures, op=MPI.MAX, root=0)
    ok = comm.reduce(ok, op=MPI.MIN, root=0)
    if comm.rank == 0:
        print(f"memory growth_kib={growth_max // 1024} loops={loops} created={created} "
              f"live_end={live_end} live_max={live_max} failures={failures} ok={ok}", flush=True)


if __name__ == "__main__":
    main()
