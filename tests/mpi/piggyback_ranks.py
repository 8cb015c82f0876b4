"""Piggy-back (one adjoint drive) and two-solve loss and gradient of two small networks on this
many ranks: converged, on one level, and capped at two cycles for three warm-started calls
(one-shot).

Usage: mpiexec -n P python piggyback_ranks.py OUT.npz
Rank 0 writes every loss, gathered gradient and residual history to OUT.npz and prints a JSON
line; tests/test_piggyback.py compares the files of different rank counts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layerbraid.propagate import Propagator  # noqa: E402
from resnet_cases import batch, conv_net, dense_net  # noqa: E402

comm = MPI.COMM_WORLD
results: dict[str, np.ndarray] = {}
nets = {"dense": dense_net("tanh", depth=32, width=6, reg="all"),
        "conv": conv_net("smoothrelu", depth=16, reg="all")}
mgrit = {"max_levels": 10, "cfactor": 4, "min_coarse": 2, "nrelax": 1}
runs = {  # name: (gradient method, options, warm start, calls)
    "two-solve": ("two-solve", {**mgrit, "abs_tol": 1e-12, "max_iter": 60}, False, 1),
    "one-level": ("piggy-back", {"max_levels": 1}, False, 1),
    "piggy-back": ("piggy-back", {**mgrit, "abs_tol": 1e-12, "max_iter": 60}, False, 1),
    "one-shot": ("piggy-back", {**mgrit, "abs_tol": 0.0, "max_iter": 2}, True, 3),
}
for name, net in nets.items():
    x, labels = batch(net, size=9)
    for run, (method, options, warm, calls) in runs.items():
        prop = Propagator(net, options=options, warm_start=warm, gradient_method=method)
        full = net.init_params(2, weights="smooth")
        params = {k: v for k, v in full.items() if prop.layout.owns(k)}
        for call in range(calls):
            ev = prop.loss_and_gradient(params, x, labels)
            prefix = f"{name}/{run}/{call}/"
            gathered = comm.gather(ev.gradient, root=0)
            results[prefix + "loss"] = np.array(ev.loss)
            results[prefix + "accuracy"] = np.array(ev.accuracy)
            results[prefix + "iterations"] = np.array(ev.forward.iterations)
            for solve in ("forward", "adjoint"):
                history = getattr(ev, solve).residual_history
                results[prefix + solve] = np.array([np.nan if r is None else r for r in history])
            if comm.Get_rank() == 0:
                merged = {k: v for part in gathered for k, v in part.items()}
                assert sorted(merged) == sorted(full), "the ranks' parameters do not cover the net"
                results.update({prefix + k: v for k, v in merged.items()})
        prop.close()
if comm.Get_rank() == 0:
    np.savez(sys.argv[1], **results)
    print(json.dumps({"nprocs": comm.Get_size(), "entries": len(results)}))
