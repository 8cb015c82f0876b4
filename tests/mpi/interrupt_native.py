"""SIGINT during a long native solve (Propagator(backend="native")) stops it on every rank.

    mpiexec -n N python tests/mpi/interrupt_native.py <first|last>

A loss_and_gradient of MGRIT solves that run a fixed number of cycles, as many as take about
4 s on this machine now (timed with a few cycles first), is timed once uninterrupted (T). Then,
twice, a Timer thread on the target rank sends SIGINT to its own process at min(1 s, T / 4)
into the same computation (inside the forward solve, whose GIL is released the whole time):
  flag      with a Python SIGINT handler that calls layerbraid._core.set_interrupt(signum), as
            the training loop does: the target must raise layerbraid.Interrupted ("interrupted
            by signal 2"); then, after set_interrupt(0), the same Propagator must compute the
            uninterrupted result again, bit for bit;
  keyboard  with Python's default handler: the target must raise the handler's own
            KeyboardInterrupt (not Interrupted).
Every other rank must raise RemoteRankError. Rank 0 prints one JSON line: {"nprocs",
"max_iter", "full" (T, the slowest rank's), "delay", "phases": [{"kind", "outcomes": ["<type>: <message>" per
rank], "latency" (the target's seconds from the signal to the exception), "stopped" (the
slowest rank's seconds from the signal to its exception)}], "after_equal"}.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import numpy as np
from mpi4py import MPI

import layerbraid
from layerbraid import _core, nn
from layerbraid.propagate import Propagator

# Two-level MGRIT that always runs max_iter cycles (abs_tol 0): 40-70 ms a cycle on one core.
OPTIONS = {"max_levels": 2, "cfactor": 2, "nrelax": 1, "abs_tol": 0.0}
TARGET_SECONDS = 4.0


def outcome(e: BaseException | None) -> str:
    if e is None:
        return "ok"
    kind = "Interrupted" if isinstance(e, layerbraid.Interrupted) else type(e).__name__
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{kind}: {text}"


def main() -> None:
    comm = MPI.COMM_WORLD
    rank, size = comm.rank, comm.size
    target = 0 if sys.argv[1] == "first" else size - 1
    net = nn.ResNet.dense(3, 32, 4, 64, activation="tanh", final_time=2.0)
    params = net.init_params(1, weights="random", scale=1.5)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 3))
    labels = rng.integers(0, 4, 512)

    with Propagator(net, options={**OPTIONS, "max_iter": 4}, backend="native") as prop:
        prop.loss_and_gradient(params, x, labels)  # the first call sets up
        comm.Barrier()
        start = time.monotonic()
        prop.loss_and_gradient(params, x, labels)
        cycle = comm.allreduce(time.monotonic() - start, op=MPI.MAX) / 8  # 4 + 4 cycles
    max_iter = int(min(400, max(10, TARGET_SECONDS / 2 / cycle)))

    with Propagator(net, options={**OPTIONS, "max_iter": max_iter}, backend="native") as prop:
        comm.Barrier()
        start = time.monotonic()
        reference = prop.loss_and_gradient(params, x, labels)
        full = comm.allreduce(time.monotonic() - start, op=MPI.MAX)
        delay = min(1.0, 0.25 * full)

        phases = []
        after_equal = False
        for kind in ("flag", "keyboard"):
            if kind == "flag":
                signal.signal(signal.SIGINT, lambda signum, frame: _core.set_interrupt(signum))
            else:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            sent = [0.0]

            def send(sent: list[float] = sent) -> None:
                sent[0] = time.monotonic()
                os.kill(os.getpid(), signal.SIGINT)

            timer = threading.Timer(delay, send) if rank == target else None
            comm.Barrier()
            start = time.monotonic()
            if timer is not None:
                timer.start()
            error: BaseException | None = None
            try:
                prop.loss_and_gradient(params, x, labels)
            except BaseException as e:  # noqa: BLE001 - KeyboardInterrupt is what we expect
                error = e
            end = time.monotonic()
            if timer is not None:
                timer.join()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _core.set_interrupt(0)
            signal_time = comm.bcast(sent[0], root=target)
            latency = comm.bcast(end - signal_time, root=target)
            stopped = comm.allreduce(end - (signal_time if rank == target else start + delay),
                                     op=MPI.MAX)
            phases.append({"kind": kind, "outcomes": comm.gather(outcome(error), root=0),
                           "latency": latency, "stopped": stopped})
            if kind == "flag":
                # the same Propagator, after the interrupted solve: the uninterrupted result
                again = prop.loss_and_gradient(params, x, labels)
                same = again.loss == reference.loss and all(
                    np.array_equal(again.gradient[k], v) for k, v in reference.gradient.items())
                after_equal = comm.allreduce(same, op=MPI.LAND)

    if rank == 0:
        print(json.dumps({"nprocs": size, "max_iter": max_iter, "full": full, "delay": delay,
                          "phases": phases, "after_equal": bool(after_equal)}), flush=True)


if __name__ == "__main__":
    main()
