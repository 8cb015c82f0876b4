"""Predict globally, correct locally against plain gradient descent on the spirals toy.

    mpiexec -n 4 .venv/bin/python examples/python/train_predict_correct.py   # a block per rank
    .venv/bin/python examples/python/train_predict_correct.py --blocks 4      # 4 blocks, 1 rank

A 16-layer tanh ResNet (width 4, h = 0.25) learns two interleaved spirals by full-batch
gradient descent, once with exact backpropagation and once with predict/correct iterations:
every block of layers updates its weights from its own forward and backward sweep, started at
boundary states and co-states that a coarse network (one layer per block, mean weights)
predicts. Both reach the same loss; predict/correct needs fewer layer steps one after another
(the critical path), which is what more ranks turn into time.
"""

from __future__ import annotations

import argparse
import time

from mpi4py import MPI

from layerbraid import Propagator, data, nn
from layerbraid.methods.predict_correct import PredictCorrect


def main() -> None:
    comm = MPI.COMM_WORLD
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blocks", type=int, default=None, help="layer blocks (default: ranks)")
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args()
    ds = data.spirals(400, 100)
    net = nn.ResNet.dense(2, 4, 2, 16, activation="tanh", final_time=4.0,
                          opening="expand_zero")
    methods = {"backpropagation": Propagator(net, comm),
               "predict/correct": PredictCorrect(net, comm, blocks=args.blocks)}
    exact = Propagator(net, comm)     # the true loss of the current weights, for the report
    root = comm.Get_rank() == 0
    for name, prop in methods.items():
        params = prop.init_params(0)
        start = time.perf_counter()
        for i in range(args.iterations):
            grad = prop.loss_and_gradient(params, ds.x_train, ds.y_train).gradient
            for k in params:
                params[k] -= args.lr * grad[k]
        seconds = time.perf_counter() - start
        ev = exact.loss(params, ds.x_train, ds.y_train)
        val = exact.loss(params, ds.x_val, ds.y_val)
        if isinstance(prop, PredictCorrect):
            steps = prop.cost().sequential_steps(args.iterations)
            detail = f"{prop.blocks} blocks of {prop.block_layers} layers"
        else:
            steps = args.iterations * 2 * net.depth
            detail = "layer by layer"
        if root:
            print(f"{name:16s} ({detail}): loss {ev.loss:.4f}, training accuracy "
                  f"{100 * ev.accuracy:.1f} %, validation {100 * val.accuracy:.1f} %; "
                  f"{steps} layer steps on the critical path; {seconds:.1f} s on "
                  f"{comm.Get_size()} rank(s)")


if __name__ == "__main__":
    main()
