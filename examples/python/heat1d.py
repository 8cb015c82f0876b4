"""heat1d: MGRIT on the one-dimensional heat equation, driven from Python.

    u_t = u_xx,  x in [0, pi],  t in [0, tstop] (tstop = 1 unless -tstop),
    u(0, x) = sin(x),  u(t, 0) = u(t, pi) = 0,  exact solution u = exp(-t) sin(x).

Space: second-order central differences on nspace points x_j = j h, h = pi / (nspace - 1),
boundaries included (and held at 0). Time: backward Euler, ntime steps of dt = tstop / ntime;
each step solves (I - dt D_xx) u_new = u_old with the Thomas algorithm. The spatial norm is
the discrete L2 norm sqrt(h sum_j u_j^2). After the solve, rank 0 prints the discretisation
error at the final time and the largest over all time points.

The Python twin of examples/c/heat1d.c: the same problem, flags, floating-point operations
(in the same order) and output, so both give the same residuals to round-off.

    mpiexec -n 4 .venv/bin/python examples/python/heat1d.py -ntime 64 -nspace 33

(mpiexec: the mpich wheel's, ``python -c 'import layerbraid; print(layerbraid.find_mpiexec())'``.)
See README.md beside this file for every flag.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Sequence

import numpy as np
from mpi4py import MPI

import layerbraid

PI = 3.14159265358979323846  # the C example's kPi (== math.pi)


class Heat1D(layerbraid.App):
    """The state is a NumPy float64 array of the grid values, boundaries included: nspace of
    them on the finest spatial grid, fewer on the coarser grids of -sc (SpatialHeat1D)."""

    def __init__(self, nspace: int, scoarsen: bool = False) -> None:
        super().__init__()
        self.nspace = nspace  # points of the finest spatial grid
        self.h = PI / (nspace - 1)
        self.scoarsen = scoarsen  # -sc: halve the spatial grid on every coarser time level
        # filled by access with the converged solution (done, fine grid)
        self.err_final = 0.0  # max-norm error at the last time point; 0 on ranks without it
        self.err_max = 0.0    # largest max-norm error over the points this rank accessed
        self.accessed = 0
        self.u_final: np.ndarray | None = None  # the solution at t = tstop, on its owner

    def x(self, j: int) -> float:
        return j * self.h

    def exact(self, t: float, j: int) -> float:
        """exp(-t) sin(x_j), exactly 0 on the boundary."""
        if j == 0 or j == self.nspace - 1:
            return 0.0
        return math.exp(-t) * math.sin(self.x(j))

    def init(self, t: float) -> np.ndarray:
        # the initial condition at tstart; elsewhere the bump x (pi - x) / pi^2
        n = self.nspace
        values = []
        for j in range(n):
            x = self.x(j)
            values.append(math.sin(x) if t == self.tstart else x * (PI - x) / (PI * PI))
        values[0] = 0.0
        values[n - 1] = 0.0
        return np.array(values, dtype=np.float64)

    def step(self, u: np.ndarray, ustop: np.ndarray, status) -> None:
        """Backward Euler: solve (I - dt D_xx) u_new = u_old on the interior points of u's
        grid (Thomas); with -sc, coarse time levels have coarser grids: h follows len(u)."""
        tstart, tstop = status.tstart, status.tstop
        n = len(u)
        m = n - 2
        h = PI / (n - 1)
        d = u.tolist()  # Python floats: the same IEEE double operations as the C loop
        cp = [0.0] * n
        r = (tstop - tstart) / (h * h)
        diag = 1.0 + 2.0 * r
        off = -r

        cp[1] = off / diag
        d[1] = d[1] / diag
        for i in range(2, m + 1):
            denom = diag - off * cp[i - 1]
            cp[i] = off / denom
            d[i] = (d[i] - off * d[i - 1]) / denom
        for i in range(m - 1, 0, -1):
            d[i] -= cp[i] * d[i + 1]
        d[0] = 0.0
        d[n - 1] = 0.0
        u[:] = d

    def norm(self, u: np.ndarray) -> float:
        """sqrt(h sum_j u_j^2), h of u's own grid, summed in the C order."""
        s = 0.0
        for v in u.tolist():
            s += v * v
        return math.sqrt(PI / (len(u) - 1) * s)

    def access(self, u: np.ndarray, status) -> None:
        if not status.done or status.level != 0:
            return
        t = status.t
        err = 0.0
        values = u.tolist()
        for j in range(self.nspace):
            e = abs(values[j] - self.exact(t, j))
            if e > err:
                err = e
        if err > self.err_max:
            self.err_max = err
        self.accessed += 1
        if status.tindex == self.ntime:
            self.err_final = err
            self.u_final = u.copy()

    # A message: the point count (as a float64), then the values (any level's grid).

    def bufsize(self, status) -> int:
        return (self.nspace + 1) * 8

    def pack(self, u: np.ndarray, buffer: memoryview, status) -> int:
        view = np.frombuffer(buffer, dtype=np.float64, count=len(u) + 1)
        view[0] = len(u)
        view[1:] = u
        return (len(u) + 1) * 8

    def unpack(self, buffer: memoryview, status) -> np.ndarray:
        n = float(np.frombuffer(buffer, dtype=np.float64, count=1)[0])
        if not 3.0 <= n <= self.nspace:
            raise ValueError(f"heat1d: a message of {n} points is not a state of this app")
        return np.frombuffer(buffer, dtype=np.float64, count=int(n) + 1)[1:].copy()

    def level_size(self, level: int) -> int:
        """-sc: the spatial grid of time level ``level``: the finest halved once per level
        while the interval count stays even and at least 4."""
        n = self.nspace
        for _ in range(level):
            if not (self.scoarsen and (n - 1) % 2 == 0 and (n - 1) // 2 >= 4):
                break
            n = (n - 1) // 2 + 1
        return n


class SpatialHeat1D(Heat1D):
    """-sc: Heat1D with coarsen and refine, which the solver then uses between time levels
    (the C program's braid_SetSpatialCoarsen/Refine)."""

    def __init__(self, nspace: int) -> None:
        super().__init__(nspace, scoarsen=True)

    def coarsen(self, fu: np.ndarray, status) -> np.ndarray:
        """Full weighting (1/4, 1/2, 1/4) onto the next coarser time level's grid."""
        nc = self.level_size(status.level + 1)
        if nc == len(fu):
            return fu.copy()
        cu = np.zeros(nc)
        # the C loop's expression, element by element: (0.25 a + 0.5 b) + 0.25 c
        cu[1:-1] = 0.25 * fu[1:-2:2] + 0.5 * fu[2:-1:2] + 0.25 * fu[3::2]
        return cu

    def refine(self, cu: np.ndarray, status) -> np.ndarray:
        """Linear interpolation back onto time level ``status.level``'s grid."""
        nf = self.level_size(status.level)
        if nf == len(cu):
            return cu.copy()
        fu = np.empty(nf)
        fu[0::2] = cu
        fu[1::2] = 0.5 * (cu[:-1] + cu[1:])
        return fu


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
    if not (math.isfinite(value) and value > 0.0):
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
    p = _Parser(prog="heat1d.py", add_help=False, allow_abbrev=False,
                description="MGRIT on u_t = u_xx on [0, pi] x [0, tstop], u(0, x) = sin(x), "
                            "u = 0 at x = 0, pi; backward Euler in time, central differences "
                            "in space.")
    p.add_argument("-ntime", type=_int_flag(1, big), default=64, metavar="N",
                   help="number of time steps (default 64)")
    p.add_argument("-nspace", type=_int_flag(3, 100_000_000), default=33, metavar="N",
                   help="number of grid points in x, boundaries included, >= 3 (default 33)")
    p.add_argument("-tstop", type=_positive, default=1.0, metavar="X",
                   help="final time (default 1.0)")
    p.add_argument("-ml", type=_int_flag(1, 30), default=3, metavar="N",
                   help="maximum number of levels (default 3)")
    p.add_argument("-nu", type=_int_flag(0, 1000), default=1, metavar="N",
                   help="relaxation sweeps on every level: 0 F, 1 FCF, ... (default 1)")
    p.add_argument("-cf", type=_int_flag(2, big), default=2, metavar="N",
                   help="coarsening factor, >= 2 (default 2)")
    p.add_argument("-mi", type=_int_flag(1, big), default=100, metavar="N",
                   help="maximum number of iterations (default 100)")
    p.add_argument("-tol", type=_positive, default=1e-8, metavar="X",
                   help="absolute halting tolerance (default 1e-8)")
    p.add_argument("-skip", type=_int_flag(0, 1), default=1, metavar="0|1",
                   help="skip the work of the first down-cycle (default 1)")
    p.add_argument("-fmg", action="store_true",
                   help="use F-cycles instead of V-cycles")
    p.add_argument("-richardson", action="store_true",
                   help="Richardson extrapolation at the fine C-points (backward Euler has "
                        "local order 2): second order in time there")
    p.add_argument("-sc", action="store_true",
                   help="spatial coarsening: each coarser time level halves the spatial grid "
                        "(full weighting down, linear interpolation up)")
    p.add_argument("-print", type=_int_flag(0, 3), default=2, metavar="N",
                   help="print level 0..3 (default 2)")
    p.add_argument("-out", default=None, metavar="FILE",
                   help='write "j x_j u_j exact_j" at the final time to FILE')
    p.add_argument("-help", "--help", "-h", action="store_true", help="this message")
    return p


# ---- after the solve: errors and -out, gathered on rank 0 ----

def report(app: Heat1D, o: argparse.Namespace, comm: MPI.Comm) -> bool:
    pieces = comm.gather((app.err_final, app.err_max, app.accessed, app.u_final), root=0)
    ok = True
    if comm.rank == 0:
        err_final = max(p[0] for p in pieces)
        err_max = max(p[1] for p in pieces)
        accessed = sum(p[2] for p in pieces)
        if accessed == o.ntime + 1:
            print("  discretisation error at t = %g: %e (max norm vs exact solution)"
                  % (o.tstop, err_final))
            print("  max discretisation error over all %d time points: %e" % (accessed, err_max))
        else:
            print("  discretisation error: not available (access saw %d of %d time points)"
                  % (accessed, o.ntime + 1))
        sys.stdout.flush()

        if o.out is not None:
            finals = [p[3] for p in pieces if p[3] is not None]
            u = finals[0] if len(finals) == 1 else np.zeros(app.nspace)
            try:
                with open(o.out, "w") as f:
                    for j in range(app.nspace):
                        f.write("%d %.17e %.17e %.17e\n"
                                % (j, app.x(j), float(u[j]), app.exact(o.tstop, j)))
            except OSError as e:
                print(f"heat1d: cannot write {o.out}: {e.strerror}", file=sys.stderr)
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

    tstart = 0.0
    app = SpatialHeat1D(o.nspace) if o.sc else Heat1D(o.nspace)
    options = dict(max_levels=o.ml, nrelax=o.nu, cfactor=o.cf, max_iter=o.mi, abs_tol=o.tol,
                   skip=bool(o.skip), fmg=o.fmg, print_level=o.print)
    if o.richardson and (o.ml >= 2 or o.sc):
        # braid_SetRichardsonEstimation(core, 1, 1, 2): estimate and extrapolate, local order
        # 2. With one level (and no -sc, which the engine refuses with it) the C program steps
        # sequentially, the engine having no coarse grid to extrapolate with; Solver refuses
        # richardson= with max_levels=1, so it is left out there.
        options["richardson"] = layerbraid.Richardson(estimate=True, extrapolate=True, order=2)
    try:
        solver = layerbraid.Solver(app, tstart, o.tstop, o.ntime, comm=comm, **options)
    except (TypeError, ValueError) as e:
        # a combination the engine refuses (-richardson with -sc): every rank finds it before
        # the solve; the C program's braid_Drive fails the same way (status 1)
        if comm.rank == 0:
            print(f"heat1d.py: {e}", file=sys.stderr)
        return 1
    with solver:
        solver.drive()
    return 0 if report(app, o, comm) else 1


if __name__ == "__main__":
    sys.exit(main())
