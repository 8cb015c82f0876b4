"""train_peaks: the layer-parallel training paper's Peaks problem, from Python.

A dense ResNet-ODE (width 8, 30 layers, SmoothReLU) classifies points of [-3, 3]^2 into the
five level bands of the peaks surface, trained with L-BFGS for 130 full-batch steps::

    MPIEXEC=$(.venv/bin/python -c 'import layerbraid; print(layerbraid.find_mpiexec())')
    $MPIEXEC -n 2 .venv/bin/python examples/python/train_peaks.py --method one-shot
    .venv/bin/python examples/python/train_peaks.py            # layer-serial, one rank
    $MPIEXEC -n 2 .venv/bin/python examples/python/train_peaks.py --method one-shot \
        --gradient-method piggy-back --mgrit-iters 3   # one engine drive per step

Writes metrics.jsonl, curves.png (and mgrit.png for MGRIT methods) to --out.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from mpi4py import MPI

from layerbraid import data, nn
from layerbraid.cli import DEFAULTS, default_smoothness
from layerbraid.propagate import GRADIENT_METHODS
from layerbraid.train import METHODS, TrainConfig, Trainer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="serial", choices=list(METHODS))
    parser.add_argument("--gradient-method", default="two-solve", choices=list(GRADIENT_METHODS))
    parser.add_argument("--mgrit-iters", type=int, default=2,
                        help="one-shot: MGRIT cycles per step (piggy-back: 3 for two-solve's "
                             "accuracy on Peaks, benchmarks/BENCHMARKS.md)")
    parser.add_argument("--epochs", type=int, default=130)
    parser.add_argument("--out", default="runs/peaks")
    args = parser.parse_args(argv)

    dataset = data.peaks()
    # `layerbraid train`'s defaults: T = 2.5 and the reference's smoothness weight per layer
    # step, gamma / h^2 = 9e-3 (its T = 1, gamma = 1e-5), so gamma = 6.25e-5
    final_time = DEFAULTS["final_time"]
    net = nn.ResNet.dense(2, 8, dataset.classes, 30, activation="smoothrelu",
                          final_time=final_time,
                          regularization=nn.Regularization(
                              tikhonov=1e-7, classifier=1e-7,
                              smoothness=default_smoothness(30, final_time)))
    config = TrainConfig(method=args.method, optimizer="lbfgs", epochs=args.epochs,
                         mgrit_iters=args.mgrit_iters, init="zero",
                         lbfgs_memory=DEFAULTS["lbfgs_memory"],
                         gradient_method=args.gradient_method)
    trainer = Trainer(net, dataset, config, MPI.COMM_WORLD, out_dir=args.out)
    history = trainer.fit()
    plots = trainer.plot()
    if MPI.COMM_WORLD.Get_rank() == 0:
        last = history[-1]
        print(f"{args.method} on {MPI.COMM_WORLD.Get_size()} rank(s): {trainer.state.elapsed:.1f} s;"
              f" training accuracy {100 * last.train_accuracy:.1f}%, validation accuracy "
              f"{100 * last.val_accuracy:.1f}%; plots: {', '.join(map(str, plots))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
