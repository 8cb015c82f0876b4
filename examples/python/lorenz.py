"""lorenz: MGRIT with Delta correction and Lyapunov estimation on the chaotic Lorenz system,
driven from Python.

    x' = sigma (y - x),  y' = x (rho - z) - y,  z' = x y - beta z,
    sigma = 10, rho = 28, beta = 8/3,

classical RK4 on every level; step also applies the exact derivative of the RK4 map to the
basis vectors Delta correction hands it (``status.basis``). The initial condition is a point
on the attractor (20 time units of RK4 from (1, 1, 1) with dt = 0.01). The Python twin of
examples/c/lorenz.c: the same flags (but ``-test``), floating-point operations and output.

    mpiexec -n 2 .venv/bin/python examples/python/lorenz.py [-ntime 1024] [-tstop 10.24]
        [-ml 2] [-cf 4] [-nu 1] [-rank 3] [-lyap] [-relaxlyap] [-defer-lvl 1] [-defer-iter 0]
        [-mi 30] [-tol 1e-8] [-out file]

-rank 0 turns Delta correction off; -lyap estimates Lyapunov vectors (on the coarsest level)
and the local exponents (``Solver(lyapunov=...)``, read in ``access`` as
``status.local_lyapunov_exponents``). Prints the iterations, max |u - u_serial| over the time
points (the serial RK4 solution on the same grid), and with -lyap the Lyapunov exponents: the
local exponents averaged over the points that have them.
"""

from __future__ import annotations

import math
import sys
from typing import Sequence

import numpy as np
from mpi4py import MPI

import layerbraid

DIM = 3
_C = (0.0, 0.5, 0.5, 1.0)
_W = (1.0, 2.0, 2.0, 1.0)


def rhs(u: Sequence[float]) -> list[float]:
    return [10.0 * (u[1] - u[0]), u[0] * (28.0 - u[2]) - u[1], u[0] * u[1] - (8.0 / 3.0) * u[2]]


def rhs_tangent(u: Sequence[float], d: Sequence[float]) -> list[float]:
    """The Jacobian of rhs at u applied to d."""
    return [10.0 * (d[1] - d[0]), d[0] * (28.0 - u[2]) - u[0] * d[2] - d[1],
            d[0] * u[1] + u[0] * d[1] - (8.0 / 3.0) * d[2]]


def rk4(u: list[float], h: float, d: list[list[float]] = ()) -> None:
    """One RK4 step of size h on u, in place; also the derivative of that map applied to each
    d[m] (the stages differentiated along with the state). The C program's operations, in its
    order."""
    k: list[list[float]] = []
    for s in range(4):
        y = [u[i] + (_C[s] * h * k[s - 1][i] if s > 0 else 0.0) for i in range(DIM)]
        k.append(rhs(y))
    for dm in d:
        dk: list[list[float]] = []
        for s in range(4):
            y = [u[i] + (_C[s] * h * k[s - 1][i] if s > 0 else 0.0) for i in range(DIM)]
            dy = [dm[i] + (_C[s] * h * dk[s - 1][i] if s > 0 else 0.0) for i in range(DIM)]
            dk.append(rhs_tangent(y, dy))
        for i in range(DIM):
            dm[i] += h / 6.0 * (_W[0] * dk[0][i] + _W[1] * dk[1][i] + _W[2] * dk[2][i]
                                + _W[3] * dk[3][i])
    for i in range(DIM):
        u[i] += h / 6.0 * (k[0][i] + 2.0 * k[1][i] + 2.0 * k[2][i] + k[3][i])


class Lorenz(layerbraid.App):
    """States are NumPy arrays of 3 float64; every expression is the C program's."""

    def __init__(self, u0: list[float], ntime: int) -> None:
        super().__init__()
        self.u0 = u0
        self.solution = np.zeros((ntime + 1, DIM))  # access writes the points it sees
        self.exps = np.zeros((ntime + 1, DIM))      # their local Lyapunov exponents
        self.has_exps = np.zeros(ntime + 1, dtype=np.int64)

    def init(self, t: float) -> np.ndarray:
        return np.array(self.u0 if t == 0.0 else [0.0] * DIM)

    def init_basis(self, t: float, index: int) -> np.ndarray:
        e = np.zeros(DIM)
        e[index % DIM] = 1.0  # the columns of the identity
        return e

    def step(self, u: np.ndarray, ustop: np.ndarray, status) -> None:
        basis = status.basis
        d = [basis[m].tolist() for m in range(len(basis))]
        state = u.tolist()
        rk4(state, status.tstop - status.tstart, d)
        u[:] = state
        for m, dm in enumerate(d):
            basis[m][:] = dm  # the engine's own basis vectors, in place

    def sum(self, alpha: float, x: np.ndarray, beta: float, y: np.ndarray) -> None:
        y[:] = alpha * x + beta * y

    def inner_prod(self, u: np.ndarray, v: np.ndarray) -> float:
        return float(u[0] * v[0] + u[1] * v[1] + u[2] * v[2])

    def norm(self, u: np.ndarray) -> float:
        return math.sqrt(float(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]))

    def access(self, u: np.ndarray, status) -> None:
        index = status.tindex
        if status.level != 0 or not 0 <= index < len(self.solution):
            return
        self.solution[index] = u
        exps = status.local_lyapunov_exponents[:DIM]
        self.exps[index, :len(exps)] = exps
        self.has_exps[index] = len(exps) > 0


# ---- command line: the C program's flags ----

_VALUES = {"-ntime": int, "-tstop": float, "-ml": int, "-cf": int, "-nu": int, "-rank": int,
           "-defer-lvl": int, "-defer-iter": int, "-mi": int, "-tol": float, "-out": str}
_SWITCHES = ("-lyap", "-relaxlyap")


def parse(argv: Sequence[str]) -> dict | None:
    """The flags' values (the C defaults for the others); None after a usage error."""
    args: dict = {"-ntime": 1024, "-tstop": 10.24, "-ml": 2, "-cf": 4, "-nu": 1, "-rank": 3,
                  "-defer-lvl": 1, "-defer-iter": 0, "-mi": 30, "-tol": 1e-8, "-out": None,
                  "-lyap": False, "-relaxlyap": False}
    k = 0
    while k < len(argv):
        flag = argv[k]
        if flag in _SWITCHES:
            args[flag] = True
            k += 1
            continue
        try:
            args[flag] = _VALUES[flag](argv[k + 1])
        except (KeyError, IndexError, ValueError):
            if MPI.COMM_WORLD.rank == 0:
                sys.stderr.write("lorenz: unknown option or missing value\n")
            return None
        k += 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args is None:
        return 2
    comm = MPI.COMM_WORLD
    ntime, tstop, rank = args["-ntime"], args["-tstop"], args["-rank"]
    if ntime < 1:
        if comm.rank == 0:
            sys.stderr.write("lorenz: ntime must be >= 1 (and memory enough)\n")
        return 2
    # a point on the attractor, then the serial solution on the grid
    u = [1.0, 1.0, 1.0]
    for _ in range(2000):
        rk4(u, 0.01)
    app = Lorenz(list(u), ntime)
    serial = np.zeros((ntime + 1, DIM))
    serial[0] = u
    for i in range(1, ntime + 1):
        t0, t1 = tstop * float(i - 1) / ntime, tstop * float(i) / ntime
        rk4(u, t1 - t0)
        serial[i] = u

    options: dict = dict(max_levels=args["-ml"], cfactor=args["-cf"], nrelax=args["-nu"],
                         max_iter=args["-mi"], abs_tol=args["-tol"], skip=False, print_level=1)
    if rank > 0:
        options.update(delta_rank=rank, defer_delta=(args["-defer-lvl"], args["-defer-iter"]))
        if args["-lyap"] or args["-relaxlyap"]:
            options["lyapunov"] = dict(relax=args["-relaxlyap"], cglv=args["-lyap"],
                                       exponents=True)
    try:
        solver = layerbraid.Solver(app, 0.0, tstop, ntime, comm, **options)
    except (TypeError, ValueError) as e:  # a flag value the solver refuses
        if comm.rank == 0:
            sys.stderr.write(f"lorenz.py: {e}\n")
        return 1
    with solver:
        result = solver.drive()

    # every point is written by exactly one rank: the sums are exact
    sol = comm.reduce(app.solution, op=MPI.SUM, root=0)
    exps = comm.reduce(app.exps, op=MPI.SUM, root=0)
    has = comm.reduce(app.has_exps, op=MPI.SUM, root=0)
    if comm.rank == 0:
        diff, avg, count = 0.0, [0.0] * DIM, 0
        for i in range(ntime + 1):
            for k in range(DIM):
                diff = max(diff, abs(float(sol[i, k]) - float(serial[i, k])))
                if has[i]:
                    avg[k] += float(exps[i, k])
            count += int(has[i] > 0)
        print(f"  Iterations = {result.iterations}")
        print(f"  max |u - u_serial| = {diff:.6e}")
        if count > 0:
            shown = " ".join(f"{avg[k] / count:.6f}" for k in range(min(rank, DIM)))
            print(f"  Lyapunov exponents (average of {count} local ones): {shown}")
        if args["-out"] is not None:
            with open(args["-out"], "w") as f:
                for i in range(ntime + 1):
                    f.write(f"{i} {sol[i, 0]:.17e} {sol[i, 1]:.17e} {sol[i, 2]:.17e}\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
