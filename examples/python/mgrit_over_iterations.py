"""mgrit_over_iterations: solve a whole training run at once with MGRIT over the step index.

The N gradient-descent steps of the XOR network (a 3-4-1 sigmoid net), and optionally N SGD
steps of a small ResNet on Peaks with mini-batches keyed by step, are one time-stepping
problem: MGRIT over the ranks finds the same trajectory as the serial training loop
(Schroder 2017). The program prints the iterations, the largest difference from the serial
loop, the work, and the ideal parallel cost model.

    mpiexec -n 2 .venv/bin/python examples/python/mgrit_over_iterations.py
    mpiexec -n 2 .venv/bin/python examples/python/mgrit_over_iterations.py --levels 5 --lr 1 --cap 4
    .venv/bin/python examples/python/mgrit_over_iterations.py --resnet

(mpiexec: the mpich wheel's, ``python -c 'import layerbraid; print(layerbraid.find_mpiexec())'``.)
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import numpy as np
from mpi4py import MPI

from layerbraid import data, nn
from layerbraid.methods.iterations import (MGRITOverIterations, ResNetProblem, TrainingProblem,
                                           XorNetwork)


def report(name: str, problem: TrainingProblem, w0: np.ndarray, args: argparse.Namespace,
           comm: MPI.Comm) -> None:
    """Solve one training run over the ranks and print what it cost, on rank 0."""
    run = MGRITOverIterations(problem, w0, args.steps, args.lr, comm, cfactor=args.cfactor,
                              max_levels=args.levels, nrelax=1 if args.relax == "FCF" else 0,
                              abs_tol=args.tol, coarse_lr_cap=args.cap)
    result = run.solve()
    points: dict[int, np.ndarray] = {}
    for part in comm.gather(result.trajectory, root=0) or []:
        points.update(part)
    if comm.Get_rank() != 0:
        return
    start = time.perf_counter()
    serial = run.serial()
    serial_time = time.perf_counter() - start
    error = max(float(np.abs(points[i] - w).max()) for i, w in enumerate(serial))
    cost = result.cost
    residual = result.residual_history[-1]
    print(f"== {name}: {args.steps} steps, lr {args.lr:g}, {comm.Get_size()} rank(s) ==")
    print(f"  levels {result.nlevels}, cfactor {args.cfactor}, {args.relax}-relaxation, "
          f"learning rate per level {', '.join(f'{r:g}' for r in result.coarse_lrs)} "
          f"(lambda_max at w_0: {run.lambda_max:.4g})")
    print(f"  MGRIT iterations {result.iterations}, converged {result.converged}, last residual "
          f"{'-' if residual is None else f'{residual:.3e}'}")
    print(f"  max |w_i(MGRIT) - w_i(serial)| over all steps: {error:.3e}")
    print(f"  loss at w_0 {problem.loss(serial[0], 0):.6f}, at w_N "
          f"{problem.loss(result.final_weights, args.steps):.6f}")
    print(f"  work: {result.total_work} step evaluations (per level {list(result.work)}), "
          f"{result.total_work / args.steps:.1f} x the serial loop's {args.steps}")
    print(f"  critical path with one processor per interval: {cost.cycle} per cycle, "
          f"{cost.total} in all, against {args.steps} serially: ideal speedup "
          f"{cost.ideal_speedup:.2f}")
    print(f"  wall time: MGRIT {result.wall_time:.2f} s on {comm.Get_size()} rank(s), serial "
          f"loop {serial_time:.2f} s")


def _cap(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a number >= 1 or auto, got {text}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1024, help="training steps N (1024)")
    parser.add_argument("--lr", type=float, default=0.5, help="learning rate (0.5)")
    parser.add_argument("--cfactor", type=int, default=4, help="coarsening factor m (4)")
    parser.add_argument("--levels", type=int, default=2, help="most MGRIT levels (2)")
    parser.add_argument("--relax", choices=("F", "FCF"), default="FCF", help="relaxation (FCF)")
    parser.add_argument("--tol", type=float, default=1e-10, help="absolute tolerance (1e-10)")
    parser.add_argument("--cap", type=_cap, default=None,
                        help="coarse learning-rate cap: a number K >= 1 (at most K * lr) or auto")
    parser.add_argument("--resnet", action="store_true",
                        help="also a small ResNet on Peaks, SGD with batch 32 (64 steps, lr 0.25)")
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD

    xor = XorNetwork()
    try:
        report("XOR network, gradient descent", xor, xor.initial_weights(), args, comm)
        if args.resnet:
            problem = ResNetProblem(nn.ResNet.dense(2, 4, 5, 4, activation="tanh"),
                                    data.peaks(200, 50), batch_size=32, seed=1)
            small = argparse.Namespace(**{**vars(args), "steps": 64, "lr": 0.25, "levels": 2})
            report("ResNet on Peaks, SGD", problem, problem.initial_weights(), small, comm)
    except ValueError as e:
        # every rank refuses the same settings (the checks run before any solve)
        if comm.Get_rank() == 0:
            print(f"error: {e}", file=sys.stderr)
        return 2
    if comm.Get_rank() == 0:
        print("Note: the ideal speedup assumes one processor per time interval and free "
              "communication.\nOn a few ranks MGRIT over iterations does several times the "
              "serial work and is slower than the plain training loop; it pays only with many "
              "ranks and enough levels.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
