"""scalar_ode: MGRIT on the scalar test equation, driven from Python.

    u'(t) = lambda u(t),  lambda = -1,  u(0) = 1,  t in [0, ntime / 2],

discretised with backward Euler, u_{i+1} = u_i / (1 - lambda dt), dt = 1/2, so the discrete
solution is u_i = (1 / 1.5)^i. The Python twin of examples/c/scalar_ode.c: the same problem,
flags, floating-point operations and output, so both give the same residuals to round-off.

    mpiexec -n 4 .venv/bin/python examples/python/scalar_ode.py -ml 3

(mpiexec: the mpich wheel's, ``python -c 'import layerbraid; print(layerbraid.find_mpiexec())'``.)
See README.md beside this file for every flag.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np
from mpi4py import MPI

import layerbraid


class ScalarODE(layerbraid.App):
    """The state is a NumPy array of one float64; the vector operations mirror the C code."""

    def __init__(self, lam: float = -1.0, record: bool = False, periodic: bool = False,
                 refine: int = 0) -> None:
        super().__init__()
        self.lam = lam
        self.periodic = periodic  # -periodic: the points are 0..ntime-1 (ntime is point 0)
        self.refine = refine      # -refine N: halve every fine step while nrefine < N
        # with -out: index -> (t, u) of the converged solution on the points this rank owns
        self.solution: dict[int, tuple[float, float]] | None = {} if record else None

    def init(self, t: float) -> np.ndarray:
        if self.periodic:
            # no initial condition: start from the periodic solution of u' = -u, 0, which the
            # solver must keep exact
            return np.array([0.0])
        # the initial condition at tstart; anywhere else an arbitrary non-solution value
        return np.array([1.0 if t == self.tstart else 0.456])

    def step(self, u: np.ndarray, ustop: np.ndarray, status,
             fstop: np.ndarray | None = None) -> None:
        # backward Euler: (1 - lambda dt) u_new = u_old, the C expression in the C order;
        # fstop is only given when a residual method is set (-res: ResidualScalarODE)
        tstart, tstop = status.tstart, status.tstop
        if fstop is not None:
            u[0] = u[0] + fstop[0]
        u[0] = u[0] / (1.0 - self.lam * (tstop - tstart))
        if self.refine > 0 and status.level == 0 and status.nrefine < self.refine:
            status.set_rfactor(2)  # -refine: halve the fine grid's steps, refine times in all

    def norm(self, u: np.ndarray) -> float:
        return abs(float(u[0]))

    def access(self, u: np.ndarray, status) -> None:
        if self.solution is None:
            return
        # with -refine the fine grid grows to ntime * 2^refine steps
        if status.done and status.level == 0 and 0 <= status.tindex <= self.ntime << self.refine:
            self.solution[status.tindex] = (status.t, float(u[0]))


class ResidualScalarODE(ScalarODE):
    """-res: the app brings the residual of backward Euler (the solver then passes step the
    FAS right-hand side as fstop, which ScalarODE.step adds before it solves)."""

    def residual(self, ustop: np.ndarray, r: np.ndarray, status) -> None:
        # r = (1 - lambda dt) ustop - u(tstart), where r holds u(tstart) on entry
        tstart, tstop = status.tstart, status.tstop
        r[0] = (1.0 - self.lam * (tstop - tstart)) * ustop[0] - r[0]


def time_grid(ntime: int, tstart: float, dt: float):
    """-tg 2: the first ntime/2 steps are dt/2 long, the others share the rest of the interval
    (3 dt/2 each for an even ntime; the C expression, point by point, for the indices the
    engine asks for)."""
    half = ntime // 2
    rest = (ntime * dt - half * dt / 2.0) / (ntime - half)

    def times(indices: np.ndarray) -> np.ndarray:
        return np.array([tstart + i * dt / 2.0 if i <= half
                         else tstart + half * dt / 2.0 + (i - half) * rest
                         for i in indices.tolist()])

    return times


# ---- command line: the C example's flags, checked the same way ----

def _int_flag(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"needs an integer in [{lo}, {hi}], got {text}")
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"needs an integer in [{lo}, {hi}], got {text}")
        return value

    return parse


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a number > 0, got {text}")
    if not (np.isfinite(value) and value > 0.0):
        raise argparse.ArgumentTypeError(f"needs a number > 0, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """Prints errors and help on rank 0 only; a bad flag exits with status 2, like the C code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if MPI.COMM_WORLD.rank == 0:
            self.print_usage(sys.stderr)
            sys.stderr.write(f"{self.prog}: {message}\n")
        sys.exit(2)


def make_parser() -> argparse.ArgumentParser:
    big = 1_000_000_000
    p = _Parser(prog="scalar_ode.py", add_help=False, allow_abbrev=False,
                description="MGRIT on u' = -u, u(0) = 1, backward Euler with dt = 1/2 on "
                            "[0, ntime/2].")
    p.add_argument("-ntime", type=_int_flag(1, big), default=10, metavar="N",
                   help="number of time steps (default 10)")
    p.add_argument("-ml", type=_int_flag(1, 30), default=2, metavar="N",
                   help="maximum number of levels (default 2)")
    p.add_argument("-nu", type=_int_flag(0, 1000), default=1, metavar="N",
                   help="relaxation sweeps on every level: 0 F, 1 FCF, ... (default 1)")
    p.add_argument("-nu0", type=_int_flag(0, 1000), default=None, metavar="N",
                   help="relaxation sweeps on the finest level (default: -nu)")
    p.add_argument("-nuc", type=_int_flag(0, 1000), default=None, metavar="N",
                   help="relaxation sweeps on the coarsest level, level ml-1 (default: -nu)")
    p.add_argument("-cf", type=_int_flag(2, big), default=2, metavar="N",
                   help="coarsening factor, >= 2 (default 2)")
    p.add_argument("-mi", type=_int_flag(1, big), default=100, metavar="N",
                   help="maximum number of iterations (default 100)")
    p.add_argument("-tol", type=_positive, default=1e-6, metavar="X",
                   help="absolute halting tolerance (default 1e-6)")
    p.add_argument("-rtol", type=_positive, default=None, metavar="X",
                   help="relative halting tolerance, used instead of -tol")
    p.add_argument("-skip", type=_int_flag(0, 1), default=1, metavar="0|1",
                   help="skip the work of the first down-cycle (default 1)")
    p.add_argument("-fmg", action="store_true",
                   help="use F-cycles (full multigrid) instead of V-cycles")
    p.add_argument("-periodic", action="store_true",
                   help="periodic in time, u(0) = u(ntime/2); starts from u = 0")
    p.add_argument("-tg", type=_int_flag(1, 2), default=1, metavar="1|2",
                   help="time grid: 1 uniform (default), 2 the first ntime/2 steps dt/2, the "
                        "others share the rest (3dt/2 for an even ntime)")
    p.add_argument("-res", action="store_true",
                   help="use a residual method (step then adds fstop)")
    p.add_argument("-relax_only_cg", action="store_true",
                   help="solve the coarsest grid by relaxation (-nuc sweeps)")
    p.add_argument("-refine", type=_int_flag(0, 20), default=0, metavar="N",
                   help="temporal refinement: halve every fine step, N times (default 0)")
    p.add_argument("-resid_compute", type=_int_flag(0, 1), default=1, metavar="0|1",
                   help="compute the residual norm each iteration (default 1)")
    p.add_argument("-storage", type=_int_flag(-1, 30), default=-1, metavar="N",
                   help="-1 store C-points only, 0 all points, l > 0 all points from level l "
                        "on (default -1)")
    p.add_argument("-tnorm", type=_int_flag(1, 3), default=2, metavar="1|2|3",
                   help="temporal norm: 1 sum, 2 l2, 3 max (default 2)")
    p.add_argument("-print", type=_int_flag(0, 3), default=2, metavar="N",
                   help="print level 0..3 (default 2)")
    p.add_argument("-access", type=_int_flag(0, 2), default=1, metavar="N",
                   help="access level 0..2 (default 1)")
    p.add_argument("-out", default=None, metavar="FILE",
                   help='write "index t u" at every time point to FILE (needs -access >= 1)')
    p.add_argument("-help", "--help", "-h", action="store_true", help="this message")
    return p


# ---- -out: gather the solution on rank 0 and write it ----

def write_solution(app: ScalarODE, ntime: int, path: str, comm: MPI.Comm) -> bool:
    """ntime: the final grid's steps (-refine grows them); periodic: point ntime is point 0."""
    pieces = comm.gather(app.solution, root=0)
    ok = True
    if comm.rank == 0:
        n = ntime + (0 if app.periodic else 1)
        count = [0] * n
        merged: dict[int, tuple[float, float]] = {}
        for piece in pieces:
            for index, value in piece.items():
                count[index] += 1
                merged[index] = value
        for i in range(n):
            if count[i] != 1:
                print(f"scalar_ode: time point {i} was accessed {count[i]} times, not once",
                      file=sys.stderr)
                ok = False
                break
        if ok:
            try:
                with open(path, "w") as f:
                    for i in range(n):
                        t, u = merged[i]
                        f.write("%d %.17e %.17e\n" % (i, t, u))
            except OSError as e:
                print(f"scalar_ode: cannot write {path}: {e.strerror}", file=sys.stderr)
                ok = False
    return comm.bcast(ok, root=0)


def main(argv: Sequence[str] | None = None) -> int:
    comm = MPI.COMM_WORLD
    parser = make_parser()
    o = parser.parse_args(argv)
    if o.help:
        if comm.rank == 0:
            parser.print_help(sys.stdout)
        return 0
    if o.out is not None and o.out == "":
        parser.error("-out needs a file name")
    if o.out is not None and o.access < 1:
        parser.error("-out needs -access 1 or more")

    if o.ntime << o.refine > 1_000_000_000:
        parser.error(f"-ntime {o.ntime} refined {o.refine} times exceeds 1e9 steps")

    tstart = 0.0
    tstop = o.ntime / 2.0
    dt = (tstop - tstart) / o.ntime
    cls = ResidualScalarODE if o.res else ScalarODE  # -res: the app's own residual
    app = cls(record=o.out is not None, periodic=o.periodic, refine=o.refine)

    nrelax = {-1: o.nu}
    if o.nu0 is not None:
        nrelax[0] = o.nu0
    if o.nuc is not None:
        nrelax[o.ml - 1] = o.nuc
    options = dict(max_levels=o.ml, nrelax=nrelax, cfactor=o.cf, max_iter=o.mi, skip=bool(o.skip),
                   fmg=o.fmg, residual_computation=bool(o.resid_compute), storage=o.storage,
                   temporal_norm=o.tnorm, print_level=o.print, access_level=o.access,
                   periodic=o.periodic, relax_only_cg=o.relax_only_cg,
                   # the engine does not refine periodic grids (the C program's requests are
                   # ignored there), and Solver refuses refine=True with periodic=True
                   refine=o.refine > 0 and not o.periodic)
    if o.rtol is not None:
        options["rel_tol"] = o.rtol
    else:
        options["abs_tol"] = o.tol
    if o.tg == 2:
        # tstart and tstop follow from the grid (they are 0 and ntime/2 for an even ntime)
        grid = dict(ntime=o.ntime, time_grid=time_grid(o.ntime, tstart, dt))
    else:
        grid = dict(tstart=tstart, tstop=tstop, ntime=o.ntime)

    try:
        solver = layerbraid.Solver(app, comm=comm, **grid, **options)
    except (TypeError, ValueError) as e:
        # a combination the engine refuses (e.g. -periodic with one level): every rank finds
        # it before the solve; the C program's braid_Drive fails the same way (status 1)
        if comm.rank == 0:
            print(f"scalar_ode.py: {e}", file=sys.stderr)
        return 1
    with solver:
        result = solver.drive()
    if o.out is not None and not write_solution(app, result.ntime, o.out, comm):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
