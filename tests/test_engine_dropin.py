"""The engine as a drop-in for XBraid: upstream's published results on the scalar ODE, and the
optional features checked against independent computations.

* upstream XBraid's iteration counts and final residuals for ``scalar_ode`` with FMG and skip,
  a user time grid, a user residual, a relaxation-only coarse grid and a periodic problem, on
  1, 2 and 3 ranks
  (the whole residual history bit-identical across rank counts);
* the converged solutions against the serial backward-Euler solution of the same problem
  (the non-uniform grid included); periodic problems: tests/c/test_periodic.c;
* ``heat1d -sc`` (spatial coarsening between time levels) against the run without it: the
  same fine-grid solution, rank-independent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_engine_examples import normalise, parse_run, read_columns, run_ok

RANKS = (1, 2, 3)

# upstream XBraid (ex-01-expanded, the scalar ODE u' = -u, backward Euler, tstop = ntime / 2)
UPSTREAM = {
    "fmg": (["-ntime", "64", "-ml", "4", "-fmg"], 6, "9.015955e-08"),
    "timegrid": (["-ntime", "64", "-ml", "3", "-tg", "2"], 6, "4.829899e-07"),
    "residual": (["-ntime", "64", "-ml", "3", "-res"], 8, "1.616427e-07"),
    "relax_only_cg": (["-ntime", "24", "-ml", "2", "-mi", "5", "-nuc", "1", "-relax_only_cg",
                       "-skip", "0"], 5, "1.032798e-07"),
    # starts from the periodic solution u = 0, which must stay exact (tests/c/test_periodic.c
    # solves a forced periodic problem from a guess that is not its solution)
    "periodic": (["-ntime", "64", "-ml", "3", "-periodic"], 2, "0.000000e+00"),
}


def serial_backward_euler(times: np.ndarray) -> np.ndarray:
    """u_i = u_{i-1} / (1 + dt_i), u_0 = 1: the discrete solution scalar_ode's MGRIT converges to."""
    u = np.empty(len(times))
    u[0] = 1.0
    for i in range(1, len(times)):
        u[i] = u[i - 1] / (1.0 + (times[i] - times[i - 1]))
    return u


@pytest.mark.parametrize("case", list(UPSTREAM))
def test_upstream_reference_results(run_mpi, example_bin, tmp_path: Path, case: str) -> None:
    args, iterations, final = UPSTREAM[case]
    outputs = {}
    for np_ in RANKS:
        out_file = tmp_path / f"u{np_}.txt"
        out = run_ok(run_mpi, np_, [example_bin("scalar_ode"), *args, "-out", out_file])
        run = parse_run(out)
        assert run["iterations"] == iterations, out
        assert run["residual_norm_text"] == final, out
        outputs[np_] = (normalise(out), out_file.read_text())
    # the residual history, the stats block and the solution do not depend on the rank count
    assert outputs[2] == outputs[1] and outputs[3] == outputs[1]

    rows = read_columns(tmp_path / "u1.txt")
    times = np.array([float(r[1]) for r in rows])
    u = np.array([float(r[2]) for r in rows])
    if case == "periodic":  # the unknowns are the points 0..ntime-1, all 0
        assert len(rows) == 64 and not u.any()
        return
    if case == "timegrid":  # the first ntime/2 steps are dt/2 = 1/4 long, the others 3/4
        expected_t = np.concatenate([np.arange(33) * 0.25, 8.0 + np.arange(1, 33) * 0.75])
        assert np.array_equal(times, expected_t)
    # converged to the tolerance 1e-6 on the residual: the serial solution to well within that
    assert np.max(np.abs(u - serial_backward_euler(times))) < 1e-6


def test_periodic_refuses_a_grid_it_cannot_coarsen(run_mpi, example_bin) -> None:
    rc, out = run_mpi(1, [example_bin("scalar_ode"), "-ntime", "30", "-ml", "3", "-periodic"])
    assert rc != 0
    assert "periodic: the 15 points of level 1 are not divisible by its cfactor 2" in out


def test_spatial_coarsening_reaches_the_fine_solution(run_mpi, example_bin, tmp_path: Path) -> None:
    """heat1d -sc coarsens space on every coarser time level; MGRIT still converges to the
    fine space-time solution, the same on any rank count."""
    base = [example_bin("heat1d"), "-ntime", "64", "-nspace", "33", "-tol", "1e-10"]
    plain = run_ok(run_mpi, 1, [*base, "-out", tmp_path / "plain.txt"])
    assert parse_run(plain)["residual_norm"] < 1e-10
    finals = {}
    for np_ in RANKS:
        out_file = tmp_path / f"sc{np_}.txt"
        out = run_ok(run_mpi, np_, [*base, "-sc", "-out", out_file])
        assert parse_run(out)["residual_norm"] < 1e-10, out
        finals[np_] = (normalise(out), out_file.read_text())
    assert finals[2] == finals[1] and finals[3] == finals[1]
    u_plain = np.array([float(r[2]) for r in read_columns(tmp_path / "plain.txt")])
    u_sc = np.array([float(r[2]) for r in read_columns(tmp_path / "sc1.txt")])
    assert np.max(np.abs(u_sc - u_plain)) < 1e-9


def test_temporal_refinement_reaches_the_refined_serial_solution(run_mpi, example_bin,
                                                                 tmp_path: Path) -> None:
    """scalar_ode -refine 2: the step asks for every fine step to be halved, twice (16 -> 64
    steps); MGRIT converges on the refined grid to its serial backward-Euler solution, with the
    same output and solution, bit for bit, on any number of ranks."""
    outputs = {}
    for np_ in RANKS:
        out_file = tmp_path / f"r{np_}.txt"
        out = run_ok(run_mpi, np_, [example_bin("scalar_ode"), "-ntime", "16", "-ml", "3",
                                    "-refine", "2", "-tol", "1e-10", "-out", out_file])
        run = parse_run(out)
        assert run["residual_norm"] < 1e-10, out
        assert "  number of refinements = 2\n" in out, out
        assert "  time steps = 64\n" in out, out
        outputs[np_] = (normalise(out), out_file.read_text())
    assert outputs[2] == outputs[1] and outputs[3] == outputs[1]
    rows = read_columns(tmp_path / "r1.txt")
    assert [int(r[0]) for r in rows] == list(range(65))
    times = np.array([float(r[1]) for r in rows])
    assert np.array_equal(times, np.arange(65) * 0.125)  # tstop = 16 / 2, 64 steps
    u = np.array([float(r[2]) for r in rows])
    assert np.max(np.abs(u - serial_backward_euler(times))) < 1e-10
