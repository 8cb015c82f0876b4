"""NumPy and CuPy states give the same MGRIT solves across ranks (needs a GPU).

    mpiexec -n N python tests/mpi/solver_backends.py

Solves the scalar decay and the heat equation once with NumPy states and once with CuPy
states (so every message is packed from the device and unpacked onto it), gathers the
solutions on rank 0, which prints one line of JSON: ``backends {"scalar": {...}, "heat":
{...}}`` with, per problem, ``iterations_equal``, ``history_rel`` (largest relative difference
of the residual histories), ``solution_rel`` (largest relative difference of the solutions)
and ``points`` (time points compared).
"""

from __future__ import annotations

import json

import numpy as np
from mpi4py import MPI
from solver_apps import HeatXP, ScalarDecay

import layerbraid


def rel(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return 0.0 if a == b or scale < 1e-14 else abs(a - b) / scale


def solve(app: layerbraid.App, tstop: float, ntime: int, **options):
    with layerbraid.Solver(app, 0.0, tstop, ntime, print_level=0, **options) as solver:
        result = solver.drive()
    pieces = MPI.COMM_WORLD.gather(app.solution, root=0)
    solution: dict = {}
    for piece in pieces or []:
        solution.update({k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in piece.items()})
    return result, solution


def compare(make, tstop: float, ntime: int, **options) -> dict:
    r_np, s_np = solve(make("numpy"), tstop, ntime, **options)
    r_cp, s_cp = solve(make("cupy"), tstop, ntime, **options)
    history = [rel(a, b) for a, b in zip(r_np.residual_history, r_cp.residual_history)
               if a is not None and b is not None]
    solution = [rel(float(x), float(y)) for k in s_np for x, y in zip(s_np[k], s_cp.get(k, []))]
    return {"iterations_equal": r_np.iterations == r_cp.iterations
            and len(r_np.residual_history) == len(r_cp.residual_history),
            "history_rel": max(history, default=0.0),
            "solution_rel": max(solution, default=0.0),
            "points": len(s_np) if sorted(s_np) == sorted(s_cp) else -1}


def main() -> None:
    report = {
        "scalar": compare(lambda b: ScalarDecay(backend=b), 16.0, 32, max_levels=3,
                          abs_tol=1e-12),
        "heat": compare(lambda b: HeatXP(17, backend=b), 1.0, 64, max_levels=3, abs_tol=1e-10),
    }
    if MPI.COMM_WORLD.rank == 0:
        print("backends " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
