"""Per-rank step counts of native forward and adjoint solves, for tests/test_plan.py.

Usage: mpiexec -n P python plan_steps.py
Runs a few (depth, levels, cfactor, relax, iterations) cases of a small dense tanh network with
the native backend and prints, on rank 0, one JSON line: a list of cases, each with the
iterations and the gathered per-rank ``steps`` / ``steps_coarsest`` of both solves.
"""

from __future__ import annotations

import json

import numpy as np
from mpi4py import MPI

from layerbraid.native import _module

CASES = [  # depth, max_levels, cfactor, nrelax, max_iter, warm (second solve)
    (64, 3, 4, 1, 3, False),
    (64, 2, 2, 0, 4, False),
    (100, 4, 2, 1, 2, False),
    (47, 3, 3, 0, 3, True),
    (33, 5, 2, 1, 2, False),
]

comm = MPI.COMM_WORLD
m = _module()
W, B = 3, 2
out = []
for depth, levels, cf, nrelax, iters, warm in CASES:
    o = m.SolverOptions()
    o.max_levels, o.cfactor, o.nrelax, o.max_iter = levels, cf, nrelax, iters
    o.abs_tol, o.warm_start = np.nextafter(0.0, 1.0), warm
    prop = m.Propagation64("dense", [W], "tanh", depth, 1.0, B, comm.py2f(), o, o, [W, W])
    first, count = prop.owned_layers()
    rng = np.random.default_rng(first)
    w = [rng.normal(size=(W, W)) / np.sqrt(W) for _ in range(count)]
    b = [rng.normal(size=W) / np.sqrt(W) for _ in range(count)]
    u0 = np.ones(B * W) if comm.rank == 0 else None
    for _ in range(2 if warm else 1):
        fwd = prop.forward(w, b, u0)
        last = prop.final_state()
        adj = prop.adjoint(None if last is None else np.array(last))
    row = {"depth": depth, "levels": levels, "cfactor": cf, "nrelax": nrelax, "warm": warm,
           "iterations": [fwd["iterations"], adj["iterations"]],
           "nlevels": fwd["levels"]}
    for name, info in (("forward", fwd), ("adjoint", adj)):
        row[name] = comm.gather([info["steps"], info["steps_coarsest"]], root=0)
    out.append(row)
if comm.rank == 0:
    print(json.dumps(out))
