"""scalar_adjoint: XBraid's adjoint on the scalar test equation, driven from Python.

    u'(t) = lambda u(t),  u(0) = 1,  lambda = -1,  t in [0, tstop],

backward Euler u_{i+1} = u_i / (1 - lambda dt), with the objective

    J = (1 / ntime) sum_{i=0}^{ntime} u_i^2

and its derivative dJ/dlambda, both from one drive (``Solver(adjoint=True)``: the piggy-back
iteration of state and adjoint). The Python twin of examples/c/scalar_adjoint.c: the same
flags, floating-point operations and output.

    mpiexec -n 2 .venv/bin/python examples/python/scalar_adjoint.py [-ntime 50] [-tstop 25]
        [-ml 2] [-cf 2] [-mi 20] [-tol 1e-6] [-tol_adj 1e-6] [-lambda -1] [-print 1]

(mpiexec: the mpich wheel's, ``python -c 'import layerbraid; print(layerbraid.find_mpiexec())'``.)
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np
from mpi4py import MPI

import layerbraid


class ScalarAdjoint(layerbraid.App):
    """The state is a NumPy array of one float64; every expression is the C program's, in its
    order, so both give the same bits."""

    def __init__(self, lam: float) -> None:
        super().__init__()
        self.lam = lam
        self.grad = 0.0  # dJ/dlambda of this rank's steps, accumulated by step_diff

    def init(self, t: float) -> np.ndarray:
        return np.array([1.0 if t == 0.0 else 0.456])

    def step(self, u: np.ndarray, ustop: np.ndarray, status) -> None:
        u[0] = u[0] / (1.0 - self.lam * (status.tstop - status.tstart))

    def norm(self, u: np.ndarray) -> float:
        return abs(float(u[0]))

    # ---- the adjoint ----

    def objective(self, u: np.ndarray, status) -> float:
        return float(u[0] * u[0] / self.ntime)

    def objective_diff(self, u: np.ndarray, u_bar: np.ndarray, f_bar: float, status) -> None:
        u_bar[0] = 2.0 * u[0] / self.ntime * f_bar  # the term does not depend on lambda

    def step_diff(self, ustop: np.ndarray, u: np.ndarray, ustop_bar: np.ndarray,
                  u_bar: np.ndarray, status) -> None:
        # u_bar: the adjoint of the step's result on entry, of its input u on return
        dt = status.tstop - status.tstart
        denom = 1.0 - self.lam * dt
        self.grad += float(u[0] * dt / (denom * denom) * u_bar[0])
        u_bar[0] = u_bar[0] / denom

    def reset_gradient(self) -> None:
        self.grad = 0.0

    def gradient(self) -> float:
        return self.grad


# ---- command line: the C example's flags ----

class _Parser(argparse.ArgumentParser):
    """An unknown or bad flag: the C program's message on rank 0, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if MPI.COMM_WORLD.rank == 0:
            sys.stderr.write(f"scalar_adjoint: {message}\n")
        sys.exit(2)


def _positive_int(text: str) -> int:
    value = int(text, 10)
    if value < 1:
        raise ValueError(text)
    return value


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="scalar_adjoint.py", allow_abbrev=False,
                description="XBraid_Adjoint on u' = lambda u, u(0) = 1, backward Euler: "
                            "J = (1/ntime) sum u_i^2 and dJ/dlambda from one drive.")
    p.add_argument("-ntime", type=_positive_int, default=50, metavar="N",
                   help="number of time steps (default 50)")
    p.add_argument("-tstop", type=float, default=25.0, metavar="T",
                   help="end of the time interval [0, T] (default 25)")
    p.add_argument("-ml", type=_positive_int, default=2, metavar="N",
                   help="maximum number of levels (default 2)")
    p.add_argument("-cf", type=_positive_int, default=2, metavar="N",
                   help="coarsening factor (default 2)")
    p.add_argument("-mi", type=_positive_int, default=20, metavar="N",
                   help="maximum number of iterations (default 20)")
    p.add_argument("-tol", type=float, default=1e-6, metavar="X",
                   help="absolute halting tolerance of the state (default 1e-6)")
    p.add_argument("-tol_adj", type=float, default=1e-6, metavar="X",
                   help="absolute halting tolerance of the adjoint (default 1e-6)")
    p.add_argument("-lambda", dest="lam", type=float, default=-1.0, metavar="X",
                   help="the design parameter lambda (default -1)")
    p.add_argument("-print", type=int, default=1, metavar="N",
                   help="engine print level (default 1)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    comm = MPI.COMM_WORLD
    app = ScalarAdjoint(args.lam)
    try:
        solver = layerbraid.Solver(app, 0.0, args.tstop, args.ntime, comm, max_levels=args.ml,
                                   cfactor=args.cf, max_iter=args.mi, abs_tol=args.tol,
                                   print_level=args.print, adjoint=True,
                                   abs_tol_adjoint=args.tol_adj)
    except (TypeError, ValueError) as e:  # a flag value the solver refuses
        if comm.rank == 0:
            sys.stderr.write(f"scalar_adjoint.py: {e}\n")
        return 1
    with solver:
        result = solver.drive()
    if comm.rank == 0:
        print(f"  iterations = {result.iterations}")
        print(f"  Objective = {result.objective:1.14e}")
        print(f"  Gradient  = {result.gradient:1.14e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
