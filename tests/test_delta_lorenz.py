"""Delta correction and Lyapunov estimation on the chaotic Lorenz system (build/examples/c/lorenz).

* Delta correction (rank 3, the state's dimension) needs fewer MGRIT iterations than plain
  MGRIT at the same settings, on two and three levels;
* the converged solution is the serial RK4 solution (Delta changes only the coarse grid);
* the Lyapunov exponents estimated along a converged trajectory of 30.72 time units are within
  5 % of the largest published one (0.906) and within 0.1 of the second (0);
* the output and the solution file are the same bits on 1, 2 and 3 ranks;
* braid_TestInnerProd and braid_TestDelta pass on the example's callbacks.

The example is built by ``make examples`` (the tests skip when it is not).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

LARGEST = 0.906  # the Lorenz system's largest Lyapunov exponent (sigma 10, rho 28, beta 8/3)


def run(run_mpi, np_: int, argv: list) -> str:
    code, out = run_mpi(np_, [str(a) for a in argv], timeout=120)
    assert code == 0, f"mpiexec -n {np_} {' '.join(map(str, argv))} exited {code}:\n{out}"
    return out


def iterations(out: str) -> int:
    return int(re.search(r"Iterations = (\d+)", out).group(1))


def serial_difference(out: str) -> float:
    return float(re.search(r"max \|u - u_serial\| = (\S+)", out).group(1))


def exponents(out: str) -> list[float]:
    line = re.search(r"Lyapunov exponents \(average of \d+ local ones\):(.*)", out).group(1)
    return [float(x) for x in line.split()]


@pytest.mark.parametrize(
    "grid",
    [
        ["-ml", "2", "-cf", "4", "-ntime", "3072", "-tstop", "30.72"],
        ["-ml", "3", "-cf", "4", "-ntime", "8192", "-tstop", "20.48"],
    ],
    ids=["2 levels", "3 levels"],
)
def test_delta_needs_fewer_iterations(run_mpi, example_bin, grid):
    lorenz = example_bin("lorenz")
    plain = run(run_mpi, 2, [lorenz, *grid, "-rank", "0", "-mi", "100"])
    delta = run(run_mpi, 2, [lorenz, *grid, "-rank", "3", "-mi", "100"])
    print(f"{' '.join(grid)}: {iterations(plain)} iterations without Delta, "
          f"{iterations(delta)} with rank 3")
    assert "Max. iterations reached" not in delta
    assert iterations(delta) < iterations(plain)


def test_converged_solution_is_serial(run_mpi, example_bin):
    lorenz = example_bin("lorenz")
    for rank in ("0", "2", "3"):
        out = run(run_mpi, 2, [lorenz, "-rank", rank, "-ml", "3", "-ntime", "4096",
                               "-tstop", "10.24", "-tol", "1e-10"])
        assert "Max. iterations reached" not in out
        # the residual tolerance, grown by the trajectory's chaos over 10 time units
        assert serial_difference(out) < 1e-6, out


def test_lyapunov_exponents(run_mpi, example_bin):
    out = run(run_mpi, 2, [example_bin("lorenz"), "-rank", "3", "-lyap", "-ntime", "3072",
                           "-tstop", "30.72", "-mi", "100"])
    assert "Max. iterations reached" not in out
    first, second, _ = exponents(out)
    print(f"estimated exponents {first} {second}")
    assert abs(first - LARGEST) < 0.05 * LARGEST
    assert abs(second) < 0.1


@pytest.mark.parametrize(
    "options",
    [["-rank", "3", "-lyap"], ["-rank", "2", "-lyap", "-relaxlyap", "-ml", "3", "-ntime", "4096"],
     ["-rank", "1", "-ml", "4", "-cf", "2", "-defer-lvl", "2", "-defer-iter", "1"]],
    ids=["rank 3 lyap", "rank 2 relax lyap 3 levels", "rank 1 deferred 4 levels"],
)
def test_same_bits_on_1_2_3_ranks(run_mpi, example_bin, tmp_path: Path, options):
    lorenz = example_bin("lorenz")
    runs = {}
    for np_ in (1, 2, 3):
        out_file = tmp_path / f"solution{np_}.txt"
        out = run(run_mpi, np_, [lorenz, *options, "-tstop", "10.24", "-out", out_file])
        # the residual lines carry the wall time; everything else must match
        runs[np_] = (re.sub(r"wall time = \S+", "", out), out_file.read_bytes())
    assert runs[1] == runs[2] == runs[3]


def test_wrapper_tests_pass(run_mpi, example_bin):
    out = run(run_mpi, 1, [example_bin("lorenz"), "-test"])
    assert "Finished braid_TestInnerProd: all tests passed successfully" in out
    assert "Finished braid_TestDelta: all tests passed successfully" in out
