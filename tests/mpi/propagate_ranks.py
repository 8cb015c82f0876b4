"""Serial and layer-parallel loss and gradient of two small networks on this many ranks.

Usage: mpiexec -n P python propagate_ranks.py OUT.npz [BACKEND]
BACKEND is numpy (default) or native. Rank 0 writes every loss, gathered gradient and residual history to OUT.npz and prints a
JSON line; tests/test_propagate.py compares the files of different rank counts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layerbraid.propagate import LAYER_PARALLEL, SERIAL, Propagator  # noqa: E402
from resnet_cases import batch, conv_net, dense_net  # noqa: E402

comm = MPI.COMM_WORLD
backend = sys.argv[2] if len(sys.argv) > 2 else "numpy"
results: dict[str, np.ndarray] = {}
nets = {"dense": dense_net("tanh", depth=32, width=6, reg="all"),
        "conv": conv_net("smoothrelu", depth=16, reg="all")}
modes = {"serial": SERIAL, "mgrit": {**LAYER_PARALLEL, "abs_tol": 1e-10, "max_iter": 60}}
for name, net in nets.items():
    x, labels = batch(net, size=9)
    for mode, options in modes.items():
        prop = Propagator(net, options=options, backend=backend)
        full = net.init_params(2, weights="smooth")
        params = {k: v for k, v in full.items() if prop.layout.owns(k)}
        ev = prop.loss_and_gradient(params, x, labels)
        gathered = comm.gather(ev.gradient, root=0)
        prefix = f"{name}/{mode}/"
        results[prefix + "loss"] = np.array(ev.loss)
        results[prefix + "accuracy"] = np.array(ev.accuracy)
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
