"""Solver's problem variants (time grids, user residuals, relaxation-only coarsest grids,
periodic problems, spatial coarsening, temporal refinement, Richardson extrapolation, the full
residual) on N ranks, and failures in their callbacks.

    mpiexec -n N python tests/mpi/solver_features.py cases
    mpiexec -n N python tests/mpi/solver_features.py fail \
        <residual|coarsen|time_grid|refine|full_residual> <rank> <dir>

``cases`` solves every case of :data:`CASES`, gathers each one's iteration count, residual
history, final ntime, converged solution, access times and error estimates to rank 0, which
prints one line ``features {json}`` (floats as ``float.hex`` so that runs on different rank
counts can be compared bit for bit).

``fail`` makes the named callback raise BoomError on rank <rank> once the solve runs; every
rank writes ``<dir>/rank<r>.txt`` (the exception type and the first line of its message) and
re-raises, as tests/mpi/solver_failure.py does.

Not only a script: tests/test_solver_features.py loads it by path for the apps and cases.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
from mpi4py import MPI

import layerbraid
from layerbraid import Richardson
from solver_apps import BoomError, heat_backward_euler  # tests/mpi: the scripts' neighbour


# ---- the apps: examples/c/scalar_ode.c's problem, with the C code's operations ----

class ScalarODE(layerbraid.App):
    """u' = lam u + forcing(t), backward Euler: (1 - lam dt) u_new = u_old + dt forcing(t_new).

    The state is a one-element float64 array. Without forcing the step is the C example's
    division, so the residuals are the C program's.
    """

    def __init__(self, lam: float = -1.0, forcing: Callable[[float], float] | None = None,
                 fail_rank: int | None = None) -> None:
        super().__init__()
        self.lam = lam
        self.forcing = forcing
        self.solution: dict[int, float] = {}
        self.times: dict[int, float] = {}  # status.t of each accessed point
        self.estimates: dict[int, float | None] = {}  # status.error_estimate of each point
        self.seen_refine: set[tuple[int, int]] = set()  # (nrefine, ntpoints) access saw
        self.fail = fail_rank is not None and MPI.COMM_WORLD.rank == fail_rank
        self.fstops = {"none": 0, "given": 0}  # what step got as fstop (residual apps)

    def init(self, t: float) -> np.ndarray:
        return np.array([1.0 if t == self.tstart else 0.456])

    def step(self, u: np.ndarray, ustop: np.ndarray, status: Any) -> None:
        tstart, tstop = status.tstart, status.tstop
        if self.forcing is not None:
            u[0] = u[0] + (tstop - tstart) * self.forcing(tstop)
        u[0] = u[0] / (1.0 - self.lam * (tstop - tstart))

    def norm(self, u: np.ndarray) -> float:
        return abs(float(u[0]))

    def access(self, u: np.ndarray, status: Any) -> None:
        if status.done and status.level == 0:
            self.solution[status.tindex] = float(u[0])
            self.times[status.tindex] = status.t
            self.estimates[status.tindex] = status.error_estimate
            self.seen_refine.add((status.nrefine, status.ntpoints))


class RefineODE(ScalarODE):
    """ScalarODE whose fine-grid steps ask for refinement while fewer than ``count``
    refinements were done: into ``factor`` equal steps, or, with ``fractions``, at step sizes
    of those fractions of the interval (``len(fractions) + 1`` steps); with ``before``, only
    the intervals that start before that time."""

    def __init__(self, count: int = 2, factor: int = 2,
                 fractions: tuple[float, ...] | None = None, before: float | None = None,
                 fail_rank: int | None = None) -> None:
        super().__init__(fail_rank=fail_rank)
        self.count, self.factor, self.fractions, self.before = count, factor, fractions, before
        self.steps_seen: set[tuple[int, int]] = set()  # (nrefine, ntpoints) step saw

    def step(self, u: np.ndarray, ustop: np.ndarray, status: Any) -> None:
        super().step(u, ustop, status)
        nrefine = status.nrefine
        self.steps_seen.add((nrefine, status.ntpoints))
        if self.fail and nrefine >= 1:
            raise BoomError(f"boom in refine at time index {status.tindex} after {nrefine} "
                            "refinements")
        if status.level != 0 or nrefine >= self.count:
            return
        if self.before is not None and status.tstart >= self.before:
            return
        if self.fractions is not None:
            h = status.tstop - status.tstart
            status.set_refinement_dt(np.array(self.fractions) * h)
        else:
            status.set_rfactor(self.factor)


class ResidualODE(ScalarODE):
    """ScalarODE with the user residual of scalar_ode.c's -res:
    A(ustop, u) = (1 - lam dt) ustop - u - dt forcing(tstop); step solves A(u_new, u) = fstop."""

    #: the engine's calling function for the full residual norm (braid_ASCaller_ComputeFullRNorm)
    FULL_RNORM = 9

    def __init__(self, *args: Any, fail_full: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_full = fail_full  # fail only in the full residual norm's calls
        self.full_calls = 0  # calls of residual for the full residual norm

    def residual(self, ustop: np.ndarray, r: np.ndarray, status: Any) -> None:
        full = status.calling_function == self.FULL_RNORM
        self.full_calls += full
        if self.fail and status.iteration >= 1 and (full or not self.fail_full):
            raise BoomError(f"boom in {'full_residual' if self.fail_full else 'residual'} at "
                            f"time index {status.tindex}")
        tstart, tstop = status.tstart, status.tstop
        r[0] = (1.0 - self.lam * (tstop - tstart)) * ustop[0] - r[0]
        if self.forcing is not None:
            r[0] = r[0] - (tstop - tstart) * self.forcing(tstop)

    def step(self, u: np.ndarray, ustop: np.ndarray, status: Any,
             fstop: np.ndarray | None = None) -> None:
        self.fstops["none" if fstop is None else "given"] += 1
        if fstop is not None:
            u[0] = u[0] + fstop[0]
        super().step(u, ustop, status)


class HeatSC(layerbraid.App):
    """examples/c/heat1d.c with -sc: u_t = u_xx on [0, pi], backward Euler + central
    differences (Thomas, on Python floats in the C order); each coarser time level halves the
    spatial grid while it keeps an even interval count >= 4 (full weighting down, linear
    interpolation up). States of any level's size; messages carry the point count first."""

    PI = 3.14159265358979323846

    def __init__(self, nspace: int = 33, spatial: bool = True,
                 fail_rank: int | None = None) -> None:
        super().__init__()
        self.fail = fail_rank is not None and MPI.COMM_WORLD.rank == fail_rank
        self.nspace = nspace
        self.spatial = spatial
        self.solution: dict[int, list[float]] = {}
        self.times: dict[int, float] = {}
        self.estimates: dict[int, float | None] = {}
        self.fstops = {"none": 0, "given": 0}
        self.sizes: set[tuple[int, int]] = set()  # (time level, points) that step saw

    def level_size(self, level: int) -> int:
        n = self.nspace
        for _ in range(level):
            if not (self.spatial and (n - 1) % 2 == 0 and (n - 1) // 2 >= 4):
                break
            n = (n - 1) // 2 + 1
        return n

    def init(self, t: float) -> np.ndarray:
        n, pi = self.nspace, self.PI
        h = pi / (n - 1)
        values = [math.sin(j * h) if t == self.tstart else (j * h) * (pi - j * h) / (pi * pi)
                  for j in range(n)]
        values[0] = values[-1] = 0.0
        return np.array(values)

    def step(self, u: np.ndarray, ustop: np.ndarray, status: Any) -> None:
        n = len(u)
        self.sizes.add((status.level, n))
        u[:] = heat_backward_euler(u.tolist(), status.tstop - status.tstart, self.PI / (n - 1))

    def norm(self, u: np.ndarray) -> float:
        s = 0.0
        for v in u.tolist():
            s += v * v
        return math.sqrt(self.PI / (len(u) - 1) * s)

    def coarsen(self, fu: np.ndarray, status: Any) -> np.ndarray:
        if self.fail and status.iteration >= 1:
            raise BoomError(f"boom in coarsen at time index {status.tindex}")
        nc = self.level_size(status.level + 1)
        if nc == len(fu):
            return fu.copy()
        cu = np.zeros(nc)
        cu[1:-1] = 0.25 * fu[1:-2:2] + 0.5 * fu[2:-1:2] + 0.25 * fu[3::2]
        return cu

    def refine(self, cu: np.ndarray, status: Any) -> np.ndarray:
        nf = self.level_size(status.level)
        if nf == len(cu):
            return cu.copy()
        fu = np.empty(nf)
        fu[0::2] = cu
        fu[1::2] = 0.5 * (cu[:-1] + cu[1:])
        return fu

    def access(self, u: np.ndarray, status: Any) -> None:
        if status.done and status.level == 0:
            self.solution[status.tindex] = u.tolist()
            self.times[status.tindex] = status.t
            self.estimates[status.tindex] = status.error_estimate

    def bufsize(self, status: Any) -> int:
        return (self.nspace + 1) * 8

    def pack(self, u: np.ndarray, buffer: memoryview, status: Any) -> int:
        view = np.frombuffer(buffer, dtype=np.float64, count=len(u) + 1)
        view[0] = len(u)
        view[1:] = u
        return (len(u) + 1) * 8

    def unpack(self, buffer: memoryview, status: Any) -> np.ndarray:
        n = int(np.frombuffer(buffer, dtype=np.float64, count=1)[0])
        return np.frombuffer(buffer, dtype=np.float64, count=n + 1)[1:].copy()


# ---- time grids ----

def c_time_grid(ntime: int, dt: float = 0.5, tstart: float = 0.0) -> np.ndarray:
    """scalar_ode.c's -tg 2: the first ntime/2 steps dt/2 long, the others 3 dt/2."""
    return c_time_grid_function(ntime, dt, tstart)(np.arange(ntime + 1))


def c_time_grid_function(ntime: int, dt: float = 0.5,
                         tstart: float = 0.0) -> Callable[[np.ndarray], np.ndarray]:
    """The same grid as a function of the point indices (the C expression, point by point)."""
    half = ntime // 2

    def times(indices: np.ndarray) -> np.ndarray:
        return np.array([tstart + i * dt / 2.0 if i <= half
                         else tstart + half * dt / 2.0 + (i - half) * 1.5 * dt
                         for i in indices.tolist()])

    return times


def wavy_period_grid(ntime: int, period: float) -> np.ndarray:
    """A non-uniform grid over one period: t_i = period (s - 0.05 sin(2 pi s)), s = i/ntime."""
    s = np.arange(ntime + 1) / ntime
    t = period * (s - 0.05 * np.sin(2.0 * np.pi * s))
    t[0], t[-1] = 0.0, period
    return t


# ---- reference solutions ----

def serial_backward_euler(times: np.ndarray, lam: float = -1.0, u0: float = 1.0) -> np.ndarray:
    """The time-stepping loop on a grid, with ScalarODE.step's operations."""
    u = [u0]
    for k in range(1, len(times)):
        u.append(u[-1] / (1.0 - lam * (times[k] - times[k - 1])))
    return np.array(u)


def periodic_backward_euler(times: np.ndarray, lam: float,
                            forcing: Callable[[float], float]) -> np.ndarray:
    """The periodic discrete solution u_0..u_{n-1}: for i = 1..n,
    (1 - lam dt_i) u_{i mod n} - u_{i-1} = dt_i forcing(t_i), solved directly."""
    n = len(times) - 1
    a = np.zeros((n, n))
    b = np.zeros(n)
    for i in range(1, n + 1):
        dt = times[i] - times[i - 1]
        a[i - 1, i % n] += 1.0 - lam * dt
        a[i - 1, i - 1] -= 1.0
        b[i - 1] = dt * forcing(times[i])
    return np.linalg.solve(a, b)


# ---- the cases: (app factory, Solver keyword arguments) ----

# scalar_ode.c's defaults: 2-norm, FCF, cfactor 2, skip, abs tol 1e-6, 100 iterations
C_DEFAULTS = dict(abs_tol=1e-6, print_level=0)
TWO_PI = 2.0 * math.pi


def _cases() -> dict[str, tuple[Callable[[], ScalarODE], dict[str, Any]]]:
    return {
        # scalar_ode -ntime 64 -ml 3 -tg 2
        "tg_array": (ScalarODE, dict(time_grid=c_time_grid(64), max_levels=3, **C_DEFAULTS)),
        "tg_callable": (ScalarODE, dict(time_grid=c_time_grid_function(64), ntime=64,
                                        max_levels=3, **C_DEFAULTS)),
        "tg_tight": (ScalarODE, dict(time_grid=c_time_grid(64), max_levels=3, abs_tol=1e-15,
                                     print_level=0)),
        # scalar_ode -ntime 64 -ml 3 -res
        "res": (ResidualODE, dict(tstart=0.0, tstop=32.0, ntime=64, max_levels=3,
                                  **C_DEFAULTS)),
        "res_tight": (ResidualODE, dict(tstart=0.0, tstop=32.0, ntime=64, max_levels=3,
                                        abs_tol=1e-15, print_level=0)),
        # scalar_ode -ntime 24 -ml 2 -mi 5 -nuc 1 -skip 0 -relax_only_cg
        "rocg": (ScalarODE, dict(tstart=0.0, tstop=12.0, ntime=24, max_levels=2, max_iter=5,
                                 nrelax={-1: 1, 1: 1}, skip=False, relax_only_cg=True,
                                 **C_DEFAULTS)),
        # u' = -u, periodic: the solution is 0
        "periodic_decay": (ScalarODE, dict(tstart=0.0, tstop=32.0, ntime=64, max_levels=3,
                                           periodic=True, abs_tol=1e-13, print_level=0)),
        # u' = -u + cos t over one period
        "periodic_forced": (lambda: ScalarODE(forcing=math.cos),
                            dict(tstart=0.0, tstop=TWO_PI, ntime=64, max_levels=3,
                                 periodic=True, abs_tol=1e-14, print_level=0)),
        # the same on a non-uniform grid, with the user residual, 4 levels of cfactor 2
        "periodic_grid_res": (lambda: ResidualODE(forcing=math.cos),
                              dict(time_grid=wavy_period_grid(96, TWO_PI), max_levels=4,
                                   periodic=True, abs_tol=1e-14, print_level=0)),
        # heat1d -sc (its defaults: ntime 64, nspace 33, 3 levels, tol 1e-8)
        "heat_sc": (HeatSC, dict(tstart=0.0, tstop=1.0, ntime=64, max_levels=3, abs_tol=1e-8,
                                 print_level=0)),
        # temporal refinement: every fine step halved twice, 16 -> 32 -> 64 steps
        "refine": (RefineODE, dict(tstart=0.0, tstop=4.0, ntime=16, max_levels=3,
                                   abs_tol=1e-13, max_iter=60, refine=True, print_level=0)),
        # the steps of the first half split at 0.2 and 0.5 of their length: 16 -> 32 steps
        "refine_dt": (lambda: RefineODE(count=1, fractions=(0.2, 0.3), before=2.0),
                      dict(tstart=0.0, tstop=4.0, ntime=16, max_levels=3, abs_tol=1e-13,
                           max_iter=60, refine=True, print_level=0)),
        # Richardson extrapolation (cfactor 2, local order 2) with error estimates
        "richardson": (ScalarODE, dict(tstart=0.0, tstop=4.0, ntime=64, max_levels=3,
                                       abs_tol=1e-14, max_iter=50, print_level=0,
                                       richardson=Richardson(order=2))),
        # error estimates only, the plain backward-Euler solution
        "richardson_estimate": (ScalarODE, dict(tstart=0.0, tstop=4.0, ntime=64, max_levels=3,
                                                abs_tol=1e-14, max_iter=50, print_level=0,
                                                richardson={"extrapolate": False})),
        # scalar_ode -res, halting on the residual over every fine point
        "full_res": (ResidualODE, dict(tstart=0.0, tstop=32.0, ntime=64, max_levels=3,
                                       full_residual=True, **C_DEFAULTS)),
    }


CASES = _cases()


def solve(name: str, comm: MPI.Comm | None = None) -> tuple[ScalarODE, Any]:
    """Solve one case: its app (holding this rank's part of the solution) and SolveResult."""
    factory, kwargs = CASES[name]
    app = factory()
    with layerbraid.Solver(app, comm=comm, **kwargs) as solver:
        result = solver.drive()
    return app, result


def _hex(x: Any) -> Any:
    """float.hex of a float, of each float of a list; None stays None."""
    if isinstance(x, list):
        return [_hex(v) for v in x]
    return None if x is None else float(x).hex()


def run_cases(comm: MPI.Comm) -> None:
    out: dict[str, Any] = {"nprocs": comm.size}
    for name in CASES:
        app, result = solve(name, comm)
        pieces = comm.gather((app.solution, app.times, app.estimates), root=0)
        fstops = comm.gather(app.fstops, root=0)
        if comm.rank == 0:
            merged: dict[int, float] = {}
            times: dict[int, float] = {}
            estimates: dict[int, float | None] = {}
            counts: dict[int, int] = {}
            for solution, point_times, point_estimates in pieces:
                times.update(point_times)
                estimates.update(point_estimates)
                for index, value in solution.items():
                    merged[index] = value
                    counts[index] = counts.get(index, 0) + 1
            out[name] = {
                "iterations": result.iterations,
                "nlevels": result.nlevels,
                "converged": result.converged,
                "ntime": result.ntime,
                "nrefine": result.nrefine,
                "full_residual": _hex(result.full_residual),
                "history": [_hex(r) for r in result.residual_history],
                "indices": sorted(merged),
                "accessed_once": all(c == 1 for c in counts.values()),
                "solution": [_hex(merged[i]) for i in sorted(merged)],
                "times": [_hex(times[i]) for i in sorted(merged)],
                "estimates": [_hex(estimates[i]) for i in sorted(merged)],
                "fstop_given": sum(f["given"] for f in fstops),
                "fstop_none": sum(f["none"] for f in fstops),
            }
    if comm.rank == 0:
        print("features " + json.dumps(out), flush=True)


def run_failure(comm: MPI.Comm, what: str, fail_rank: int, result_dir: Path) -> None:
    if what == "residual":
        solver = layerbraid.Solver(ResidualODE(fail_rank=fail_rank), 0.0, 32.0, 64,
                                   max_levels=3, abs_tol=1e-300, max_iter=50, print_level=0)
    elif what == "coarsen":
        solver = layerbraid.Solver(HeatSC(fail_rank=fail_rank), 0.0, 1.0, 64, max_levels=3,
                                   abs_tol=1e-300, max_iter=50, print_level=0)
    elif what == "time_grid":
        grid = c_time_grid_function(64)
        armed = [False]

        def times(indices: np.ndarray) -> np.ndarray:
            if armed[0] and comm.rank == fail_rank:
                raise BoomError(f"boom in time_grid for indices {indices[0]}..{indices[-1]}")
            return grid(indices)

        solver = layerbraid.Solver(ScalarODE(), ntime=64, time_grid=times, max_levels=3,
                                   abs_tol=1e-300, max_iter=50, print_level=0)
        armed[0] = True  # the ends were read in the constructor; the engine asks in drive()
    elif what == "refine":  # step fails once the grid was refined (and rebalanced)
        solver = layerbraid.Solver(RefineODE(count=3, fail_rank=fail_rank), 0.0, 4.0, 16,
                                   max_levels=3, abs_tol=1e-300, max_iter=50, refine=True,
                                   print_level=0)
    elif what == "full_residual":  # residual fails only when it serves the full residual norm
        solver = layerbraid.Solver(ResidualODE(fail_rank=fail_rank, fail_full=True), 0.0, 32.0,
                                   64, max_levels=3, abs_tol=1e-300, max_iter=50,
                                   full_residual=True, print_level=0)
    else:
        raise SystemExit(f"unknown failure {what!r}; use residual, coarsen, time_grid, refine "
                         "or full_residual")
    try:
        solver.drive()
    except BaseException as e:
        report(result_dir, comm.rank, type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        raise
    report(result_dir, comm.rank, "None", "drive() returned")


def report(result_dir: Path, rank: int, kind: str, message: str) -> None:
    result = result_dir / f"rank{rank}.txt"
    tmp = result.with_suffix(".tmp")
    tmp.write_text(f"{kind}\n{message}\n")
    tmp.rename(result)
    print(f"failure rank={rank} type={kind}", flush=True)


def main(argv: list[str]) -> None:
    comm = MPI.COMM_WORLD
    if argv[:1] == ["cases"]:
        run_cases(comm)
    elif argv[:1] == ["fail"] and len(argv) == 4:
        run_failure(comm, argv[1], int(argv[2]), Path(argv[3]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
