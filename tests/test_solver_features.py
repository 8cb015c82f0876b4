"""Solver's problem variants: time_grid=, residual (step gets fstop=), relax_only_cg=,
periodic=, spatial coarsening (an app's coarsen and refine).

a. the scalar backward-Euler app of tests/mpi/solver_features.py reproduces
   examples/c/scalar_ode.c: ``-ntime 64 -ml 3 -tg 2`` (time grid as an array and as a
   function), ``-ntime 64 -ml 3 -res`` (user residual) and ``-ntime 24 -ml 2 -mi 5 -nuc 1
   -skip 0 -relax_only_cg``: the same iteration counts and residuals (and, where the C program
   is built, the same histories to round-off); solved tightly, the solutions equal serial
   backward Euler on the grid to 1e-12;
   examples/c/heat1d.c -sc (spatial coarsening): the same history, and the fine solution;
b. periodic problems converge to the periodic solution: 0 for u' = -u, and the exact discrete
   periodic solution (solved directly with NumPy) for u' = -u + cos t, also on a non-uniform
   grid with the user residual;
c. every case gives bit-identical iteration counts, residual histories and solutions on 1, 2
   and 3 ranks;
d. bad input: time grids of the wrong length, not increasing, not finite, of the wrong type, or
   disagreeing with tstart/tstop/ntime; periodic problems whose ntime the coarsening does not
   divide (the Python check agrees with the engine's); a residual app whose step takes no
   fstop; an app with coarsen but no refine, or a coarsen that returns its argument; an
   exception in residual, coarsen, a time-grid function, a step on a refined grid or the full
   residual ends every rank of 2;
e. temporal refinement (refine=True): steps that ask for rfactor 2 on the fine grid while
   nrefine < 2 give the serial backward-Euler solution on the refined grid (computed here from
   the times access saw), nrefine 2 and ntime 4x; step sizes given by set_refinement_dt; the
   limits (max_refinements, tpoints_cutoff, incr_max_levels); bad requests raise from step;
f. Richardson (richardson=): the C-points follow the extrapolated recurrence
   u_ci = 2 Phi^2(u) - Phi_c(u) (cfactor 2, order 2), and the error estimates are within 20 %
   of the true local error |u_{i-1}| |exp(-dt) - 1/(1 + dt)|; bad combinations refused;
g. full_residual=True: the engine halts on the residual over every fine point, which equals
   its recomputation from the solution; timer_file= writes each rank's timings.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerbraid
from layerbraid import braid as braid_module
from layerbraid import solver_checks
from script_modules import MPI_SCRIPTS, load_module



features = load_module("solver_features", MPI_SCRIPTS / "solver_features.py")
ScalarODE, ResidualODE, BoomError = features.ScalarODE, features.ResidualODE, features.BoomError

# examples/c/scalar_ode.c's residual histories for the three runs (printed with %1.6e)
C_RUNS = {
    "tg_array": (["-ntime", "64", "-ml", "3", "-tg", "2"], 6,
                 [None, "5.766480e-02", "2.889602e-03", "1.795218e-04", "9.954897e-06",
                  "4.829899e-07"]),
    "res": (["-ntime", "64", "-ml", "3", "-res"], 8,
            [None, "8.784105e-02", "8.828925e-03", "9.639625e-04", "9.913775e-05",
             "1.180465e-05", "1.275343e-06", "1.616427e-07"]),
    "rocg": (["-ntime", "24", "-ml", "2", "-mi", "5", "-nuc", "1", "-skip", "0",
              "-relax_only_cg"], 5,
             ["3.560861e-01", "2.558119e-02", "8.862579e-04", "3.874981e-05", "1.032798e-07"]),
}
# examples/c/heat1d.c -sc (its defaults: -ntime 64 -nspace 33 -ml 3 -tol 1e-8)
HEAT_SC = (["-sc"], 7, [None, "1.612135e-02", "3.021959e-04", "1.020898e-05", "6.737421e-07",
                        "5.879646e-08", "5.042900e-09"])


def printed(history: tuple[float | None, ...]) -> list[str | None]:
    return [None if r is None else f"{r:.6e}" for r in history]


def solution(app: Any, n: int) -> np.ndarray:
    assert sorted(app.solution) == list(range(n)), sorted(app.solution)
    return np.array([app.solution[i] for i in range(n)])


# =============================================================================================
# a. the C example's runs
# =============================================================================================

@pytest.mark.parametrize("case", ["tg_array", "tg_callable", "res", "rocg"])
def test_reproduces_the_c_example(case: str) -> None:
    _, iterations, history = C_RUNS["tg_array" if case == "tg_callable" else case]
    app, r = features.solve(case)
    assert r.iterations == iterations and r.converged
    assert printed(r.residual_history) == history
    assert f"{r.residual:.3e}" == f"{float(history[-1]):.3e}"  # 4 significant digits


def test_time_grid_function_equals_array_bit_for_bit() -> None:
    a_app, a = features.solve("tg_array")
    f_app, f = features.solve("tg_callable")
    assert a.residual_history == f.residual_history and a.iterations == f.iterations
    assert a_app.solution == f_app.solution


def test_time_grid_solution_is_serial_backward_euler() -> None:
    grid = features.c_time_grid(64)
    assert grid[0] == 0.0 and grid[32] == 8.0 and grid[-1] == 32.0
    want = features.serial_backward_euler(grid)
    app, r = features.solve("tg_tight")
    assert r.converged and r.nlevels == 3
    assert np.abs(solution(app, 65) - want).max() <= 1e-12
    # the engine stepped on the grid: status times are the grid's, and one level is the loop
    seen: set[tuple[float, float]] = set()

    class Recorder(ScalarODE):
        def step(self, u, ustop, status):
            seen.add((status.tstart, status.tstop))
            return super().step(u, ustop, status)

    app = Recorder()
    with layerbraid.Solver(app, time_grid=grid, max_levels=1, print_level=0) as solver:
        solver.drive()
    assert seen == set(zip(grid[:-1], grid[1:]))
    assert np.array_equal(solution(app, 65), want)  # the same operations: bit for bit
    assert app.tstart == 0.0 and app.tstop == 32.0 and app.ntime == 64  # derived, bound


def test_time_grid_derives_or_checks_the_interval() -> None:
    grid = features.c_time_grid(64)
    for kwargs in ({}, {"tstart": 0.0, "tstop": 32.0, "ntime": 64}, {"ntime": 64},
                   {"tstart": 0}):
        with layerbraid.Solver(ScalarODE(), time_grid=grid, **kwargs, print_level=0) as s:
            assert (s.tstart, s.tstop, s.ntime) == (0.0, 32.0, 64)
    # positional tstart/tstop/ntime work too, and a list is an array
    with layerbraid.Solver(ScalarODE(), 0.0, 32.0, 64, time_grid=list(grid),
                           print_level=0) as s:
        assert s.drive().converged
    # the solver keeps its own copy of the checked grid
    mine = grid.copy()
    with layerbraid.Solver(ScalarODE(), time_grid=mine, max_levels=3, abs_tol=1e-6,
                           print_level=0) as s:
        mine[1:] = 0.0  # no longer increasing: the solver must not see it
        assert s.drive().iterations == 6
    assert mine.flags.writeable
    f = features.c_time_grid_function(64)
    with layerbraid.Solver(ScalarODE(), ntime=64, time_grid=f, print_level=0) as s:
        assert (s.tstart, s.tstop, s.ntime) == (0.0, 32.0, 64)


def test_residual_solution_is_serial_backward_euler_and_step_gets_fstop() -> None:
    app, r = features.solve("res_tight")
    assert r.converged
    want = features.serial_backward_euler(np.arange(65) * 0.5)
    assert np.abs(solution(app, 65) - want).max() <= 1e-12
    # step was called with fstop=None (the fine grid's F-points) and with arrays (FAS terms)
    assert app.fstops["given"] > 0 and app.fstops["none"] > 0


def test_residual_may_return_a_new_state_and_step_may_take_kwargs() -> None:
    class Returning(layerbraid.App):
        def init(self, t):
            return np.array([1.0 if t == self.tstart else 0.456])

        def residual(self, ustop, r, status):
            return (1.0 + (status.tstop - status.tstart)) * ustop - r  # a new array

        def step(self, u, ustop, status, **kwargs):
            fstop = kwargs["fstop"]
            return (u + (0.0 if fstop is None else fstop)) / (1.0 + (status.tstop -
                                                                      status.tstart))

    with layerbraid.Solver(Returning(), 0.0, 32.0, 64, max_levels=3, abs_tol=1e-6,
                           print_level=0) as solver:
        r = solver.drive()
    _, iterations, history = C_RUNS["res"]
    assert r.iterations == iterations
    # the same algorithm as the C run; the norm (sqrt of a dot) may differ in the last bit
    for got, want in zip(r.residual_history, history):
        assert (got is None) == (want is None)
        assert want is None or abs(got - float(want)) <= 5e-7 * float(want)


def test_apps_without_residual_get_three_arguments() -> None:
    calls: list[int] = []

    class Strict(ScalarODE):
        def step(self, u, ustop, status):  # no fstop: must never be passed one
            calls.append(1)
            return super().step(u, ustop, status)

    with layerbraid.Solver(Strict(), 0.0, 32.0, 64, max_levels=3, print_level=0) as solver:
        assert solver.drive().converged and not solver.has_residual
    assert calls


def test_relax_only_cg_changes_the_coarsest_solve() -> None:
    factory, kwargs = features.CASES["rocg"]
    kwargs = dict(kwargs, relax_only_cg=False)
    with layerbraid.Solver(factory(), **kwargs) as solver:
        r_seq = solver.drive()
    _, r_cg = features.solve("rocg")
    # the option reached the engine: from r_1 on the histories differ
    assert r_seq.residual_history[0] == r_cg.residual_history[0]
    assert r_seq.residual_history[1] != r_cg.residual_history[1]


@pytest.mark.parametrize("case", ["tg_array", "res", "rocg", "heat_sc"])
def test_histories_equal_the_c_program(run_mpi, example_bin, case: str) -> None:
    """Where build/examples/c/{scalar_ode,heat1d} are built: the whole history to round-off."""
    argv, iterations, _ = HEAT_SC if case == "heat_sc" else C_RUNS[case]
    program = "heat1d" if case == "heat_sc" else "scalar_ode"
    rc, out = run_mpi(1, [example_bin(program), *argv], timeout=60)
    assert rc == 0, out
    c_history = [float(v) if v else None for _, v in
                 re.findall(r"\|\| r_(\d+) \|\| (?:= (\S+),|not available)", out)]
    _, r = features.solve(case)
    assert len(c_history) == len(r.residual_history) == iterations, out
    for c, py in zip(c_history, r.residual_history):
        assert (c is None) == (py is None)
        assert c is None or abs(c - py) <= 5e-7 * c  # C prints 7 digits
    assert f"iterations            = {iterations}" in out


def test_spatial_coarsening_reproduces_heat1d_sc() -> None:
    _, iterations, history = HEAT_SC
    app, r = features.solve("heat_sc")
    assert r.iterations == iterations and r.converged and r.nlevels == 3
    assert printed(r.residual_history) == history
    assert app.sizes == {(0, 33), (1, 17), (2, 9)}  # each time level on its own grid
    # converged (tol 1e-8) to the fine solution: the one-level solve without coarsening
    fine = features.HeatSC(spatial=False)
    with layerbraid.Solver(fine, 0.0, 1.0, 64, max_levels=1, print_level=0) as solver:
        solver.drive()
    assert sorted(app.solution) == sorted(fine.solution) == list(range(65))
    err = max(np.abs(np.array(app.solution[i]) - fine.solution[i]).max() for i in range(65))
    assert err <= 1e-8


def test_coarsen_refine_status() -> None:
    seen: list[tuple] = []

    class Recorder(features.HeatSC):
        def coarsen(self, fu, status):
            seen.append(("coarsen", status.level, status.nlevels, status.tindex, status.t,
                         status.ftprior, status.ftstop, status.ctprior, status.ctstop,
                         status.iteration))
            self.kept = status
            return super().coarsen(fu, status)

        def refine(self, cu, status):
            seen.append(("refine", status.level, status.nlevels, status.tindex, status.t,
                         status.ftprior, status.ftstop, status.ctprior, status.ctstop,
                         status.iteration))
            return super().refine(cu, status)

    app = Recorder()
    with layerbraid.Solver(app, 0.0, 16.0, 16, max_levels=3, abs_tol=1e-8,
                           print_level=0) as solver:
        r = solver.drive()
    assert {(kind, level) for kind, level, *_ in seen} == \
        {("coarsen", 0), ("coarsen", 1), ("refine", 0), ("refine", 1)}
    for kind, level, nlevels, tindex, t, ftprior, ftstop, ctprior, ctstop, it in seen:
        fine_dt, coarse_dt = 2.0**level, 2.0**(level + 1)  # dt 1 on level 0, cfactor 2
        assert nlevels == 3 and 0 <= it <= r.iterations
        assert t == tindex * coarse_dt  # tindex: the point on the coarser level
        assert (ftprior, ftstop) == (t - fine_dt, t + fine_dt)
        assert (ctprior, ctstop) == (t - coarse_dt, t + coarse_dt)
    with pytest.raises(RuntimeError, match="outside of its callback"):
        app.kept.level


# =============================================================================================
# b. periodic problems
# =============================================================================================

def test_periodic_decay_converges_to_zero() -> None:
    app, r = features.solve("periodic_decay")
    assert r.converged and r.nlevels == 3
    u = solution(app, 64)  # points 0..ntime-1: point ntime is point 0
    assert np.abs(u).max() <= 1e-12


def test_periodic_forced_equals_the_discrete_periodic_solution() -> None:
    app, r = features.solve("periodic_forced")
    assert r.converged
    times = 0.0 + (np.arange(65) / 64) * (2.0 * math.pi - 0.0)  # the engine's uniform grid
    want = features.periodic_backward_euler(times, -1.0, math.cos)
    assert np.abs(want).max() > 0.5  # a real solution, not 0
    assert np.abs(solution(app, 64) - want).max() <= 1e-12
    # and it is periodic: one more step from u_{n-1} gives u_0
    dt = times[-1] - times[-2]
    assert abs((want[-1] + dt * math.cos(times[-1])) / (1.0 + dt) - want[0]) <= 1e-12


def test_periodic_on_a_time_grid_with_residual() -> None:
    app, r = features.solve("periodic_grid_res")
    assert r.converged and r.nlevels == 4
    grid = features.wavy_period_grid(96, 2.0 * math.pi)
    assert np.all(np.diff(grid) > 0) and np.diff(grid).max() > 1.5 * np.diff(grid).min()
    want = features.periodic_backward_euler(grid, -1.0, math.cos)
    assert np.abs(solution(app, 96) - want).max() <= 1e-12
    assert app.fstops["given"] > 0


# =============================================================================================
# c. 1, 2 and 3 ranks
# =============================================================================================

@pytest.fixture(scope="module")
def rank_runs(run_mpi, python_exe: str) -> dict[int, dict]:
    runs = {}
    for nprocs in (1, 2, 3):
        rc, out = run_mpi(nprocs, [python_exe, MPI_SCRIPTS / "solver_features.py", "cases"],
                          timeout=120)
        assert rc == 0, out
        lines = [line for line in out.splitlines() if line.startswith("features ")]
        assert len(lines) == 1, out
        runs[nprocs] = json.loads(lines[0][len("features "):])
        assert runs[nprocs]["nprocs"] == nprocs
    return runs


@pytest.mark.parametrize("case", list(features.CASES))
def test_ranks_give_bit_identical_results(rank_runs: dict[int, dict], case: str) -> None:
    one = rank_runs[1][case]
    factory, kwargs = features.CASES[case]
    ntime = kwargs.get("ntime") or len(kwargs["time_grid"]) - 1
    if kwargs.get("refine"):
        assert one["ntime"] > ntime and one["nrefine"] > 0  # the grid was refined
        ntime = one["ntime"]
    else:
        assert one["ntime"] == ntime and one["nrefine"] == 0
    npoints = ntime if kwargs.get("periodic") else ntime + 1  # periodic: point ntime is 0
    assert one["indices"] == list(range(npoints)) and one["accessed_once"]
    for nprocs in (2, 3):
        other = rank_runs[nprocs][case]
        for key in ("iterations", "nlevels", "converged", "ntime", "nrefine", "full_residual",
                    "history", "indices", "accessed_once", "solution", "times", "estimates",
                    "fstop_given", "fstop_none"):
            assert other[key] == one[key], f"{case}: {key} differs on {nprocs} ranks"
    # and the MPI runs are the in-process solve
    app, r = features.solve(case)
    assert one["iterations"] == r.iterations
    assert (one["ntime"], one["nrefine"]) == (r.ntime, r.nrefine)
    assert one["full_residual"] == features._hex(r.full_residual)
    assert one["estimates"] == [features._hex(app.estimates[i]) for i in sorted(app.solution)]
    assert one["history"] == [None if x is None else x.hex() for x in r.residual_history]
    assert one["solution"] == [features._hex(app.solution[i]) for i in sorted(app.solution)]


# =============================================================================================
# d. bad input
# =============================================================================================

@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to build an engine fails the test: validation must come first."""

    def engine(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the engine was created before the input was checked")

    monkeypatch.setattr(braid_module._core, "Engine", engine)


GRID = np.linspace(0.0, 1.0, 11)

BAD_GRIDS = [
    # (Solver keyword arguments, error, text in the message)
    (dict(time_grid=GRID, ntime=9), ValueError,
     "ntime=9 does not match time_grid: its 11 times make ntime=10 steps"),
    (dict(time_grid=GRID, ntime=11), ValueError, "ntime=11 does not match time_grid"),
    (dict(time_grid=[0.0]), ValueError, "time_grid needs at least 2 times"),
    (dict(time_grid=[]), ValueError, "time_grid needs at least 2 times"),
    (dict(time_grid=np.zeros((3, 2))), ValueError, "time_grid must be 1-D, got shape (3, 2)"),
    (dict(time_grid=[0.0, 0.5, 0.4, 1.0]), ValueError,
     "time_grid must be strictly increasing: time point 1 is 0.5 and time point 2 is 0.4"),
    (dict(time_grid=[0.0, 0.5, 0.5, 1.0]), ValueError, "strictly increasing: time point 1"),
    (dict(time_grid=[1.0, 0.5, 0.0]), ValueError, "strictly increasing: time point 0"),
    (dict(time_grid=[0.0, math.nan, 1.0]), ValueError,
     "time_grid: time point 1 is nan; every time must be finite"),
    (dict(time_grid=[0.0, 1.0, math.inf]), ValueError, "time point 2 is inf"),
    (dict(time_grid=["0", "1"]), TypeError, "time_grid must hold real numbers"),
    (dict(time_grid=[0j, 1j]), TypeError, "time_grid must hold real numbers"),
    (dict(time_grid=[False, True]), TypeError, "time_grid must hold real numbers"),
    (dict(time_grid=GRID, tstart=0.5), ValueError,
     "tstart=0.5 does not match the time grid, whose first time is 0.0"),
    (dict(time_grid=GRID, tstop=2.0), ValueError,
     "tstop=2.0 does not match the time grid, whose last time is 1.0"),
    (dict(time_grid=GRID, tstop="1"), TypeError, "tstop must be a finite float"),
    (dict(time_grid=GRID, ntime=10.0), TypeError, "ntime must be an int"),
    (dict(time_grid=lambda i: i * 0.1), TypeError, "ntime is required with a time_grid "
                                                   "function"),
    (dict(time_grid=lambda i: i[:1] * 0.1, ntime=10), ValueError,
     "time_grid(indices) must return one time per index: got 1 for the 2 indices [0, 10]"),
    (dict(time_grid=lambda i: -i * 0.1, ntime=10), ValueError, "must be strictly increasing"),
    (dict(time_grid=lambda i: i * math.nan, ntime=10), ValueError, "every time must be finite"),
    (dict(time_grid=lambda i: i * 0.1, ntime=10, tstop=2.0), ValueError,
     "tstop=2.0 does not match the time grid, whose last time (point 10) is 1.0"),
    (dict(time_grid=lambda i: i * 0.1, ntime=0), ValueError, "ntime=0 is out of range"),
    (dict(time_grid=lambda i: "x", ntime=10), TypeError, "time_grid(indices) must hold real"),
    (dict(), TypeError, "tstart is required (only time_grid= can stand in"),
    (dict(tstart=0.0, tstop=1.0), TypeError, "ntime is required"),
]


@pytest.mark.parametrize("kwargs, error, text", BAD_GRIDS)
def test_bad_time_grid_raises_before_the_engine(no_engine: None, kwargs: dict, error: type,
                                                text: str) -> None:
    with pytest.raises(error, match=re.escape(text)):
        layerbraid.Solver(ScalarODE(), **kwargs)


@pytest.mark.parametrize("times, text", [
    (lambda i: np.where(i == 5, 0.35, i * 0.1),
     "time_grid(indices 0..10) must be strictly increasing: time point 4 is 0.4 and time "
     "point 5 is 0.35"),
    (lambda i: i[:-1] * 0.1 if len(i) > 2 else i * 0.1,
     "time_grid(indices 0..10) returned 10 times for 11 indices"),
    (lambda i: np.where(i == 7, math.nan, i * 0.1), "time point 7 is nan"),
    (lambda i: np.where(i == 0, 0.0, i * 0.1) if len(i) == 2 else i * 0.1 + 0.01,
     "gave 0.01 for point 0, not tstart=0.0"),
    (lambda i: np.where((len(i) > 2) & (i == 10), 1.5, i * 0.1), "for point 10, not tstop=1.0"),
])
def test_bad_time_grid_function_values_raise_from_drive(times: Any, text: str) -> None:
    solver = layerbraid.Solver(ScalarODE(), ntime=10, time_grid=times, max_levels=2,
                               print_level=0)
    with pytest.raises(ValueError, match=re.escape(text)):
        solver.drive()
    with pytest.raises(RuntimeError, match="earlier drive"):
        solver.drive()
    solver.close()


@pytest.mark.parametrize("kwargs, text", [
    (dict(ntime=30, max_levels=3), "periodic=True needs ntime divisible by "
                                   "cfactor**(levels - 1): ntime=30 has 15 points on level 1, "
                                   "not divisible by its cfactor 2"),
    (dict(ntime=10, max_levels=2, cfactor=3), "ntime=10 has 10 points on level 0, not "
                                              "divisible by its cfactor 3"),
    (dict(ntime=96, max_levels=4, cfactor={-1: 2, 2: 5}), "ntime=96 has 24 points on level 2, "
                                                          "not divisible by its cfactor 5"),
    (dict(ntime=64, max_levels=1), "periodic=True needs at least 2 levels, but max_levels=1"),
    (dict(ntime=5, max_levels=3), "needs at least 2 levels"),
    (dict(ntime=64, max_levels=3, seq_soln=True), "cannot start from the sequential solution"),
])
def test_bad_periodic_problem_raises_before_the_engine(no_engine: None, kwargs: dict,
                                                       text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(text)):
        layerbraid.Solver(ScalarODE(), 0.0, 1.0, periodic=True, print_level=0, **kwargs)


@pytest.mark.parametrize("ntime, options", [
    (30, dict(max_levels=3)), (32, dict(max_levels=3)), (20, dict(max_levels=4)),
    (24, dict(max_levels=3, cfactor={-1: 2, 1: 3})), (36, dict(max_levels=5, cfactor=3,
                                                               min_coarse=1)),
    (6, dict(max_levels=3)), (10, dict(max_levels=3, min_coarse=4)), (5, dict(max_levels=2)),
    (9, dict(max_levels=2, cfactor=3)), (10, dict(max_levels=2, cfactor=3)),
    (64, dict(max_levels=30)), (96, dict(max_levels=30, cfactor={-1: 2, 0: 3})),
])
def test_periodic_check_agrees_with_the_engine(monkeypatch: pytest.MonkeyPatch, ntime: int,
                                               options: dict) -> None:
    """Whatever the Python check refuses, the engine refuses too, and the other way round."""
    try:
        solver_checks._check_periodic(ntime, braid_module.check_options(options))
        python_ok = True
    except ValueError:
        python_ok = False
    monkeypatch.setattr(braid_module, "_check_periodic", lambda *args: None)
    solver = layerbraid.Solver(ScalarODE(), 0.0, float(ntime), ntime, periodic=True,
                               max_iter=3, print_level=0, **options)
    try:
        solver.drive()
        engine_ok = True
    except RuntimeError as e:
        assert "braid_Drive failed" in str(e)
        engine_ok = False
    finally:
        solver.close()
    assert python_ok == engine_ok


@pytest.mark.parametrize("name, bad_type, bad_value", [
    ("periodic", "yes", 2), ("relax_only_cg", 1.0, -1)])
def test_bad_flag_options(no_engine: None, name: str, bad_type: Any, bad_value: Any) -> None:
    with pytest.raises(TypeError, match=name):
        layerbraid.Solver(ScalarODE(), 0.0, 1.0, 8, **{name: bad_type})
    with pytest.raises(ValueError, match=name):
        layerbraid.Solver(ScalarODE(), 0.0, 1.0, 8, **{name: bad_value})


def test_new_options_are_listed() -> None:
    text = layerbraid.Solver.options()
    assert "periodic: bool (False)" in text and "relax_only_cg: bool (False)" in text


def test_residual_app_whose_step_takes_no_fstop_is_refused(no_engine: None) -> None:
    class NoFstop(ScalarODE):
        def residual(self, ustop, r, status):
            pass

    with pytest.raises(TypeError, match=re.escape(
            "NoFstop has a residual method, so its step receives the FAS right-hand side: it "
            "must be step(u, ustop, status, fstop=None)")):
        layerbraid.Solver(NoFstop(), 0.0, 1.0, 8)


def test_app_with_only_one_of_coarsen_and_refine_is_refused(no_engine: None) -> None:
    class OnlyCoarsen(ScalarODE):
        def coarsen(self, fu, status):
            return fu.copy()

    with pytest.raises(TypeError, match="OnlyCoarsen has coarsen but no refine; spatial "
                                        "coarsening needs both"):
        layerbraid.Solver(OnlyCoarsen(), 0.0, 1.0, 8)


@pytest.mark.parametrize("method", ["coarsen", "refine"])
def test_coarsen_or_refine_returning_its_argument_raises(method: str) -> None:
    class Same(ScalarODE):
        def coarsen(self, fu, status):
            return fu if method == "coarsen" else fu.copy()

        def refine(self, cu, status):
            return cu if method == "refine" else cu.copy()

    with layerbraid.Solver(Same(), 0.0, 8.0, 16, max_levels=3, print_level=0) as solver:
        with pytest.raises(TypeError, match=f"the app's {method} returned its argument; it "
                                            "must return a new state"):
            solver.drive()


def test_exception_in_residual_comes_out_of_drive() -> None:
    solver = layerbraid.Solver(ResidualODE(fail_rank=0), 0.0, 32.0, 64, max_levels=3,
                               abs_tol=1e-300, print_level=0)
    with pytest.raises(BoomError, match="^boom in residual at time index ") as info:
        solver.drive()
    assert any(entry.name == "residual" for entry in info.traceback)  # the user's frame
    with pytest.raises(RuntimeError, match="earlier drive.*BoomError: boom in residual"):
        solver.drive()
    solver.close()


@pytest.mark.parametrize("what", ["residual", "coarsen", "time_grid", "refine",
                                  "full_residual"])
@pytest.mark.parametrize("fail_rank", [0, 1])
def test_exception_on_one_rank_of_two_ends_both(run_mpi, python_exe: str, tmp_path: Path,
                                                what: str, fail_rank: int) -> None:
    start = time.monotonic()
    rc, out = run_mpi(2, [python_exe, MPI_SCRIPTS / "solver_features.py", "fail", what,
                          fail_rank, tmp_path], timeout=30)
    elapsed = time.monotonic() - start
    assert elapsed < 20, f"took {elapsed:.1f} s:\n{out}"
    assert rc != 0, out
    results = {r: (tmp_path / f"rank{r}.txt").read_text().splitlines() for r in (0, 1)
               if (tmp_path / f"rank{r}.txt").exists()}
    assert set(results) == {0, 1}, out
    kind, message = results[fail_rank]
    assert kind == "BoomError" and message.startswith(f"boom in {what}"), out
    kind, message = results[1 - fail_rank]
    callback = {"residual": "residual", "coarsen": "scoarsen", "time_grid": "tgrid",
                "refine": "step", "full_residual": "full residual"}[what]
    assert kind == "RemoteRankError", out
    assert message.startswith("stopped because another rank failed: ") and \
        f"rank {fail_rank}: the {callback} callback failed" in message and \
        f"BoomError: boom in {what}" in message, out


# =============================================================================================
# e. temporal refinement
# =============================================================================================

RefineODE = features.RefineODE


def test_refinement_reaches_the_serial_solution_on_the_refined_grid() -> None:
    app, r = features.solve("refine")
    assert r.converged and r.nrefine == 2 and r.ntime == 64  # 16 -> 32 -> 64 steps
    assert sorted(app.solution) == list(range(65))  # access sees the refined grid
    times = np.array([app.times[i] for i in range(65)])
    assert np.abs(times - np.arange(65) * (4.0 / 64)).max() <= 1e-14
    # backward Euler, one step after the other, on the times access reported
    want = features.serial_backward_euler(times)
    assert np.abs(solution(app, 65) - want).max() <= 1e-12
    assert app.seen_refine == {(2, 64)}  # what access's status said
    assert {(0, 16), (1, 32), (2, 64)} <= app.steps_seen  # and what step's said on the way


def test_refinement_at_the_step_sizes_given() -> None:
    app, r = features.solve("refine_dt")
    # the 8 intervals before t = 2 split into 3 (0.2 h, 0.3 h, the remaining 0.5 h)
    assert r.converged and r.nrefine == 1 and r.ntime == 16 + 8 * 2
    h = 4.0 / 16
    want_times = [0.0]
    for i in range(16):
        t0 = i * h
        if t0 < 2.0:
            want_times += [t0 + 0.2 * h, t0 + 0.2 * h + 0.3 * h]
        want_times.append((i + 1) * h)
    times = np.array([app.times[i] for i in range(r.ntime + 1)])
    assert np.abs(times - np.array(want_times)).max() <= 1e-14
    want = features.serial_backward_euler(times)
    assert np.abs(solution(app, r.ntime + 1) - want).max() <= 1e-12


@pytest.mark.parametrize("options, ntime, nrefine, nlevels", [
    (dict(max_refinements=1), 32, 1, 3),
    (dict(max_refinements=0), 16, 0, 3),
    (dict(tpoints_cutoff=40), 32, 1, 3),  # a second halving would make 64 > 40 steps
    (dict(max_levels=2), 64, 2, 2),
    (dict(max_levels=2, incr_max_levels=True), 64, 2, 4),  # one level more per refinement
])
def test_refinement_limits(options: dict, ntime: int, nrefine: int, nlevels: int) -> None:
    kwargs = dict(features.CASES["refine"][1], **options)
    app = RefineODE()
    with layerbraid.Solver(app, **kwargs) as solver:
        r = solver.drive()
    assert (r.ntime, r.nrefine, r.nlevels) == (ntime, nrefine, nlevels) and r.converged
    times = np.array([app.times[i] for i in range(ntime + 1)])
    want = features.serial_backward_euler(times)
    assert np.abs(solution(app, ntime + 1) - want).max() <= 1e-12
    assert solver.ntime == 16  # the solver's ntime is the one it was given


def test_refinement_requests_are_ignored_without_refine() -> None:
    app = RefineODE()
    with layerbraid.Solver(app, 0.0, 4.0, 16, max_levels=3, abs_tol=1e-13,
                           print_level=0) as solver:
        r = solver.drive()
    assert (r.ntime, r.nrefine) == (16, 0) and sorted(app.solution) == list(range(17))
    assert app.seen_refine == {(0, 16)}


def test_refinement_then_warm_restart() -> None:
    app = RefineODE()
    with layerbraid.Solver(app, **features.CASES["refine"][1]) as solver:
        first = solver.drive()
        app.solution.clear()
        again = solver.drive()  # from the stored solution on the refined grid
    assert (first.ntime, again.ntime, again.nrefine) == (64, 64, 2)
    assert again.converged and again.iterations <= first.iterations
    times = np.array([app.times[i] for i in range(65)])
    assert np.abs(solution(app, 65) - features.serial_backward_euler(times)).max() <= 1e-12


BAD_REQUESTS = [
    # (what step calls, error, text)
    (lambda s: s.set_rfactor(0), ValueError,
     "rfactor=0 is out of range; it must be in [1, 2147483647]"),
    (lambda s: s.set_rfactor(-3), ValueError, "rfactor=-3 is out of range"),
    (lambda s: s.set_rfactor(2.0), TypeError, "rfactor must be an int, got float 2.0"),
    (lambda s: s.set_rfactor(True), TypeError, "rfactor must be an int, got bool True"),
    (lambda s: s.set_rfactor(2**31), ValueError, "rfactor=2147483648 is out of range"),
    (lambda s: s.set_refinement_dt([]), ValueError, "set_refinement_dt(dts): dts is empty"),
    (lambda s: s.set_refinement_dt([0.05, -0.01]), ValueError,
     "set_refinement_dt(dts): step size 1 is -0.01; every step size must be finite and > 0"),
    (lambda s: s.set_refinement_dt([0.0]), ValueError, "step size 0 is 0.0"),
    (lambda s: s.set_refinement_dt([math.nan]), ValueError, "step size 0 is nan"),
    (lambda s: s.set_refinement_dt([math.inf]), ValueError, "step size 0 is inf"),
    (lambda s: s.set_refinement_dt([0.05, 0.05], rfactor=4), ValueError,
     "set_refinement_dt(dts): got 2 step sizes for rfactor=4; it takes the first "
     "rfactor - 1 = 3"),
    (lambda s: s.set_refinement_dt([0.05], rfactor=1), ValueError, "rfactor=1 is out of range"),
    (lambda s: s.set_refinement_dt([0.15, 0.1]), ValueError,
     "set_refinement_dt(dts): the 2 step sizes add up to 0.25, not less than the length 0.25 "
     "of the interval ["),
    (lambda s: s.set_refinement_dt([[0.05]]), ValueError, "dts must be 1-D, got shape (1, 1)"),
    (lambda s: s.set_refinement_dt(["0.1"]), TypeError, "dts must hold real numbers"),
    (lambda s: s.set_refinement_dt([True]), TypeError, "dts must hold real numbers"),
]


@pytest.mark.parametrize("request_, error, text", BAD_REQUESTS)
def test_bad_refinement_request_raises_from_drive(request_: Any, error: type,
                                                  text: str) -> None:
    class Bad(ScalarODE):
        def step(self, u, ustop, status):
            super().step(u, ustop, status)
            request_(status)

    solver = layerbraid.Solver(Bad(), 0.0, 4.0, 16, max_levels=2, refine=True, print_level=0)
    with pytest.raises(error, match=re.escape(text)):
        solver.drive()
    solver.close()


def test_good_refinement_requests_are_accepted_off_the_fine_grid_too() -> None:
    """Integer types NumPy gives, and an rfactor that agrees with the step sizes."""
    class Good(ScalarODE):
        def step(self, u, ustop, status):
            super().step(u, ustop, status)
            status.set_rfactor(np.int64(1))
            status.set_refinement_dt(np.array([0.25 * (status.tstop - status.tstart)]),
                                     rfactor=2)
            status.set_rfactor(1)  # the last request wins: no refinement

    with layerbraid.Solver(Good(), 0.0, 4.0, 16, max_levels=3, refine=True,
                           print_level=0) as solver:
        r = solver.drive()
    assert (r.ntime, r.nrefine) == (16, 0)


@pytest.mark.parametrize("kwargs, error, text", [
    (dict(refine="yes"), TypeError, "refine must be a bool"),
    (dict(refine=True, max_refinements=-1), ValueError, "max_refinements=-1 is out of range"),
    (dict(refine=True, max_refinements=2.0), TypeError, "max_refinements must be an int"),
    (dict(refine=True, tpoints_cutoff=-5), ValueError, "tpoints_cutoff=-5 is out of range"),
    (dict(refine=True, incr_max_levels=2), ValueError, "incr_max_levels=2 is out of range"),
    (dict(max_refinements=3), ValueError,
     "max_refinements=3 only take effect with temporal refinement; add refine=True"),
    (dict(refine=False, tpoints_cutoff=100, incr_max_levels=True), ValueError,
     "tpoints_cutoff=100, incr_max_levels=True only take effect"),
    (dict(refine=True, periodic=True, max_levels=2), ValueError,
     "refine=True cannot be combined with periodic=True"),
])
def test_bad_refinement_options_raise_before_the_engine(no_engine: None, kwargs: dict,
                                                        error: type, text: str) -> None:
    with pytest.raises(error, match=re.escape(text)):
        layerbraid.Solver(ScalarODE(), 0.0, 4.0, 16, **kwargs)


# =============================================================================================
# f. Richardson extrapolation and error estimates
# =============================================================================================

def test_richardson_c_points_follow_the_extrapolated_recurrence() -> None:
    app, r = features.solve("richardson")
    assert r.converged
    u = solution(app, 65)
    dt = 4.0 / 64
    ref = 1.0
    for i in range(2, 65, 2):  # cfactor 2, local order 2: u_ci = 2 Phi^2(u) - Phi_c(u)
        ref = 2.0 * ref / (1.0 + dt) ** 2 - ref / (1.0 + 2.0 * dt)
        assert abs(u[i] - ref) <= 1e-12 * abs(ref), (i, u[i], ref)
    # one order more accurate than backward Euler at tstop
    plain, _ = features.solve("richardson_estimate")
    assert abs(u[64] - math.exp(-4.0)) < 0.1 * abs(plain.solution[64] - math.exp(-4.0))


def test_richardson_error_estimates_are_the_local_error() -> None:
    app, r = features.solve("richardson_estimate")  # extrapolate=False: plain backward Euler
    assert r.converged
    u = solution(app, 65)
    assert np.abs(u - features.serial_backward_euler(np.arange(65) * (4.0 / 64))).max() <= 1e-12
    dt = 4.0 / 64
    assert app.estimates[0] is None  # the initial condition is no step's result
    for i in range(1, 65):
        true = abs(u[i - 1]) * abs(math.exp(-dt) - 1.0 / (1.0 + dt))
        assert abs(app.estimates[i] / true - 1.0) < 0.2, (i, app.estimates[i], true)


def test_error_estimate_in_step_and_without_richardson() -> None:
    seen: dict[int, set] = {0: set(), 1: set(), 2: set()}

    class Recorder(ScalarODE):
        def step(self, u, ustop, status):
            seen[status.level].add(status.error_estimate is None)
            return super().step(u, ustop, status)

    with layerbraid.Solver(Recorder(), **features.CASES["richardson_estimate"][1]) as solver:
        solver.drive()
    assert seen[0] == {True, False}  # on the fine grid once there are estimates
    assert seen[1] == seen[2] == {True}  # never on coarse levels
    app, _ = features.solve("res")  # no richardson: never an estimate
    assert set(app.estimates.values()) == {None}


def test_richardson_spellings_are_the_same() -> None:
    from layerbraid import Richardson

    results = []
    for spelling in (Richardson(), True, {}, {"order": 2, "estimate": True},
                     Richardson(estimate=True, extrapolate=True, order=2)):
        kwargs = dict(features.CASES["richardson"][1], richardson=spelling)
        app = ScalarODE()
        with layerbraid.Solver(app, **kwargs) as solver:
            r = solver.drive()
            assert solver.settings["richardson"] == Richardson()
        results.append((r.residual_history, app.solution, app.estimates))
    assert all(res == results[0] for res in results)
    # off: None or False, and the same as no option
    for off in (None, False):
        assert braid_module.check_options({"richardson": off})["richardson"] is None


@pytest.mark.parametrize("value, error, text", [
    (dict(order=1), ValueError, "Richardson order=1 is out of range; it is the time stepper's "
                                "local order, an int in [2, 2147483647]"),
    (dict(order=0, extrapolate=False), ValueError, "Richardson order=0 is out of range"),
    (dict(order=2.0), TypeError, "Richardson order must be an int, got float 2.0"),
    (dict(order=True), TypeError, "Richardson order must be an int, got bool"),
    (dict(estimate=1), TypeError, "Richardson estimate must be a bool, got int 1"),
    (dict(orde=2), TypeError, "richardson has unknown key(s) 'orde'; its keys are estimate, "
                              "extrapolate, order"),
    ("yes", TypeError, "richardson must be a layerbraid.Richardson, a dict of its "
                       "fields, True or None, got str 'yes'"),
    (2, TypeError, "richardson must be a layerbraid.Richardson"),
])
def test_bad_richardson_values(no_engine: None, value: Any, error: type, text: str) -> None:
    with pytest.raises(error, match=re.escape(text)):
        layerbraid.Solver(ScalarODE(), 0.0, 4.0, 64, richardson=value)
    if isinstance(value, dict) and "orde" not in value:
        from layerbraid import Richardson

        with pytest.raises(error, match=re.escape(text)):
            Richardson(**value)  # the dataclass checks itself


@pytest.mark.parametrize("app, kwargs, text", [
    (ScalarODE, dict(periodic=True, max_levels=3), "cannot be combined with periodic=True"),
    (ResidualODE, dict(), "cannot be combined with an app with its own residual method "
                          "(ResidualODE.residual)"),
    (features.HeatSC, dict(), "cannot be combined with spatial coarsening "
                              "(HeatSC.coarsen/refine)"),
    (ScalarODE, dict(max_levels=1), "cannot be combined with max_levels=1"),
])
def test_richardson_refuses_what_it_cannot_do(no_engine: None, app: Any, kwargs: dict,
                                              text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(text)):
        layerbraid.Solver(app(), 0.0, 4.0, 64, richardson={"order": 2}, **kwargs)


# =============================================================================================
# g. the full residual, timers
# =============================================================================================

def full_residual_norm(u: np.ndarray, times: np.ndarray) -> float:
    """The l2 norm over the fine points 1..N of ResidualODE's residual (1 + dt) u_i - u_{i-1}."""
    dt = np.diff(times)
    return float(np.sqrt(np.sum(((1.0 + dt) * u[1:] - u[:-1]) ** 2)))


def test_full_residual_halts_the_solve_and_is_the_residual_of_every_point() -> None:
    app, r = features.solve("full_res")
    assert r.converged and r.full_residual is not None and r.full_residual < 1e-6
    # the full residual recomputed from the solution access saw
    u = solution(app, 65)
    times = np.array([app.times[i] for i in range(65)])
    recomputed = full_residual_norm(u, times)
    assert abs(r.full_residual - recomputed) <= 1e-9 * recomputed + 1e-15, \
        (r.full_residual, recomputed)
    assert app.full_calls > 0
    # it decided: halting on the C-point residual alone takes another cycle here
    _, plain = features.solve("res")
    assert plain.full_residual is None and (r.iterations, plain.iterations) == (7, 8)
    assert r.residual_history == plain.residual_history[:7]  # the same cycles until then
    # without a coarse grid there is no full residual
    with layerbraid.Solver(ResidualODE(), 0.0, 32.0, 64, max_levels=1, full_residual=True,
                           print_level=0) as solver:
        one = solver.drive()
    assert one.full_residual is None and one.converged


def test_full_residual_needs_an_app_residual(no_engine: None) -> None:
    with pytest.raises(TypeError, match=re.escape(
            "full_residual=True measures the residual with the app's residual method, and "
            "ScalarODE has none")):
        layerbraid.Solver(ScalarODE(), 0.0, 1.0, 8, full_residual=True)
    with pytest.raises(TypeError, match="full_residual must be a bool"):
        layerbraid.Solver(ResidualODE(), 0.0, 1.0, 8, full_residual="yes")


def test_timer_file_writes_each_ranks_timings(tmp_path: Path) -> None:
    stem = tmp_path / "timings"
    with layerbraid.Solver(ScalarODE(), 0.0, 4.0, 16, max_levels=2, timer_file=str(stem),
                           print_level=0) as solver:
        solver.drive()
    text = (tmp_path / "timings_0000.txt").read_text()
    assert "Timings for rank 0" in text and re.search(r"step\s+\d\.\d+e[+-]\d+", text)
    with pytest.raises(ValueError, match="timer_file must be a non-empty str"):
        layerbraid.Solver(ScalarODE(), 0.0, 4.0, 16, timer_file="")


def test_adaptive_options_are_listed() -> None:
    text = layerbraid.Solver.options()
    for name in ("refine: bool (False)", "max_refinements: int >= 0 (200)", "tpoints_cutoff:",
                 "incr_max_levels:", "richardson:", "full_residual: bool (False)",
                 "timer_file: str"):
        assert name in text
