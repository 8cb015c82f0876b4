"""layerbraid.Solver(adjoint=True): XBraid's piggy-back adjoint from Python.

a. examples/python/scalar_adjoint.py is the twin of examples/c/scalar_adjoint: the same output,
   byte for byte, on 1, 2 and 3 ranks, for several flag sets; with the default flags both
   reproduce issue 15's reference run (table rows 0, 1 and 5, iterations = 6, J and dJ/dlambda
   to every printed digit); examples/python/optimal_control.py is the twin of
   examples/c/optimal_control (the same lines on 1, 2 and 3 ranks) and reaches lambda* = -0.5;
b. the converged gradient equals the exact derivative of the discrete objective and central
   finite differences of objective_only drives, also with an objective window, a
   postprocessed objective and a three-level hierarchy; dJ/du_0 is exact;
c. on 2 and 3 ranks every result equals the one-rank solve (the gradient, a tuple of an array
   and a float, summed over the ranks to round-off and the same bits on every rank);
d. an exception in any adjoint callback (and in gradient()) on one rank ends both ranks: the
   callback's own exception there, RemoteRankError naming the rank and the cause elsewhere;
   in-process, drive() re-raises the callback's exception;
e. bad adjoint options and apps raise TypeError / ValueError before the engine runs;
f. CuPy states and a CuPy gradient give the NumPy results (skipped without a GPU).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import layerbraid
from script_modules import MPI_SCRIPTS, load_module

REPO = Path(__file__).resolve().parent.parent
PY_EXAMPLES = REPO / "examples" / "python"

example = load_module("example_scalar_adjoint", PY_EXAMPLES / "scalar_adjoint.py")
control = load_module("example_optimal_control", PY_EXAMPLES / "optimal_control.py")
failure = load_module("adjoint_failure", MPI_SCRIPTS / "adjoint_failure.py")
ScalarAdjoint = example.ScalarAdjoint


# =============================================================================================
# a. the Python twin of examples/c/scalar_adjoint
# =============================================================================================

TWIN_CASES: list[list[str]] = [
    [],
    ["-ml", "3", "-cf", "3", "-ntime", "54", "-tol", "1e-9", "-tol_adj", "1e-9"],
    ["-lambda", "-0.5", "-tstop", "10", "-ntime", "40", "-ml", "4", "-mi", "3"],
    ["-ml", "1"],  # sequential: one forward solve and one exact adjoint sweep
]

# upstream XBraid's run (issue 15): iteration, || r ||, || r_adj ||, objective
REFERENCE_ROWS = {0: "5.399995e-01  2.521756e-02  6.27080551e-02",
                  1: "2.446737e-02  2.604047e-02  3.60435144e-02",
                  5: "8.359592e-08  4.482596e-07  3.60000000e-02"}


def split_cases(out: str, ncases: int) -> list[str]:
    parts = []
    for k in range(ncases):
        m = re.search(rf"^@@case {k}@@\n(.*?)^@@end {k} rc=(\S+)@@$", out, re.M | re.S)
        assert m, f"case {k} missing from the output:\n{out}"
        assert m[2] == "0", f"case {k}: main() returned {m[2]}:\n{m[1]}"
        parts.append(m[1])
    return parts


@pytest.mark.parametrize("np_", [1, 2, 3])
def test_python_twin_equals_c_scalar_adjoint(run_mpi, example_bin, python_exe: str,
                                             np_: int) -> None:
    c_bin = example_bin("scalar_adjoint")
    argv: list[str] = []
    for k, case in enumerate(TWIN_CASES):
        argv += (["--"] if k else []) + case
    rc, out = run_mpi(np_, [python_exe, MPI_SCRIPTS / "solver_examples.py",
                            PY_EXAMPLES / "scalar_adjoint.py", *argv], timeout=60)
    assert rc == 0, out
    py_parts = split_cases(out, len(TWIN_CASES))
    for k, case in enumerate(TWIN_CASES):
        rc, c_out = run_mpi(np_, [c_bin, *case], timeout=30)
        assert rc == 0, c_out
        assert py_parts[k] == c_out, f"scalar_adjoint {' '.join(case)} on {np_} ranks"

    # the reference run of issue 15, at the precision it is printed with
    default = py_parts[0]
    for row, values in REFERENCE_ROWS.items():
        assert f"\n  Braid: {row:3d}  {values}\n" in default, default
    assert "\n  iterations = 6\n" in default, default
    assert "\n  Objective = 3.59999999999874e-02\n" in default, default
    assert "\n  Gradient  = 1.92000799963229e-02\n" in default, default


def test_twin_rejects_unknown_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        example.main(["-bogus", "1"])
    assert info.value.code == 2
    assert "-bogus" in capsys.readouterr().err
    assert control.main(["-bogus", "1"]) == 2
    assert "-bogus" in capsys.readouterr().err
    assert control.main(["-cf", "1"]) == 2
    assert "cf >= 2" in capsys.readouterr().err


_CONTROL_LINE = re.compile(r"^step +(\d+)  lambda = (\S+)  J = (\S+)  dJ/dlambda = (\S+)  "
                           r"iterations = (\d+)$")


@pytest.mark.parametrize("np_, nsteps", [(1, 25), (2, 25), (3, 6)])  # 3 ranks: slow on 2 cores
def test_optimal_control_twins_reach_the_optimum(run_mpi, example_bin, python_exe: str,
                                                 np_: int, nsteps: int) -> None:
    args = ["-nsteps", str(nsteps)]
    rc, c_out = run_mpi(np_, [example_bin("optimal_control"), *args], timeout=60)
    assert rc == 0, c_out
    rc, py_out = run_mpi(np_, [python_exe, PY_EXAMPLES / "optimal_control.py", *args],
                         timeout=60)
    assert rc == 0, py_out
    assert py_out == c_out, f"on {np_} ranks"
    lines = c_out.splitlines()
    steps = [_CONTROL_LINE.match(line) for line in lines[:-1]]
    assert len(steps) == nsteps and all(steps), c_out
    # gradient descent: lambda_{k+1} = lambda_k - 1.4 dJ/dlambda_k
    for now, after in zip(steps, steps[1:]):
        assert float(after[2]) == pytest.approx(float(now[2]) - 1.4 * float(now[4]),
                                                rel=1e-11, abs=0.0)
    assert float(steps[0][2]) == -1.5
    if nsteps < 25:
        return
    assert float(steps[-1][3]) < 1e-20  # J falls to round-off
    final = re.fullmatch(r"optimum lambda = (\S+)  \(exact -0\.5\)", lines[-1])
    assert final, c_out
    assert abs(float(final[1]) + 0.5) < 1e-9  # the drives' tolerance 1e-10 limits it


# =============================================================================================
# b. the gradient against the exact derivative and finite differences
# =============================================================================================

NTIME, TSTOP = 50, 25.0


class Windowed(ScalarAdjoint):
    """J = F(S), S = (1/ntime) sum of u_i^2 over the window, F(s) = s^2 (postprocess)."""

    def postprocess_objective(self, total: float) -> float:
        return total * total

    def postprocess_objective_diff(self, total: float) -> float:
        return 2.0 * total


def exact(lam: float, window: tuple[float, float] | None = None,
          squared: bool = False) -> tuple[float, float]:
    """J and dJ/dlambda of the discrete objective: u_i = r^i, r = 1/(1 - lambda dt)."""
    dt = TSTOP / NTIME
    i = np.arange(NTIME + 1)
    if window is not None:
        t = i * dt
        i = i[(t >= window[0]) & (t <= window[1])]
    r = 1.0 / (1.0 - lam * dt)
    total = float(np.sum(r ** (2 * i))) / NTIME
    dtotal = float(np.sum(2 * i * dt * r ** (2 * i + 1))) / NTIME  # dr/dlambda = dt r^2
    return (total * total, 2.0 * total * dtotal) if squared else (total, dtotal)


def adjoint_solve(lam: float, app_type: type = ScalarAdjoint,
                  **options) -> layerbraid.SolveResult:
    settings = dict(max_levels=2, abs_tol=1e-13, abs_tol_adjoint=1e-13, max_iter=60,
                    print_level=0, adjoint=True)
    settings.update(options)
    with layerbraid.Solver(app_type(lam), 0.0, TSTOP, NTIME, **settings) as solver:
        return solver.drive()


CASES = {
    "one level (sequential)": (ScalarAdjoint, dict(max_levels=1), None),
    "two levels": (ScalarAdjoint, {}, None),
    "three levels, cf 3, F-relaxation": (ScalarAdjoint,
                                         dict(max_levels=3, cfactor=3, nrelax=0), None),
    "window and postprocessing": (Windowed, dict(tstart_objective=2.5, tstop_objective=7.5),
                                  (2.5, 7.5)),
}


@pytest.mark.parametrize("case", CASES)
def test_gradient_is_exact_and_matches_finite_differences(case: str) -> None:
    app_type, options, window = CASES[case]
    lam = -1.0
    result = adjoint_solve(lam, app_type, **options)
    assert result.converged, result
    J, dJ = exact(lam, window, squared=app_type is Windowed)
    assert result.objective == pytest.approx(J, rel=1e-12, abs=0.0)
    assert result.gradient == pytest.approx(dJ, rel=1e-9, abs=0.0)
    h = 1e-5  # central differences: error h^2 J''' / 6 ~ 1e-11, round-off 1e-16 J / h
    plus = adjoint_solve(lam + h, app_type, objective_only=True, **options)
    minus = adjoint_solve(lam - h, app_type, objective_only=True, **options)
    fd = (plus.objective - minus.objective) / (2.0 * h)
    assert result.gradient == pytest.approx(fd, rel=1e-7, abs=0.0)


SQUARED_GRID = np.linspace(0.0, TSTOP, NTIME + 1) ** 2 / TSTOP


@pytest.mark.parametrize("options", [dict(seq_soln=True), dict(final_fcrelax=True),
                                     dict(reverted_ranks=True), dict(access_level=2),
                                     dict(time_grid=SQUARED_GRID)])
def test_options_the_adjoint_honours(options: dict) -> None:
    """The engine's adjoint honours these; converged, the gradient is the exact one (on the
    non-uniform grid: the exact derivative of its discrete objective)."""
    app = ScalarAdjoint(-1.0)
    problem = dict(time_grid=options.pop("time_grid")) if "time_grid" in options else \
        dict(tstart=0.0, tstop=TSTOP, ntime=NTIME)
    with layerbraid.Solver(app, **problem, max_levels=3, abs_tol=1e-13, abs_tol_adjoint=1e-13,
                           max_iter=60, print_level=0, adjoint=True, **options) as solver:
        result = solver.drive()
    assert result.converged
    if "time_grid" in problem:
        r = 1.0 / (1.0 - -1.0 * np.diff(problem["time_grid"]))  # u_i = prod of r_k, k < i
        u = np.concatenate([[1.0], np.cumprod(r)])
        du = u * np.concatenate([[0.0], np.cumsum(np.diff(problem["time_grid"]) * r)])
        J, dJ = float(np.sum(u * u)) / NTIME, float(np.sum(2.0 * u * du)) / NTIME
    else:
        J, dJ = exact(-1.0)
    assert result.objective == pytest.approx(J, rel=1e-12, abs=0.0)
    assert result.gradient == pytest.approx(dJ, rel=1e-9, abs=0.0)


def test_initial_adjoint_and_result_fields() -> None:
    result = adjoint_solve(-1.0)
    J, _ = exact(-1.0)
    # u_i = u_0 r^i makes J quadratic in u_0 = 1: dJ/du_0 = 2 J
    assert isinstance(result.initial_adjoint, np.ndarray)
    assert result.initial_adjoint.shape == (1,)
    assert result.initial_adjoint[0] == pytest.approx(2.0 * J, rel=1e-10, abs=0.0)
    assert len(result.rnorms_adjoint) == result.iterations == len(result.residual_history)
    assert result.rnorms_adjoint[-1] < 1e-13 <= result.rnorms_adjoint[0]
    assert result.rnorms == result.residual_history
    assert isinstance(result.gradient, float)


def test_one_level_is_one_exact_sweep() -> None:
    result = adjoint_solve(-1.0, max_levels=1)
    J, dJ = exact(-1.0)
    assert result.iterations == 0 and result.converged
    assert result.residual_history == () and result.rnorms_adjoint == ()
    assert result.gradient == pytest.approx(dJ, rel=1e-13, abs=0.0)
    assert result.initial_adjoint[0] == pytest.approx(2.0 * J, rel=1e-13, abs=0.0)


def test_objective_status_fields() -> None:
    class Recording(ScalarAdjoint):
        seen: list[tuple] = []

        def objective(self, u, status):
            self.seen.append((status.t, status.tindex, status.iteration, status.level,
                              status.nlevels, status.nrefine, status.ntpoints, status.tol))
            return super().objective(u, status)

    result = adjoint_solve(-1.0, Recording, abs_tol=1e-9, abs_tol_adjoint=1e-9)
    seen = Recording.seen
    dt = TSTOP / NTIME
    # every fine point once per iteration, at its own time, on level 0 of 2
    assert len(seen) == (NTIME + 1) * result.iterations
    assert sorted({entry[1] for entry in seen}) == list(range(NTIME + 1))
    assert all(t == pytest.approx(i * dt, rel=1e-15, abs=0.0) for t, i, *_ in seen)
    assert sorted({entry[2] for entry in seen}) == list(range(result.iterations))
    assert {entry[3:] for entry in seen} == {(0, 2, 0, NTIME, 1e-9)}


def test_objective_only_computes_no_adjoint() -> None:
    full, only = adjoint_solve(-1.0), adjoint_solve(-1.0, objective_only=True)
    assert only.converged
    assert only.objective == pytest.approx(full.objective, rel=1e-12, abs=0.0)
    assert only.gradient is None and only.initial_adjoint is None and only.rnorms_adjoint == ()


def test_app_without_gradient_method_gets_none() -> None:
    class NoGradient(ScalarAdjoint):
        gradient = None  # not callable: the solver does not ask

    result = adjoint_solve(-1.0, NoGradient)
    assert result.gradient is None and result.objective is not None


def test_converged_needs_the_adjoint_tolerance() -> None:
    # the state meets 1e-6 after 6 iterations; with max_iter=3 neither is met, and an
    # adjoint tolerance no iteration can meet leaves the solve unconverged at max_iter
    assert not adjoint_solve(-1.0, abs_tol=1e-6, abs_tol_adjoint=1e-6, max_iter=3).converged
    result = adjoint_solve(-1.0, abs_tol=1e-6, abs_tol_adjoint=0.0, max_iter=8)
    assert result.iterations == 8 and result.residual_history[-1] < 1e-6
    assert not result.converged
    relative = adjoint_solve(-1.0, abs_tol=None, abs_tol_adjoint=None, rel_tol=1e-6,
                             rel_tol_adjoint=1e-4)
    assert relative.converged
    assert relative.rnorms_adjoint[-1] < 1e-4 * relative.rnorms_adjoint[0]


# =============================================================================================
# c. several ranks give the one-rank results
# =============================================================================================

@pytest.mark.parametrize("np_", [2, 3])
def test_ranks_equal_one_rank(run_mpi, python_exe: str, np_: int) -> None:
    rc, out = run_mpi(np_, [python_exe, MPI_SCRIPTS / "adjoint_ranks.py"], timeout=60)
    assert rc == 0, out
    report = json.loads(out.strip().splitlines()[-1])
    assert report == {"nprocs": np_, "owners": [True] + [False] * (np_ - 1)}, out


# =============================================================================================
# d. an exception in an adjoint callback ends every rank
# =============================================================================================

# the engine's name of each method's callback, as the other ranks' message gives it
ENGINE_NAMES = {"objective": "the objectiveT callback failed",
                "objective_diff": "the objT_diff callback failed",
                "step_diff": "the step_diff callback failed",
                "reset_gradient": "the reset_gradient callback failed",
                "postprocess_objective": "the postprocess_obj callback failed",
                "postprocess_objective_diff": "the postprocess_obj_diff callback failed",
                "gradient": "the app's gradient() failed"}


@pytest.mark.parametrize("method, fail_rank",
                         [(m, 1) for m in failure.METHODS] + [("step_diff", 0)])
def test_callback_exception_ends_every_rank(run_mpi, python_exe: str, tmp_path: Path,
                                            method: str, fail_rank: int) -> None:
    rc, out = run_mpi(2, [python_exe, MPI_SCRIPTS / "adjoint_failure.py", method, fail_rank,
                          tmp_path], timeout=30)
    assert rc != 0, out
    results = {r: (tmp_path / f"rank{r}.txt").read_text().splitlines() for r in (0, 1)
               if (tmp_path / f"rank{r}.txt").exists()}
    assert set(results) == {0, 1}, out
    assert results[fail_rank] == ["BoomError", f"boom in {method}"], out
    kind, message = results[1 - fail_rank]
    assert kind == "RemoteRankError", out
    assert message.startswith(f"stopped because another rank failed: rank {fail_rank}: "
                              f"{ENGINE_NAMES[method]}"), out
    assert message.endswith(f"BoomError: boom in {method}"), out


def test_callback_exception_in_process() -> None:
    app = failure.FailingAdjoint("objective_diff", 0)
    solver = layerbraid.Solver(app, 0.0, TSTOP, NTIME, max_levels=2, print_level=0,
                               adjoint=True)
    with pytest.raises(failure.BoomError, match="boom in objective_diff"):
        solver.drive()
    with pytest.raises(RuntimeError, match="cannot drive again"):
        solver.drive()
    solver.close()


# =============================================================================================
# e. bad options and apps
# =============================================================================================

class StateOnly(layerbraid.App):
    def init(self, t):
        return np.ones(1)

    def step(self, u, ustop, status):
        u /= 2.0


class HalfPostprocess(ScalarAdjoint):
    def postprocess_objective(self, total: float) -> float:
        return total


def make(app=None, **options):
    return layerbraid.Solver(ScalarAdjoint(-1.0) if app is None else app, 0.0, TSTOP, NTIME,
                             print_level=0, **options)


def test_missing_adjoint_methods_are_named() -> None:
    with pytest.raises(TypeError, match=r"objective, objective_diff, step_diff, "
                                        r"reset_gradient: app of type StateOnly"):
        make(StateOnly(), adjoint=True)
    with pytest.raises(TypeError, match="has postprocess_objective but no "
                                        "postprocess_objective_diff"):
        make(HalfPostprocess(-1.0), adjoint=True)


@pytest.mark.parametrize("options, error, text", [
    (dict(objective_only=True), ValueError, "only take effect with the adjoint"),
    (dict(tstop_objective=3.0), ValueError, "only take effect with the adjoint"),
    (dict(adjoint=True, abs_tol_adjoint=1e-6, rel_tol_adjoint=1e-6), ValueError, "exclusive"),
    (dict(adjoint=True, abs_tol_adjoint=-1.0), ValueError, "abs_tol_adjoint"),
    (dict(adjoint=True, rel_tol_adjoint="1e-6"), TypeError, "rel_tol_adjoint"),
    (dict(adjoint=True, tstart_objective=-1.0), ValueError, "outside the time interval"),
    (dict(adjoint=True, tstop_objective=30.0), ValueError, "outside the time interval"),
    (dict(adjoint=True, tstart_objective=10.0, tstop_objective=5.0), ValueError, "empty"),
    (dict(adjoint=True, tstart_objective=float("nan")), ValueError, "finite"),
    (dict(adjoint=True, objective_only=2), ValueError, "objective_only"),
    (dict(adjoint="yes"), TypeError, "adjoint"),
    (dict(adjoint=True, fmg=True), ValueError, "with fmg: the adjoint iteration does not do F-"),
    (dict(adjoint=True, skip=True), ValueError, "with skip:"),
    (dict(adjoint=True, relax_only_cg=True), ValueError, "relax_only_cg"),
    (dict(adjoint=True, residual_computation=False), ValueError, "residual_computation"),
    (dict(adjoint=True, refine=True), ValueError, "temporal refinement"),
])
def test_bad_options_are_refused(options, error, text) -> None:
    with pytest.raises(error, match=re.escape(text)):
        make(**options)


def test_periodic_and_residual_apps_are_refused() -> None:
    with pytest.raises(ValueError, match="periodic"):
        layerbraid.Solver(ScalarAdjoint(-1.0), 0.0, 25.0, 48, max_levels=2, periodic=True,
                          adjoint=True)

    class WithResidual(ScalarAdjoint):
        def step(self, u, ustop, status, fstop=None):
            super().step(u, ustop, status)

        def residual(self, ustop, r, status):
            r[0] = ustop[0] - r[0]

    with pytest.raises(ValueError, match="residual"):
        make(WithResidual(-1.0), adjoint=True)


# =============================================================================================
# f. CuPy states and a CuPy gradient
# =============================================================================================

class DeviceScalarAdjoint(ScalarAdjoint):
    """ScalarAdjoint with states of the App's backend and the gradient as an array of it."""

    def __init__(self, lam: float, backend: str) -> None:
        layerbraid.App.__init__(self, backend)
        self.lam, self.grad = lam, 0.0

    def init(self, t: float):
        return self.xp.array([1.0 if t == 0.0 else 0.456])

    def gradient(self):
        return self.xp.array([self.grad])


@pytest.mark.skipif(not layerbraid.gpu_available(), reason="needs CuPy and a CUDA device")
def test_cupy_states_and_gradient_equal_numpy() -> None:
    import cupy

    results = {}
    for backend in ("numpy", "cupy"):
        with layerbraid.Solver(DeviceScalarAdjoint(-1.0, backend), 0.0, TSTOP, NTIME,
                               max_levels=2, abs_tol=1e-12, abs_tol_adjoint=1e-12,
                               print_level=0, adjoint=True) as solver:
            results[backend] = solver.drive()
    r_np, r_cp = results["numpy"], results["cupy"]
    assert isinstance(r_cp.gradient, cupy.ndarray)
    assert isinstance(r_cp.initial_adjoint, cupy.ndarray)
    assert r_cp.iterations == r_np.iterations
    assert r_cp.objective == pytest.approx(r_np.objective, rel=1e-12, abs=0.0)
    assert r_cp.rnorms_adjoint == pytest.approx(r_np.rnorms_adjoint, rel=1e-12, abs=0.0)
    assert float(r_cp.gradient[0]) == pytest.approx(float(r_np.gradient[0]), rel=1e-12, abs=0.0)
    assert float(r_cp.initial_adjoint[0]) == pytest.approx(float(r_np.initial_adjoint[0]),
                                                           rel=1e-12, abs=0.0)
