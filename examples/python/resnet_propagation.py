"""resnet_propagation: forward and backward propagation through a deep ResNet, layer-parallel.

Builds a dense ResNet-ODE (2 inputs, 5 classes), computes the loss and every gradient of a
batch twice, layer-serially (exact backpropagation) and with MGRIT over the layers distributed
over the ranks, and prints the residual histories, the largest gradient difference and the
times::

    MPIEXEC=$(.venv/bin/python -c 'import layerbraid; print(layerbraid.find_mpiexec())')
    $MPIEXEC -n 2 .venv/bin/python examples/python/resnet_propagation.py --depth 256
    .venv/bin/python examples/python/resnet_propagation.py --weights random   # one rank

``--max-iter 2`` shows what one-shot training uses: two cycles per solve, an inexact gradient.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np
from mpi4py import MPI

import layerbraid
from layerbraid import nn
from layerbraid.propagate import LAYER_PARALLEL, SERIAL


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=128, help="residual layers N (128)")
    parser.add_argument("--width", type=int, default=16, help="state width (16)")
    parser.add_argument("--batch", type=int, default=256, help="batch size (256)")
    parser.add_argument("--activation", default="tanh", choices=sorted(nn.ACTIVATIONS))
    parser.add_argument("--weights", default="smooth", choices=sorted(nn.WEIGHT_INITS),
                        help="smooth-in-layer (default) or independent random weights")
    parser.add_argument("--cfactor", type=int, default=4, help="coarsening factor (4)")
    parser.add_argument("--max-iter", type=int, default=50, help="most MGRIT cycles (50)")
    parser.add_argument("--tol", type=float, default=1e-10, help="absolute tolerance (1e-10)")
    parser.add_argument("--backend", default="numpy", choices=["numpy", "native", "cupy"])
    args = parser.parse_args(argv)

    comm = MPI.COMM_WORLD
    root = comm.Get_rank() == 0
    net = nn.ResNet.dense(2, args.width, 5, args.depth, activation=args.activation,
                          final_time=1.0, regularization=nn.Regularization(1e-7, 1e-7, 1e-5))
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (args.batch, 2))
    labels = rng.integers(0, 5, args.batch)
    parallel_options = {**LAYER_PARALLEL, "cfactor": args.cfactor, "max_iter": args.max_iter,
                        "abs_tol": args.tol}
    results = {}
    for name, options in (("layer-serial", SERIAL), ("layer-parallel", parallel_options)):
        with layerbraid.Propagator(net, comm, backend=args.backend, options=options) as prop:
            params = prop.init_params(seed=1, weights=args.weights)
            prop.loss_and_gradient(params, x, labels)  # warm-up: allocations, BLAS threads
            comm.Barrier()
            start = MPI.Wtime()
            ev = prop.loss_and_gradient(params, x, labels)
            wall = comm.allreduce(MPI.Wtime() - start, op=MPI.MAX)
            results[name] = (ev, wall)
    (serial, t_serial), (parallel, t_parallel) = results["layer-serial"], results["layer-parallel"]
    local = max(float(np.abs(parallel.gradient[k] - g).max()) for k, g in serial.gradient.items())
    largest = comm.allreduce(local, op=MPI.MAX)
    if root:
        print(f"ResNet: N = {args.depth} layers, width {args.width}, batch {args.batch}, "
              f"{args.activation}, {args.weights} weights, {comm.Get_size()} rank(s)")
        print(f"loss: layer-serial {serial.loss:.15e}, layer-parallel {parallel.loss:.15e}")
        for solve in ("forward", "adjoint"):
            result = getattr(parallel, solve)
            history = ", ".join("-" if r is None else f"{r:.2e}" for r in result.residual_history)
            print(f"{solve:>8}: {result.iterations} MGRIT cycles over {result.nlevels} levels; "
                  f"residuals {history}")
        print(f"largest gradient difference from layer-serial: {largest:.2e}")
        print(f"wall time: layer-serial {t_serial:.3f} s, layer-parallel {t_parallel:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
