"""optimal_control: gradient descent on a design parameter, the gradient of each step from one
drive of ``Solver(adjoint=True)`` (the piggy-back iteration of state and adjoint).

    u' = lambda u,  u(0) = 1,  t in [0, 5],  backward Euler with ntime steps,
    J(lambda) = (1 / ntime) sum_{i=0}^{ntime} (u_i - ubar_i)^2,  ubar_i = (1 + 0.5 dt)^(-i),

so the optimum is lambda* = -0.5 (J = 0). The Python twin of examples/c/optimal_control.c,
whose header states the specification both follow: the same flags, floating-point operations
and output lines, the same bits on any number of ranks.

    mpiexec -n 2 .venv/bin/python examples/python/optimal_control.py [-nsteps 25] [-eta 1.4]
        [-lambda0 -1.5] [-ntime 64] [-ml 2] [-cf 4] [-tol 1e-10]

(mpiexec: the mpich wheel's, ``python -c 'import layerbraid; print(layerbraid.find_mpiexec())'``.)
"""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np
from mpi4py import MPI

import layerbraid


class Decay(layerbraid.App):
    """The state is a NumPy array of one float64; the expressions are the C program's."""

    def __init__(self, lam: float, ntime: int, max_levels: int) -> None:
        super().__init__()
        self.lam = lam
        dt = 5.0 / ntime
        self.target = [(1.0 + 0.5 * dt) ** float(-i) for i in range(ntime + 1)]
        # dJ/dlambda by (level, time index) of the step it came from: each slot is written on
        # one rank, so the sum over the ranks is exact and the example adds the slots in
        # order, which makes the gradient the same bits on any number of ranks
        self.slots = np.zeros(max_levels * (ntime + 1))

    def init(self, t: float) -> np.ndarray:
        return np.array([1.0 if t == 0.0 else 0.0])

    def step(self, u: np.ndarray, ustop: np.ndarray, status) -> None:
        u[0] = u[0] / (1.0 - (status.tstop - status.tstart) * self.lam)

    def norm(self, u: np.ndarray) -> float:
        return abs(float(u[0]))

    # ---- the adjoint ----

    def objective(self, u: np.ndarray, status) -> float:
        r = u[0] - self.target[status.tindex]
        return float(r * r / self.ntime)

    def objective_diff(self, u: np.ndarray, u_bar: np.ndarray, f_bar: float, status) -> None:
        u_bar[0] = 2.0 * (u[0] - self.target[status.tindex]) / self.ntime * f_bar

    def step_diff(self, ustop: np.ndarray, u: np.ndarray, ustop_bar: np.ndarray,
                  u_bar: np.ndarray, status) -> None:
        # u_bar: the adjoint of the step's result on entry, of its input u on return
        dt = status.tstop - status.tstart
        denom = 1.0 - dt * self.lam
        self.slots[status.level * (self.ntime + 1) + status.tindex] += \
            dt * u[0] / (denom * denom) * u_bar[0]
        u_bar[0] = u_bar[0] / denom

    def reset_gradient(self) -> None:
        self.slots[:] = 0.0

    def gradient(self) -> np.ndarray:
        return self.slots


def solve(lam: float, ntime: int, ml: int, cf: int, tol: float) -> tuple[float, float, int]:
    """One optimisation step's drive: J, dJ/dlambda and the iteration count."""
    app = Decay(lam, ntime, ml)
    with layerbraid.Solver(app, 0.0, 5.0, ntime, MPI.COMM_WORLD, max_levels=ml, cfactor=cf,
                           max_iter=30, abs_tol=tol, print_level=0, adjoint=True,
                           abs_tol_adjoint=tol) as solver:
        result = solver.drive()
    gradient = 0.0
    for slot in result.gradient.tolist():  # in slot order, one addition at a time
        gradient += slot
    return result.objective, gradient, result.iterations


# ---- command line: the C program's flags and checks ----

_FLAGS = {"-nsteps": int, "-eta": float, "-lambda0": float, "-ntime": int, "-ml": int,
          "-cf": int, "-tol": float}


def _usage_error(text: str) -> int:
    if MPI.COMM_WORLD.rank == 0:
        sys.stderr.write(f"optimal_control: {text}\n")
    return 2


def parse(argv: Sequence[str]) -> dict[str, float] | None:
    """The flags' values (the C defaults for the others); None after a usage error."""
    values: dict[str, float] = {"-nsteps": 25, "-eta": 1.4, "-lambda0": -1.5, "-ntime": 64,
                                "-ml": 2, "-cf": 4, "-tol": 1e-10}
    for k in range(0, len(argv), 2):
        flag, value = argv[k], argv[k + 1] if k + 1 < len(argv) else None
        try:
            values[flag] = _FLAGS[flag](value)
        except (KeyError, TypeError, ValueError):
            _usage_error(f"unknown option or missing value: {flag} (or a bad value)")
            return None
    if values["-nsteps"] < 0 or values["-ntime"] < 1 or values["-ml"] < 1 or \
            values["-cf"] < 2 or not values["-tol"] > 0.0:
        _usage_error("need nsteps >= 0, ntime >= 1, ml >= 1, cf >= 2, tol > 0")
        return None
    return values


def main(argv: Sequence[str] | None = None) -> int:
    values = parse(sys.argv[1:] if argv is None else argv)
    if values is None:
        return 2
    rank = MPI.COMM_WORLD.rank
    lam = values["-lambda0"]
    for k in range(int(values["-nsteps"])):
        J, gradient, iterations = solve(lam, int(values["-ntime"]), int(values["-ml"]),
                                        int(values["-cf"]), values["-tol"])
        if rank == 0:
            print(f"step {k:3d}  lambda = {lam:.12e}  J = {J:.12e}  dJ/dlambda = "
                  f"{gradient:.12e}  iterations = {iterations}", flush=True)
        lam -= values["-eta"] * gradient
    if rank == 0:
        print(f"optimum lambda = {lam:.12e}  (exact -0.5)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
