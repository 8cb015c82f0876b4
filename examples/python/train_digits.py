"""train_digits: a convolutional ResNet-ODE on scikit-learn's bundled 8x8 digits.

16 residual layers of 4-channel 3x3 convolutions, trained with L-BFGS, full batch (needs
scikit-learn, which the test extra installs)::

    MPIEXEC=$(.venv/bin/python -c 'import layerbraid; print(layerbraid.find_mpiexec())')
    $MPIEXEC -n 2 .venv/bin/python examples/python/train_digits.py --method one-shot
    .venv/bin/python examples/python/train_digits.py --epochs 30   # layer-serial, one rank
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from mpi4py import MPI

from layerbraid import data, nn
from layerbraid.train import METHODS, TrainConfig, Trainer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="serial", choices=list(METHODS))
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", default="runs/digits")
    args = parser.parse_args(argv)

    dataset = data.digits()
    net = nn.ResNet.conv(1, (8, 8), 4, dataset.classes, 16, activation="smoothrelu",
                         final_time=2.0, regularization=nn.Regularization(1e-7, 1e-7, 1e-5))
    config = TrainConfig(method=args.method, optimizer="lbfgs", epochs=args.epochs,
                         mgrit_iters=2, min_coarse=4, init_scale=0.1)
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
