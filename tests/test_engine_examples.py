"""What users of the MGRIT engine rely on, checked through the two C examples.

* the documented golden run of ``scalar_ode`` (residuals, iteration count, solution), and
  ``max_levels = 1`` being plain sequential time stepping, bit for bit;
* an option table (levels x cfactor x relaxation x skip x FMG, both examples): the residual
  history and the solution do not depend on the number of ranks (1, 2, 3, 4), and the
  one-rank convergence matches tests/data/engine_option_table.json;
* two-level MGRIT on the scalar ODE converges at least as fast as the two-level theory allows;
* ``heat1d`` converges and its discretisation error behaves like backward Euler with central
  differences (first order in time, second in space).

The examples are built by ``make examples``; the tests skip when they are not. Every run is
``mpiexec -n N <example> ...`` through the ``run_mpi`` fixture (own session, timeout, group
kill). The option table launches its four rank counts two at a time (the CI machine has two
cores); results are keyed by rank count, so the order of completion never matters.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent / "data"


def _load_table_module():
    """tests/data/make_engine_option_table.py: the config list, parser and markdown renderer."""
    name = "make_engine_option_table"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DATA / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


table = _load_table_module()
parse_run = table.parse_run
normalise = table.normalise

RANKS = (1, 2, 3, 4)


def run_ok(run_mpi, np_: int, argv: list) -> str:
    """Runs ``mpiexec -n np_ argv`` and returns its output; fails the test on a nonzero exit."""
    rc, out = run_mpi(np_, [str(a) for a in argv], timeout=120)
    assert rc == 0, f"mpiexec -n {np_} {' '.join(map(str, argv))} exited {rc}:\n{out}"
    return out


def read_columns(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------
# 1. scalar_ode: the documented golden run, and max_levels = 1
# ---------------------------------------------------------------------------------------------

GOLDEN_RESIDUALS = ["2.845538e-02", "8.621939e-04", "0.000000e+00"]


@pytest.mark.parametrize("np_", [1, 2, 4])
def test_scalar_default_golden_run(run_mpi, example_bin, tmp_path: Path, np_: int) -> None:
    out_file = tmp_path / "u.txt"
    out = run_ok(run_mpi, np_, [example_bin("scalar_ode"), "-out", out_file])
    run = parse_run(out)

    assert "  Braid: Begin simulation, 10 time steps" in out
    assert "  Braid: || r_0 || not available, wall time = " in out
    assert run["residuals"][0] is None
    assert run["residual_text"][1:] == GOLDEN_RESIDUALS, out
    assert run["iterations"] == 4, out
    assert run["residual_norm_text"] == "0.000000e+00"
    assert run["levels"] == 2
    assert "  Braid Solver Stats:" in out  # upstream's stats block (same on any rank count)
    assert "  max number of levels  = 2\n  min coarse            = 2\n" in out

    # the converged solution is the discrete solution u_i = (1/1.5)^i, t_i = i/2
    rows = read_columns(out_file)
    assert [int(r[0]) for r in rows] == list(range(11))
    for i, (_, t, u) in enumerate(rows):
        assert float(t) == i / 2
        exact = float(Fraction(2, 3) ** i)  # (1/1.5)^i rounded once
        assert abs(float(u) - exact) <= 1e-15 * exact, (i, u, exact)


def test_scalar_default_solution_file_is_rank_independent(
    run_mpi, example_bin, tmp_path: Path
) -> None:
    files = {}
    for np_ in (1, 2, 4):
        files[np_] = tmp_path / f"u{np_}.txt"
        run_ok(run_mpi, np_, [example_bin("scalar_ode"), "-out", files[np_]])
    assert files[2].read_bytes() == files[1].read_bytes()
    assert files[4].read_bytes() == files[1].read_bytes()


@pytest.mark.parametrize("np_", [1, 2, 4])
def test_scalar_one_level_is_sequential_stepping(
    run_mpi, example_bin, tmp_path: Path, np_: int
) -> None:
    out_file = tmp_path / "u.txt"
    out = run_ok(run_mpi, np_, [example_bin("scalar_ode"), "-ml", "1", "-out", out_file])
    run = parse_run(out)
    assert run["iterations"] == 0, out
    assert run["residual_norm_text"] == "-1.000000e+00", out
    assert run["residual_norm"] == -1.0
    assert run["levels"] == 1
    assert run["residuals"] == [], out  # no MGRIT iteration, so no residual lines

    # the example's step, the same floating-point operations: u / (1 - lambda (tstop - tstart))
    rows = read_columns(out_file)
    lam = -1.0
    t = [float(r[1]) for r in rows]
    u = [float(r[2]) for r in rows]
    assert len(u) == 11 and t == [i / 2 for i in range(11)]
    expected = [1.0]
    for i in range(1, 11):
        expected.append(expected[-1] / (1.0 - lam * (t[i] - t[i - 1])))
    assert u == expected  # bit for bit


# ---------------------------------------------------------------------------------------------
# 2. the option table: rank independence and golden convergence
# ---------------------------------------------------------------------------------------------

GOLDEN = json.loads((DATA / "engine_option_table.json").read_text())
TABLE_CASES = [
    pytest.param(example, cfg, id=f"{example}-{table.config_key(cfg).replace(' ', ',')}")
    for example in table.EXAMPLES
    for cfg in table.configs()
]


@pytest.fixture(scope="module")
def two_at_a_time():
    """Two launches in flight at a time; each test collects its results by rank count."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


def test_golden_table_matches_the_configuration_list() -> None:
    """The JSON was made from today's config list and flags (else: regenerate it)."""
    assert GOLDEN["tol"] == table.TOL and GOLDEN["max_iter"] == table.MAX_ITER
    assert list(GOLDEN["examples"]) == list(table.EXAMPLES)
    for example, base in table.EXAMPLES.items():
        data = GOLDEN["examples"][example]
        assert data["args"] == base
        assert list(data["configs"]) == [table.config_key(c) for c in table.configs()]
        for cfg in table.configs():
            entry = data["configs"][table.config_key(cfg)]
            assert {k: entry[k] for k in cfg} == cfg


def test_convergence_markdown_is_in_step_with_the_json() -> None:
    md = table.MD_PATH
    assert md.is_file(), f"{md} is missing; run {table.REGENERATE}"
    assert md.read_text() == table.render_markdown(GOLDEN), (
        f"{md} is out of step with {DATA / 'engine_option_table.json'}; run {table.REGENERATE}"
    )


@pytest.mark.parametrize(("example", "cfg"), TABLE_CASES)
def test_option_table(
    run_mpi, example_bin, two_at_a_time, tmp_path: Path, example: str, cfg: dict
) -> None:
    binary = example_bin(example)
    args = table.config_args(example, cfg)
    files = {np_: tmp_path / f"np{np_}.out" for np_ in RANKS}
    futures = {
        np_: two_at_a_time.submit(run_ok, run_mpi, np_, [binary, *args, "-out", files[np_]])
        for np_ in RANKS
    }
    outputs = {np_: futures[np_].result() for np_ in RANKS}
    cmd = f"{example} {' '.join(args)}"

    # identical residual history, statistics and solution on every rank count
    reference = normalise(outputs[1])
    for np_ in RANKS[1:]:
        assert normalise(outputs[np_]) == reference, (
            f"{cmd}: output on {np_} ranks differs from 1 rank\n--- 1 rank ---\n{outputs[1]}"
            f"\n--- {np_} ranks ---\n{outputs[np_]}"
        )
        assert files[np_].read_bytes() == files[1].read_bytes(), (
            f"{cmd}: -out solution on {np_} ranks differs from 1 rank"
        )

    # converged within max_iter, and the reported residual is the last one printed
    run = parse_run(outputs[1])
    assert not run["max_iter_reached"] and not run["diverged"], f"{cmd}\n{outputs[1]}"
    assert run["residual_norm"] < table.TOL, f"{cmd}\n{outputs[1]}"
    assert 1 <= run["iterations"] <= table.MAX_ITER
    assert run["residual_text"][-1] == run["residual_norm_text"]
    assert all(r is None or math.isfinite(r) for r in run["residuals"])

    # the same convergence as the golden table
    golden = GOLDEN["examples"][example]["configs"][table.config_key(cfg)]
    assert run["levels"] == golden["levels"], cmd
    assert run["iterations"] == golden["iterations"], (
        f"{cmd}: {run['iterations']} iterations, golden {golden['iterations']}\n{outputs[1]}"
    )
    assert close_to_golden(run["residual_norm"], golden["residual_norm"]), (
        f"{cmd}: final residual {run['residual_norm']!r}, golden {golden['residual_norm']!r}"
    )
    # and the whole history, which extern/braid/doc/convergence.md shows as conv factors
    history = golden["residuals"]
    assert len(run["residuals"]) == len(history) and all(
        (got is None) == (want is None) and (got is None or close_to_golden(got, want))
        for got, want in zip(run["residuals"], history)
    ), f"{cmd}: residual history {run['residuals']}, golden {history}"


def close_to_golden(got: float, want: float) -> bool:
    """Relative 1e-8 (the printed digits agree), or within 1e-300 of a golden 0."""
    if want == 0.0:
        return abs(got) <= 1e-300
    return abs(got - want) <= 1e-8 * abs(want)


# ---------------------------------------------------------------------------------------------
# 3. two-level convergence bound on the scalar ODE
# ---------------------------------------------------------------------------------------------
#
# Linear scalar problem, backward Euler: fine propagator lf = 1/(1 - lam dt), coarse
# propagator mu = 1/(1 - lam m dt) (m = cfactor), Nc = ntime/m coarse intervals. On the
# C-point residuals r (points 1..Nc) with S the down-shift, the Schur complement is
# A = I - lf^m S and the coarse operator B = I - mu S. One two-level iteration maps the
# residual (taken after relaxation) through the coarse-grid correction I - A B^-1 =
# (lf^m - mu) S (I - mu S)^-1 and then the relaxation: F-relaxation leaves the C-point
# residual unchanged, FCF multiplies it by lf^m S. All are polynomials in S: lower-triangular
# Toeplitz, commuting, with symbol coefficients (lf^m - mu) mu^(k-1), k >= 1. The 2-norm is at
# most the l1 norm of the coefficients: |lf^m - mu| sum_{k<Nc} |mu|^k (times |lf|^m for FCF).

LAM = -1.0
DT = 0.5
PRINT_REL = 5e-7  # %1.6e keeps 7 significant digits: |printed - true| <= 5e-7 |printed|


def two_level_bound(ntime: int, cf: int, nrelax: int) -> float:
    lf = 1.0 / (1.0 - LAM * DT)
    mu = 1.0 / (1.0 - LAM * cf * DT)
    nc = ntime // cf
    bound = abs(lf**cf - mu) * sum(abs(mu) ** k for k in range(nc))
    return bound * abs(lf) ** cf if nrelax == 1 else bound


def two_level_propagator(ntime: int, cf: int, nrelax: int) -> np.ndarray:
    """The Nc x Nc residual propagator of one iteration, built from its factors."""
    lf = 1.0 / (1.0 - LAM * DT)
    mu = 1.0 / (1.0 - LAM * cf * DT)
    nc = ntime // cf
    eye, shift = np.eye(nc), np.eye(nc, k=-1)
    schur, coarse = eye - lf**cf * shift, eye - mu * shift
    prop = eye - schur @ np.linalg.inv(coarse)
    if nrelax == 1:
        prop = (lf**cf * shift) @ prop
    return prop


BOUND_CASES = [(n, cf, nu) for n in (64, 256) for cf in (2, 4, 8) for nu in (0, 1)]


@pytest.mark.parametrize(("ntime", "cf", "nrelax"), BOUND_CASES)
def test_two_level_bound_formula(ntime: int, cf: int, nrelax: int) -> None:
    """Self-check of the formula: it bounds the exact 2-norm of the propagator."""
    prop = two_level_propagator(ntime, cf, nrelax)
    nc = prop.shape[0]
    # lower-triangular Toeplitz: zero on and above the diagonal, constant along diagonals
    assert np.all(np.triu(prop) == 0.0)
    for k in range(1, nc):
        diag = np.diagonal(prop, -k)
        np.testing.assert_allclose(diag, diag[0], rtol=1e-13, atol=0)
    exact = np.linalg.norm(prop, 2)
    bound = two_level_bound(ntime, cf, nrelax)
    assert exact <= bound * (1 + 1e-12), (exact, bound)
    assert exact >= 0.9 * bound  # and not uselessly loose for these sizes


@pytest.mark.parametrize(("ntime", "cf", "nrelax"), BOUND_CASES)
def test_two_level_convergence_bound(
    run_mpi, example_bin, ntime: int, cf: int, nrelax: int
) -> None:
    argv = [example_bin("scalar_ode"), "-ntime", ntime, "-ml", "2", "-cf", cf, "-nu", nrelax,
            "-tol", "1e-15", "-mi", "60"]
    out = run_ok(run_mpi, 1, argv)
    run = parse_run(out)
    assert run["levels"] == 2
    r = run["residuals"]
    bound = two_level_bound(ntime, cf, nrelax)
    exact = np.linalg.norm(two_level_propagator(ntime, cf, nrelax), 2)

    factors = []  # (k, r_{k+1}/r_k, largest true ratio the printed digits allow)
    for k in range(1, len(r) - 1):
        if r[k] is None or r[k + 1] is None or r[k] < 1e-12:
            continue
        if r[k + 1] < 1e-12 and r[k + 1] != 0.0:
            continue  # round-off level: no longer the linear iteration
        worst = r[k + 1] * (1 + PRINT_REL) / (r[k] * (1 - PRINT_REL))
        factors.append((k, r[k + 1] / r[k], worst))
    assert len(factors) >= 2, out
    for k, factor, worst in factors:
        assert worst <= bound * (1 + 1e-12), f"r_{k + 1}/r_{k} = {factor} > bound {bound}\n{out}"
        assert worst <= exact * (1 + 1e-12), f"r_{k + 1}/r_{k} = {factor} > ||E|| {exact}\n{out}"
    # the first factors are not trivially small, so the check above could fail
    for k, factor, _ in factors[:2]:
        assert factor >= 0.5 * bound, f"r_{k + 1}/r_{k} = {factor}, bound {bound}\n{out}"


# ---------------------------------------------------------------------------------------------
# 4. heat1d: convergence and the discretisation error
# ---------------------------------------------------------------------------------------------


def heat_errors(out: str) -> tuple[float, float]:
    final = [ln for ln in out.splitlines() if ln.startswith("  discretisation error at t = ")]
    worst = [ln for ln in out.splitlines() if ln.startswith("  max discretisation error over")]
    assert len(final) == 1 and len(worst) == 1, out
    return float(final[0].split(": ")[1].split()[0]), float(worst[0].split(": ")[1])


def sequential_backward_euler(ntime: int, nspace: int, tstop: float = 1.0) -> np.ndarray:
    """u at t = tstop: sin x stepped with (I - dt D_xx) u_new = u_old, dense solves."""
    h = math.pi / (nspace - 1)
    x = np.arange(nspace) * h
    m = nspace - 2
    r = (tstop / ntime) / h**2
    matrix = (1 + 2 * r) * np.eye(m) - r * np.eye(m, k=1) - r * np.eye(m, k=-1)
    u = np.sin(x[1:-1])
    for _ in range(ntime):
        u = np.linalg.solve(matrix, u)
    return np.concatenate([[0.0], u, [0.0]])


def test_heat1d_defaults_converge_identically_on_1_and_2_ranks(
    run_mpi, example_bin, tmp_path: Path
) -> None:
    outputs, files = {}, {}
    for np_ in (1, 2):
        files[np_] = tmp_path / f"u{np_}.txt"
        outputs[np_] = run_ok(run_mpi, np_, [example_bin("heat1d"), "-out", files[np_]])
    assert normalise(outputs[2]) == normalise(outputs[1])
    assert files[2].read_bytes() == files[1].read_bytes()

    run = parse_run(outputs[1])
    assert not run["max_iter_reached"] and not run["diverged"], outputs[1]
    assert run["residual_norm"] < 1e-8, outputs[1]  # the default tolerance
    assert run["levels"] == 3

    # the converged solution at t = 1 is sequential backward Euler's, and the printed error
    # is that of the discretisation (README: 3.148705e-03)
    rows = np.array(read_columns(files[1]), dtype=float)
    u_seq = sequential_backward_euler(64, 33)
    np.testing.assert_allclose(rows[:, 2], u_seq, rtol=0, atol=1e-8)
    np.testing.assert_allclose(rows[:, 3], np.exp(-1.0) * np.sin(rows[:, 1]), rtol=0, atol=1e-15)
    err_final, err_max = heat_errors(outputs[1])
    x = rows[:, 1]
    seq_err = np.max(np.abs(u_seq - np.exp(-1.0) * np.sin(x)))
    assert err_final == pytest.approx(seq_err, rel=1e-5)
    assert err_final == pytest.approx(3.148705e-03, rel=1e-6)
    assert err_max >= err_final


def test_heat1d_discretisation_error_order(run_mpi, example_bin) -> None:
    """dt/4 and h/2 divide the error of backward Euler + central differences by about 4."""
    grids = [(64, 33), (256, 65), (1024, 129)]
    errors = []
    for ntime, nspace in grids:
        outputs = {
            np_: run_ok(run_mpi, np_, [example_bin("heat1d"), "-ntime", ntime, "-nspace", nspace])
            for np_ in (1, 2)
        }
        assert normalise(outputs[2]) == normalise(outputs[1]), (ntime, nspace)
        run = parse_run(outputs[1])
        assert not run["max_iter_reached"] and run["residual_norm"] < 1e-8, outputs[1]
        errors.append(heat_errors(outputs[1]))
    for coarse, fine in zip(errors, errors[1:]):
        for which in (0, 1):  # at t = 1, and the largest over all time points
            ratio = coarse[which] / fine[which]
            assert 3.6 <= ratio <= 4.4, (errors, ratio)
