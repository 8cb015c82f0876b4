"""train_nested: nested initialisation against training from scratch, on Peaks.

The Peaks network (width 8, final time 5, SmoothReLU) with 64 layers, trained two ways with
L-BFGS: from scratch for 130 steps, and nested: 16 layers first, their weights interpolated in
time to 32 layers, trained, interpolated to 64 layers and trained (layerbraid.methods.nested).
Prints when the 64-layer network first reaches the target validation accuracy in each run,
counting every training second (the nested run's coarse levels and interpolations included)::

    MPIEXEC=$(.venv/bin/python -c 'import layerbraid; print(layerbraid.find_mpiexec())')
    $MPIEXEC -n 2 .venv/bin/python examples/python/train_nested.py
    .venv/bin/python examples/python/train_nested.py --method one-shot --target 0.85
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from mpi4py import MPI

from layerbraid import data, nn
from layerbraid.cli import default_smoothness
from layerbraid.methods.nested import INTERPOLATIONS, nested_depths, train_nested
from layerbraid.train import METHODS, EpochRecord, TrainConfig, Trainer


def time_to(records: Sequence[EpochRecord], target: float) -> str:
    """When the validation accuracy first reached ``target`` (training seconds), or 'never'."""
    for r in records:
        if r.val_accuracy >= target:
            return f"{r.elapsed:6.1f} s"
    return " never"


def epoch_list(text: str) -> list[int]:
    return [int(e) for e in text.split(",")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=64, help="depth of the trained network")
    parser.add_argument("--levels", type=int, default=3, help="networks trained by nested "
                        "training, the deepest included (3: 16, 32, 64 layers)")
    parser.add_argument("--epochs", type=epoch_list, default=[60, 30, 50],
                        help="nested training's epochs per level, coarsest first")
    parser.add_argument("--scratch-epochs", type=int, default=130)
    parser.add_argument("--kind", default="constant", choices=list(INTERPOLATIONS))
    parser.add_argument("--method", default="serial", choices=list(METHODS))
    parser.add_argument("--target", type=float, default=0.90,
                        help="validation accuracy to time (default 0.90)")
    args = parser.parse_args(argv)
    if len(args.epochs) != args.levels:
        parser.error(f"--epochs gives {len(args.epochs)} levels' epochs; --levels is "
                     f"{args.levels}")
    comm = MPI.COMM_WORLD
    root = comm.Get_rank() == 0

    dataset = data.peaks()
    net = nn.ResNet.dense(2, 8, dataset.classes, args.layers, activation="smoothrelu",
                          final_time=5.0, regularization=nn.Regularization(
                              1e-7, 1e-7, default_smoothness(args.layers, 5.0)))
    config = TrainConfig(method=args.method, epochs=args.scratch_epochs, init="zero")
    depths = nested_depths(net.depth, args.levels)
    if root:
        print(f"Peaks, {net.depth} layers, {args.method} on {comm.Get_size()} rank(s); "
              f"target {100 * args.target:.0f}% validation accuracy")

    scratch = Trainer(net, dataset, config, comm, progress=False).fit()
    result = train_nested(net, dataset, config, comm, levels=args.levels, epochs=args.epochs,
                          kind=args.kind)
    if root:
        last = scratch[-1]
        print(f"from scratch: {len(scratch)} epochs of {net.depth} layers; reached the target "
              f"after {time_to(scratch, args.target)}; final validation accuracy "
              f"{100 * last.val_accuracy:.1f}% after {last.elapsed:.1f} s")
        deep = result.levels[-1].history
        print(f"nested ({' -> '.join(map(str, depths))} layers, {args.kind}): "
              f"{'+'.join(map(str, args.epochs))} epochs; the {net.depth}-layer network "
              f"reached the target after {time_to(deep, args.target)}; final validation "
              f"accuracy {100 * deep[-1].val_accuracy:.1f}% after {result.elapsed:.1f} s")
        for level in result.levels:
            first, end = level.history[0], level.history[-1]
            print(f"  {level.net.depth:4d} layers: loss {first.loss:.3f} -> {end.loss:.3f}, "
                  f"validation accuracy {100 * end.val_accuracy:.1f}%, done at "
                  f"{end.elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
