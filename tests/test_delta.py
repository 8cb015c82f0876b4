"""layerbraid.Solver(delta_rank=k): Delta correction and Lyapunov estimation from Python.

a. examples/python/lorenz.py is the twin of examples/c/lorenz: the same output (the residual
   history to the last digit, the iteration count, the distance to the serial solution, the
   Lyapunov exponents) and the same -out file, on 1, 2 and 3 ranks, with and without Delta
   correction, with Lyapunov estimation and deferred correction; Delta correction takes fewer
   iterations than none at the same settings;
b. status.basis: the engine's own basis vectors, changed in place or by assignment, with
   IndexError past the end and an error once the callback has returned;
   status.local_lyapunov_exponents is empty without Lyapunov estimation;
c. an exception in init_basis or inner_prod on one rank ends both ranks (RemoteRankError
   naming the rank and the cause on the other);
d. bad Delta options and apps raise TypeError / ValueError before the engine runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import layerbraid
from script_modules import MPI_SCRIPTS, load_module

REPO = Path(__file__).resolve().parent.parent
PY_EXAMPLES = REPO / "examples" / "python"

lorenz = load_module("example_lorenz", PY_EXAMPLES / "lorenz.py")

CASES: list[list[str]] = [
    [],                                             # Delta correction of rank 3
    ["-rank", "0"],                                 # the same without it
    ["-lyap", "-ntime", "512", "-tstop", "5.12"],   # Lyapunov vectors and exponents
    ["-lyap", "-relaxlyap", "-ml", "3", "-cf", "2", "-ntime", "256", "-tstop", "2.56",
     "-defer-lvl", "2", "-defer-iter", "1", "-rank", "2"],
]


def normalise(out: str) -> str:
    return re.sub(r"wall time = \S+", "wall time = *", out)


def split_cases(out: str, ncases: int) -> list[str]:
    parts = []
    for k in range(ncases):
        m = re.search(rf"^@@case {k}@@\n(.*?)^@@end {k} rc=(\S+)@@$", out, re.M | re.S)
        assert m, f"case {k} missing from the output:\n{out}"
        assert m[2] == "0", f"case {k}: main() returned {m[2]}:\n{m[1]}"
        parts.append(m[1])
    return parts


def iterations(out: str) -> int:
    found = re.findall(r"^  Iterations = (\d+)$", out, re.M)
    assert len(found) == 1, out
    return int(found[0])


@pytest.mark.parametrize("np_", [1, 2, 3])
def test_python_twin_equals_c_lorenz(run_mpi, example_bin, python_exe: str, tmp_path: Path,
                                     np_: int) -> None:
    c_bin = example_bin("lorenz")
    argv: list[str] = []
    for k, case in enumerate(CASES):
        argv += (["--"] if k else []) + case + ["-out", str(tmp_path / f"py{k}.txt")]
    rc, out = run_mpi(np_, [python_exe, MPI_SCRIPTS / "solver_examples.py",
                            PY_EXAMPLES / "lorenz.py", *argv], timeout=120)
    assert rc == 0, out
    py_parts = split_cases(out, len(CASES))
    c_parts = []
    for k, case in enumerate(CASES):
        rc, c_out = run_mpi(np_, [c_bin, *case, "-out", tmp_path / f"c{k}.txt"], timeout=60)
        assert rc == 0, c_out
        what = f"lorenz {' '.join(case) or '(defaults)'} on {np_} ranks"
        assert normalise(py_parts[k]) == normalise(c_out), what
        assert (tmp_path / f"py{k}.txt").read_text() == (tmp_path / f"c{k}.txt").read_text(), \
            what
        c_parts.append(c_out)
    # Delta correction of rank 3 (the state's dimension) against none, same settings
    assert iterations(c_parts[0]) < iterations(c_parts[1]), c_parts[:2]
    assert "Lyapunov exponents (average of" in c_parts[2], c_parts[2]


# =============================================================================================
# b. the status views
# =============================================================================================

class Linear(layerbraid.App):
    """u' = A u (A diagonal, so the step's linearisation is itself) with Delta correction of
    rank 2: step propagates the basis, vector 0 in place and vector 1 by assignment."""

    def __init__(self) -> None:
        super().__init__()
        self.rate = np.array([-1.0, 0.5])
        self.seen: dict[str, object] = {}

    def init(self, t):
        return np.array([1.0, 1.0]) if t == 0.0 else np.zeros(2)

    def init_basis(self, t, index):
        e = np.zeros(2)
        e[index] = 1.0
        return e

    def advance(self, v, dt):
        return v / (1.0 - self.rate * dt)

    def step(self, u, ustop, status):
        dt = status.tstop - status.tstart
        basis = status.basis
        assert len(basis) == status.delta_rank in (0, 2)
        if len(basis) == 2:
            basis[0][:] = self.advance(basis[0], dt)  # in place
            basis[1] = self.advance(basis[1], dt)     # by assignment
            self.seen["delta step"] = True
            with pytest.raises(IndexError):
                basis[2]
            assert basis[-1] is basis[1]
            self.seen["basis"] = basis
        u[:] = self.advance(u, dt)

    def access(self, u, status):
        self.seen["exponents"] = status.local_lyapunov_exponents


def test_basis_in_place_or_assigned_and_only_inside_the_callback() -> None:
    app = Linear()
    options = dict(max_levels=3, cfactor=4, abs_tol=1e-12, print_level=0, skip=False)
    with layerbraid.Solver(app, 0.0, 4.0, 64, delta_rank=2, **options) as solver:
        result = solver.drive()
    with layerbraid.Solver(Linear(), 0.0, 4.0, 64, **options) as solver:
        plain = solver.drive()
    # with the full rank the corrected coarse propagator is the fine one: the first
    # iteration leaves only round-off, which the second measures (without Delta: 8)
    assert result.converged and result.iterations == 2 < plain.iterations, (result, plain)
    assert app.seen["delta step"] and app.seen["exponents"] == []
    with pytest.raises(RuntimeError, match="outside of its callback"):
        len(app.seen["basis"])


# =============================================================================================
# c. an exception in a Delta callback ends every rank
# =============================================================================================

ENGINE_NAMES = {"init_basis": "the basis_init callback failed",
                "inner_prod": "the inner_prod callback failed"}


@pytest.mark.parametrize("method", ["init_basis", "inner_prod"])
def test_callback_exception_ends_every_rank(run_mpi, python_exe: str, tmp_path: Path,
                                            method: str) -> None:
    rc, out = run_mpi(2, [python_exe, MPI_SCRIPTS / "delta_failure.py", method, 1, tmp_path],
                      timeout=30)
    assert rc != 0, out
    results = {r: (tmp_path / f"rank{r}.txt").read_text().splitlines() for r in (0, 1)
               if (tmp_path / f"rank{r}.txt").exists()}
    assert set(results) == {0, 1}, out
    assert results[1] == ["BoomError", f"boom in {method}"], out
    kind, message = results[0]
    assert kind == "RemoteRankError", out
    assert message.startswith(f"stopped because another rank failed: rank 1: "
                              f"{ENGINE_NAMES[method]}"), out
    assert message.endswith(f"BoomError: boom in {method}"), out


# =============================================================================================
# d. bad options and apps
# =============================================================================================

class NoBasis(layerbraid.App):
    def init(self, t):
        return np.ones(2)

    def step(self, u, ustop, status):
        u /= 2.0


def make(app=None, **options):
    return layerbraid.Solver(Linear() if app is None else app, 0.0, 4.0, 64, print_level=0,
                             **options)


@pytest.mark.parametrize("options, error, text", [
    (dict(defer_delta=(1, 0)), ValueError, "only take effect with Delta correction"),
    (dict(lyapunov=True), ValueError, "only take effect with Delta correction"),
    (dict(delta_rank=2, defer_delta=(0, 0)), ValueError, "defer_delta level"),
    (dict(delta_rank=2, defer_delta=(1, -1)), ValueError, "defer_delta iteration"),
    (dict(delta_rank=2, defer_delta=1), TypeError, "defer_delta"),
    (dict(delta_rank=2, lyapunov={"cglv": 1}), TypeError, "lyapunov['cglv']"),
    (dict(delta_rank=2, lyapunov={"vectors": True}), TypeError, "'vectors'"),
    (dict(delta_rank=2, lyapunov="yes"), TypeError, "lyapunov"),
    (dict(delta_rank=-1), ValueError, "delta_rank"),
    (dict(delta_rank=2, refine=True), ValueError, "temporal refinement"),
    (dict(delta_rank=2, relax_only_cg=True), ValueError, "relax_only_cg=True"),
    (dict(delta_rank=2, richardson=True), ValueError, "Richardson"),
    (dict(delta_rank=2, periodic=True, max_levels=2), ValueError, "periodic"),
])
def test_bad_options_are_refused(options, error, text) -> None:
    with pytest.raises(error, match=re.escape(text)):
        make(**options)


def test_app_without_init_basis_is_refused() -> None:
    with pytest.raises(TypeError, match="needs the app's init_basis: app of type NoBasis"):
        make(NoBasis(), delta_rank=1)


def test_delta_with_the_adjoint_is_refused() -> None:
    scalar = load_module("example_scalar_adjoint", PY_EXAMPLES / "scalar_adjoint.py")

    class WithBasis(scalar.ScalarAdjoint):
        def init_basis(self, t, index):
            return np.ones(1)

    with pytest.raises(ValueError, match="adjoint=True"):
        layerbraid.Solver(WithBasis(-1.0), 0.0, 25.0, 50, adjoint=True, delta_rank=1)


def test_app_inner_prod_is_euclidean() -> None:
    app = layerbraid.App()
    u = (np.array([1.0, 2.0]), np.array([[3.0]]))
    v = (np.array([4.0, -1.0]), np.array([[0.5]]))
    assert app.inner_prod(u, v) == 1.0 * 4.0 + 2.0 * -1.0 + 3.0 * 0.5
