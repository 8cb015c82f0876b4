"""Wall-clock time of predict/correct iterations against gradient descent by backpropagation,
in one mpiexec run (check A-6 of shared/notes/companion_methods.md: heavy blocks, P ranks).

    $(.venv/bin/python -c 'import layerbraid; print(layerbraid.find_mpiexec())') -n 2 \\
        .venv/bin/python benchmarks/methods/pgcl_speed.py --width 256 --batch 2000

Rank 0 times ``--iterations`` gradient-descent steps with exact backpropagation on its own
(``MPI.COMM_SELF``; the other ranks wait), then all ranks time the same number of
predict/correct iterations with one block per rank; repeats alternate and the medians are
kept. Prints one JSON line (rank 0).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from mpi4py import MPI

from layerbraid import Propagator, nn
from layerbraid.methods.predict_correct import PredictCorrect


def descend(prop: Propagator, params: dict, x: np.ndarray, y: np.ndarray, steps: int,
            lr: float) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        grad = prop.loss_and_gradient(params, x, y).gradient
        for k in params:
            params[k] -= lr * grad[k]
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=int, default=16)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--batch", type=int, default=2000)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    net = nn.ResNet.dense(args.width, args.width, 10, args.depth, activation="tanh",
                          final_time=args.depth / 4, opening="expand_zero")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.width))
    y = rng.integers(0, 10, args.batch)
    pc = PredictCorrect(net, comm)
    serial = Propagator(net, MPI.COMM_SELF) if rank == 0 else None
    serial_times, pc_times = [], []
    for _ in range(args.repeats):
        if serial is not None:
            serial_times.append(descend(serial, serial.init_params(0), x, y, args.iterations,
                                        0.01))
        comm.Barrier()
        pc_params = pc.init_params(0)
        pc.close()                      # every repeat starts from the coarse prediction
        comm.Barrier()
        pc_times.append(comm.allreduce(descend(pc, pc_params, x, y, args.iterations, 0.01),
                                       op=MPI.MAX))
    if rank == 0:
        s, q = statistics.median(serial_times), statistics.median(pc_times)
        cost = pc.cost()
        print(json.dumps({"depth": args.depth, "width": args.width, "batch": args.batch,
                          "ranks": comm.Get_size(), "blocks": pc.blocks,
                          "iterations": args.iterations, "repeats": args.repeats,
                          "serial_s_per_iteration": s / args.iterations,
                          "pgcl_s_per_iteration": q / args.iterations, "speedup": s / q,
                          "critical_path_per_iteration": cost.per_iteration,
                          "serial_critical_path": cost.serial_per_iteration,
                          "model_speedup": cost.serial_per_iteration / cost.per_iteration}))


if __name__ == "__main__":
    main()
