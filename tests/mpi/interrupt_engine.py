"""The interrupt flag (layerbraid._core.set_interrupt) stops a Python-callback solve on every rank.

    mpiexec -n N python tests/mpi/interrupt_engine.py

For each target rank (0 and the last), three ways the flag gets set on that rank only:
  before   set before drive(): the first callback raises;
  handler  a signal handler sets it during the solve (SIGUSR1 sent to itself from inside step;
           the handler runs in the middle of the Python step, the next callback raises);
  waiting  another thread sets it while this rank waits inside the engine for a slow rank (the
           engine's poll hook sees it; rank 0 waits for the last rank, which sleeps in step).
The target must raise layerbraid.Interrupted (a KeyboardInterrupt) with "interrupted by signal
N", every other rank RemoteRankError; after set_interrupt(0) a new Solver's drive() gives the
uninterrupted solution. Rank 0 prints one JSON line: {"nprocs", "cases": [{target, how,
outcomes: [per rank "<type>: <message>"], after_ok}], "flag_roundtrip"}.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
from mpi4py import MPI

import layerbraid
from layerbraid import _core

NTIME = 64


class Decay(layerbraid.App):
    """u' = -u from u(0) = 1; `hook` runs at the start of every step."""

    def __init__(self, hook=None, slow: float = 0.0) -> None:
        super().__init__()
        self.hook, self.slow = hook, slow
        self.final = None

    def init(self, t):
        return np.array([1.0 if t == self.tstart else 0.0])

    def step(self, u, ustop, status):
        if self.hook is not None:
            self.hook()
        if self.slow:
            time.sleep(self.slow)
        u /= 1.0 + (status.tstop - status.tstart)

    def access(self, u, status):
        if status.tindex == NTIME:
            self.final = float(u[0])


def solve(app: Decay, **options) -> None:
    with layerbraid.Solver(app, 0.0, 4.0, NTIME, max_levels=2, cfactor=4, abs_tol=1e-12,
                           max_iter=20, print_level=0, **options) as solver:
        solver.drive()


def outcome(fn) -> str:
    try:
        fn()
        return "ok"
    except BaseException as e:  # Interrupted is a KeyboardInterrupt
        kind = "Interrupted" if isinstance(e, layerbraid.Interrupted) else type(e).__name__
        assert not isinstance(e, layerbraid.Interrupted) or isinstance(e, KeyboardInterrupt)
        return f"{kind}: {str(e).splitlines()[0] if str(e) else ''}"


def main() -> None:
    comm = MPI.COMM_WORLD
    rank, size = comm.rank, comm.size
    reference = Decay()
    solve(reference)
    want = comm.bcast(reference.final, root=size - 1)

    # the flag round-trips, and a negative value is refused
    _core.set_interrupt(15)
    roundtrip = _core.interrupt_requested() == 15
    _core.set_interrupt(0)
    roundtrip = roundtrip and _core.interrupt_requested() == 0
    try:
        _core.set_interrupt(-1)
        roundtrip = False
    except ValueError as e:
        roundtrip = roundtrip and "signum=-1" in str(e)

    signal.signal(signal.SIGUSR1, lambda signum, frame: _core.set_interrupt(signum))
    cases = []
    for target in sorted({0, size - 1}):
        for how in ("before", "handler", "waiting"):
            if how == "waiting" and (size == 1 or target != 0):
                continue  # only rank 0 waits (for the slow last rank)
            mine = rank == target
            app = Decay()
            timer = None
            if how == "before" and mine:
                _core.set_interrupt(signal.SIGINT)
            elif how == "handler" and mine:
                count = [0]

                def hook(count: list[int] = count) -> None:
                    count[0] += 1
                    if count[0] == 3:
                        os.kill(os.getpid(), signal.SIGUSR1)

                app = Decay(hook)
            elif how == "waiting":
                app = Decay(slow=0.01 if rank == size - 1 else 0.0)
                if mine:
                    timer = threading.Timer(0.3, _core.set_interrupt, (signal.SIGTERM,))
                    timer.start()
            got = outcome(lambda app=app: solve(app))
            if timer is not None:
                timer.join()
            _core.set_interrupt(0)
            comm.Barrier()
            after = Decay()
            after_outcome = outcome(lambda after=after: solve(after))
            final = comm.bcast(after.final, root=size - 1)
            outcomes = comm.gather(got, root=0)
            after_ok = comm.allreduce(after_outcome == "ok", op=MPI.LAND) and final == want
            cases.append({"target": target, "how": how, "outcomes": outcomes,
                          "after_ok": bool(after_ok)})
    ok_roundtrip = comm.allreduce(roundtrip, op=MPI.LAND)
    if rank == 0:
        print(json.dumps({"nprocs": size, "cases": cases, "flag_roundtrip": bool(ok_roundtrip)}),
              flush=True)


if __name__ == "__main__":
    main()
