"""MGRIT over training iterations (layerbraid.methods.iterations): the acceptance checks of the
design notes.

B-1 converged MGRIT reproduces the serial gradient-descent trajectory of the XOR network;
B-2 two-level MGRIT is exact after N/m (F) or N/(2m) (FCF) cycles after the skipped first one;
B-3 the iterations to 1e-10 do not grow with the number of training steps;
B-4 on a quadratic, the measured convergence rate obeys (and attains) the two-level bound, and
    a configuration beyond the bound diverges;
B-5 unstable coarse learning rates are refused; capped, five levels converge;
B-6 SGD on a ResNet, batches keyed by step: MGRIT equals serial SGD, on 1 and 2 ranks alike;
B-7 the work counters and the critical-path cost model agree with hand counts;
and bad input raises ValueError naming the value.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from conftest import MPI_SCRIPTS
from layerbraid import data, nn
from layerbraid.methods.iterations import (AUTO_CAP_SAFETY, IterationResult,
                                           MGRITOverIterations, Quadratic, ResNetProblem,
                                           XorNetwork, critical_path, estimate_lambda_max,
                                           level_spans, serial_trajectory, two_level_bound)

COMM = MPI.COMM_SELF
XOR = XorNetwork()
W0 = XOR.initial_weights()
SIZES = (256, 1024, 4096)
SPECTRUM = np.geomspace(1e-3, 1.0, 20)


def max_error(result: IterationResult, serial: list[np.ndarray]) -> float:
    """The largest entry of w_i(MGRIT) - w_i(serial) over the whole trajectory."""
    assert sorted(result.trajectory) == list(range(len(serial)))
    return max(float(np.abs(result.trajectory[i] - w).max()) for i, w in enumerate(serial))


@lru_cache(maxsize=None)
def xor_run(steps: int, lr: float, nrelax: int) -> tuple[IterationResult, list[np.ndarray]]:
    """Two levels, m = 4, to 1e-10, and the serial loop (shared by B-1, B-3 and B-7)."""
    run = MGRITOverIterations(XOR, W0, steps, lr, COMM, nrelax=nrelax)
    return run.solve(), run.serial()


# ---- B-1 ----

@pytest.mark.parametrize("steps", SIZES)
def test_converged_mgrit_is_the_serial_training_trajectory(steps: int) -> None:
    result, serial = xor_run(steps, 0.5, 1)
    assert result.converged and result.nlevels == 2
    assert max_error(result, serial) <= 1e-10
    np.testing.assert_array_equal(result.final_weights, result.trajectory[steps])
    assert XOR.loss(serial[-1], steps) < XOR.loss(serial[0], 0)  # it does train


def test_a_ragged_last_interval_and_repeated_solves() -> None:
    run = MGRITOverIterations(XOR, W0, 37, 0.5, COMM)  # 37 = 9 * 4 + 1
    first, again = run.solve(), run.solve()
    assert first.converged and max_error(first, run.serial()) <= 1e-10
    assert first.iterations == again.iterations
    for i, w in first.trajectory.items():
        np.testing.assert_array_equal(w, again.trajectory[i])


# ---- B-2 ----

@pytest.mark.parametrize("nrelax,cycles", [(0, 32 // 4), (1, 32 // 8)])
def test_two_level_mgrit_terminates_exactly(nrelax: int, cycles: int) -> None:
    # The first iteration (skip) only solves the coarse level from w_0; after it, each
    # F-relaxation cycle makes one more coarse interval exact, each FCF cycle two.
    serial = serial_trajectory(XOR, W0, 32, 0.5)

    def error_after(iterations: int) -> float:
        result = MGRITOverIterations(XOR, W0, 32, 0.5, COMM, nrelax=nrelax, abs_tol=0.0,
                                     max_iter=iterations).solve()
        assert result.iterations == iterations
        return max_error(result, serial)

    assert error_after(1 + cycles) <= 1e-13
    assert error_after(cycles) > 1e-9  # one cycle earlier it is not exact yet


# ---- B-3 ----

@pytest.mark.parametrize("lr,nrelax", [(0.5, 1), (1.0, 1), (0.5, 0)])
def test_iterations_do_not_grow_with_the_number_of_steps(lr: float, nrelax: int) -> None:
    results = [xor_run(steps, lr, nrelax)[0] for steps in SIZES]
    assert all(r.converged for r in results)
    counts = [r.iterations for r in results]
    assert max(counts) - min(counts) <= 1, counts
    assert max(counts) < SIZES[0] // 8  # far below finite termination


# ---- B-4 ----

def quadratic() -> tuple[Quadratic, np.ndarray]:
    problem = Quadratic.with_spectrum(SPECTRUM, seed=3)
    return problem, np.random.default_rng(4).standard_normal(problem.size)


def rates(result: IterationResult) -> list[float]:
    known = [r for r in result.residual_history if r is not None]
    return [b / a for a, b in zip(known, known[1:])]


@pytest.mark.parametrize("nrelax,lr", [(0, 0.25), (1, 0.25), (1, 0.45)])
def test_linear_convergence_obeys_the_two_level_bound(nrelax: int, lr: float) -> None:
    problem, w0 = quadratic()
    np.testing.assert_allclose(problem.eigenvalues, SPECTRUM, rtol=1e-10)
    bound = two_level_bound(problem.eigenvalues, lr, 4, nrelax)
    assert bound < 1
    result = MGRITOverIterations(problem, w0, 512, lr, COMM, nrelax=nrelax).solve()
    assert result.converged
    worst = max(rates(result))
    assert worst <= 1.05 * bound
    assert worst >= 0.8 * bound  # the bound is sharp: the slowest mode shows


def test_beyond_the_bound_mgrit_diverges() -> None:
    problem, w0 = quadratic()
    lr = 1.9 / 16  # 16 lr a_max = 1.9: the coarse step is stable, so the guard lets it pass
    bound = two_level_bound(problem.eigenvalues, lr, 16, 0)
    assert 1 < bound < math.inf
    result = MGRITOverIterations(problem, w0, 1024, lr, COMM, cfactor=16, nrelax=0,
                                 max_iter=8).solve()
    assert not result.converged
    assert all(r > 1 for r in rates(result))
    # an unstable coarse step (|mu| >= 1 for a_max) has no finite bound
    assert two_level_bound(problem.eigenvalues, lr, 16, 0, coarse_lr=2.1 / problem.lambda_max) \
        == math.inf


# ---- B-5 ----

def test_unstable_coarse_levels_are_refused_naming_the_fixes() -> None:
    lam = estimate_lambda_max(XOR, W0)
    assert 16 * lam >= 2 > 4 * lam  # uncapped, level 2 (16 steps, lr 16) is the first unstable
    with pytest.raises(ValueError, match=r"coarse level 2 \(steps over 16 iterations\) uses "
                                         r"learning rate 16 .*coarse_lr_cap.*max_levels=2"):
        MGRITOverIterations(XOR, W0, 1024, 1.0, COMM, max_levels=5)
    with pytest.warns(RuntimeWarning, match="coarse level 2"):
        MGRITOverIterations(XOR, W0, 1024, 1.0, COMM, max_levels=5, on_unstable="warn")
    with pytest.raises(ValueError, match="the training step itself is unstable"):
        MGRITOverIterations(XOR, W0, 64, 1.0, COMM, lambda_max=2.5)


def test_capped_coarse_learning_rate_converges_on_five_levels() -> None:
    run = MGRITOverIterations(XOR, W0, 1024, 1.0, COMM, max_levels=5, coarse_lr_cap=4)
    assert run.spans == [1, 4, 16, 64, 256]
    assert run.coarse_lrs == (1.0, 4.0, 4.0, 4.0, 4.0)
    result = run.solve()
    assert result.nlevels == 5 and result.converged
    assert result.iterations <= 20
    assert max_error(result, run.serial()) <= 1e-10


def test_auto_cap_keeps_a_safety_margin_and_stays_off_when_not_needed() -> None:
    run = MGRITOverIterations(XOR, W0, 1024, 1.0, COMM, max_levels=5, coarse_lr_cap="auto")
    assert run.coarse_lr_cap * run.lr * run.lambda_max == pytest.approx(2 * AUTO_CAP_SAFETY)
    assert MGRITOverIterations(XOR, W0, 1024, 0.5, COMM, coarse_lr_cap="auto").coarse_lr_cap \
        is None


def test_lambda_max_estimate_matches_the_hessian() -> None:
    # the XOR Hessian in full, by central differences of the gradient
    h = 1e-5
    columns = [(XOR.gradient(W0 + h * e, 0) - XOR.gradient(W0 - h * e, 0)) / (2 * h)
               for e in np.eye(XOR.size)]
    exact = np.linalg.eigvalsh(0.5 * (np.array(columns) + np.array(columns).T))[-1]
    assert estimate_lambda_max(XOR, W0) == pytest.approx(exact, rel=1e-3)

    class Opaque:  # a quadratic the estimator cannot see through, with a negative dominant
        size = 5
        A = np.diag([-6.0, -1.0, 0.5, 1.0, 3.0])

        def gradient(self, w: np.ndarray, step: int) -> np.ndarray:
            return self.A @ w

        def loss(self, w: np.ndarray, step: int) -> float:
            return float(0.5 * w @ self.A @ w)

    assert estimate_lambda_max(Opaque(), np.ones(5)) == pytest.approx(3.0, rel=1e-3)


def test_level_spans_are_the_engines_levels() -> None:
    assert level_spans(1024, 4, 5, 2) == [1, 4, 16, 64, 256]
    assert level_spans(1024, 4, 30, 2) == [1, 4, 16, 64, 256]  # 4 // 4 < min_coarse
    assert level_spans(7, 4, 5, 2) == [1]
    result = MGRITOverIterations(XOR, W0, 100, 0.1, COMM, max_levels=9, cfactor=3).solve()
    assert result.nlevels == len(level_spans(100, 3, 9, 2)) == 4


# ---- B-6 ----

def resnet_problem(seed: int = 1) -> ResNetProblem:
    return ResNetProblem(nn.ResNet.dense(2, 4, 5, 4, activation="tanh"), data.peaks(200, 50),
                         batch_size=32, seed=seed)


def test_sgd_over_iterations_equals_serial_sgd() -> None:
    problem = resnet_problem()
    batch = problem.batch(7)
    assert len(set(batch.tolist())) == 32
    np.testing.assert_array_equal(batch, resnet_problem().batch(7))  # keyed by step alone
    assert not np.array_equal(batch, problem.batch(8))
    w0 = problem.initial_weights()
    run = MGRITOverIterations(problem, w0, 64, 0.25, COMM)
    result, serial = run.solve(), run.serial()
    assert result.converged and max_error(result, serial) <= 1e-10
    # the same schedule from a fresh problem object gives the same run; another seed does not
    np.testing.assert_array_equal(serial[-1],
                                  serial_trajectory(resnet_problem(), w0, 64, 0.25)[-1])
    assert not np.allclose(serial[-1], serial_trajectory(resnet_problem(2), w0, 64, 0.25)[-1])


def test_one_and_two_ranks_give_identical_runs(run_mpi, python_exe, tmp_path) -> None:
    files, summaries = {}, {}
    for nprocs in (1, 2):
        out = tmp_path / f"np{nprocs}.npz"
        code, text = run_mpi(nprocs, [python_exe, MPI_SCRIPTS / "iterations_ranks.py", out],
                             timeout=240)
        assert code == 0, text
        summaries[nprocs] = json.loads(text.strip().splitlines()[-1])
        with np.load(out) as arrays:
            files[nprocs] = dict(arrays)
    assert summaries[2]["nprocs"] == 2
    for name in ("xor", "resnet"):
        one, two = summaries[1][name], summaries[2][name]
        assert one["converged"] and one["error"] <= 1e-10 and one["final_is_last"]
        assert two["final_is_last"] and one["work"] == two["work"]
    assert sorted(files[1]) == sorted(files[2])
    for key, value in files[1].items():
        np.testing.assert_array_equal(value, files[2][key], err_msg=key)  # bit for bit


# ---- B-7 ----

@pytest.mark.parametrize("nrelax", [0, 1])
def test_work_counters_count_every_step(nrelax: int) -> None:
    n, m, cycles = 32, 4, 3
    result = MGRITOverIterations(XOR, W0, n, 0.5, COMM, nrelax=nrelax, abs_tol=0.0,
                                 max_iter=cycles).solve()
    # By hand: the skipped first cycle is the coarse solve (n/m coarse steps). Every later
    # cycle makes nrelax FC-sweeps and the restriction's sweep over the n fine steps, n/m
    # coarse steps for the FAS right-hand side and n/m for the coarse solve. The final F-sweep
    # that hands out the trajectory steps to the n - n/m F-points.
    fine = (cycles - 1) * (nrelax + 1) * n + (n - n // m)
    coarse = n // m + (cycles - 1) * 2 * (n // m)
    assert result.work == (fine, coarse)
    assert result.total_work == fine + coarse


def test_cost_model_matches_a_hand_count() -> None:
    cost = critical_path(4096, 4, 2, 1, iterations=10)
    # one V-cycle: FC-sweep (4) + restriction sweep (4) + one coarse FAS step + coarse solve
    assert cost.cycle == 4 + 4 + 1 + 1024
    assert (cost.first_cycle, cost.final) == (1024, 3)  # skip: coarse solve only; F-sweep
    assert cost.total == 1024 + 9 * 1033 + 3
    assert cost.ideal_speedup == pytest.approx(4096 / 10324)
    three = critical_path(4096, 4, 3, 0, iterations=12)
    # F-relaxation on levels 0 and 1, the F-points of level 1 after its correction, 256 steps
    assert three.cycle == 2 * (4 + 1) + 3 + 256 and three.first_cycle == 256 + 3
    assert critical_path(5, 4, 1, 1, iterations=0).ideal_speedup == 1.0

    result = xor_run(4096, 0.5, 1)[0]
    assert result.cost == critical_path(4096, 4, 2, 1, result.iterations)
    # two levels cannot beat the serial loop: every cycle solves the coarse level serially
    assert result.cost.ideal_speedup < 1


# ---- the example ----

def test_example_prints_the_comparison_and_refuses_unstable_settings(capsys) -> None:
    path = Path(__file__).resolve().parent.parent / "examples" / "python" / \
        "mgrit_over_iterations.py"
    spec = importlib.util.spec_from_file_location("mgrit_over_iterations_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--steps", "64"]) == 0
    out = capsys.readouterr().out
    assert float(re.search(r"over all steps: (\S+)", out).group(1)) <= 1e-10
    assert "ideal speedup" in out and "slower than the plain training loop" in out
    assert example.main(["--steps", "1024", "--levels", "5", "--lr", "1"]) == 2
    assert "coarse_lr_cap" in capsys.readouterr().err


# ---- bad input ----

@pytest.mark.parametrize("change,match", [
    ({"steps": 0}, r"steps=0 must be an int >= 1"),
    ({"steps": 8.0}, r"steps=8.0 must be an int"),
    ({"lr": 0.0}, r"lr=0.0 must be a finite float > 0"),
    ({"lr": float("nan")}, r"lr=nan must be"),
    ({"w0": np.zeros(15)}, r"w0 has shape \(15,\).*problem.size = 16"),
    ({"w0": np.zeros((4, 4))}, r"w0 has shape \(4, 4\)"),
    ({"w0": np.zeros(16, dtype=int)}, r"1-D float array"),
    ({"w0": np.full(16, np.nan)}, r"w0 holds NaN"),
    ({"coarse_lr_cap": 0.5}, r"coarse_lr_cap=0.5 is not supported.*number >= 1.*'auto'"),
    ({"coarse_lr_cap": "max"}, r"coarse_lr_cap='max' is not supported"),
    ({"on_unstable": "ignore"}, r"on_unstable='ignore' is not supported"),
    ({"cfactor": 1}, r"cfactor=1 must be an int >= 2"),
    ({"nrelax": -1}, r"nrelax=-1 must be an int >= 0"),
    ({"max_iter": 0}, r"max_iter=0 is out of range"),
    ({"lambda_max": math.inf}, r"lambda_max=inf must be a finite float"),
])
def test_bad_input_raises_value_error(change: dict, match: str) -> None:
    args = {"w0": W0, "steps": 64, "lr": 0.5, **change}
    kwargs = {k: v for k, v in change.items() if k not in ("w0", "steps", "lr")}
    with pytest.raises(ValueError, match=match):
        MGRITOverIterations(XOR, args["w0"], args["steps"], args["lr"], COMM, **kwargs)


def test_bad_problems_raise() -> None:
    with pytest.raises(TypeError, match="needs a size attribute"):
        MGRITOverIterations(object(), W0, 8, 0.5, COMM)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="A must be symmetric"):
        Quadratic(np.triu(np.ones((3, 3))), np.ones(3))
    with pytest.raises(ValueError, match=r"b has shape \(2,\); it must be \(3,\)"):
        Quadratic(np.eye(3), np.ones(2))
    net, dataset = nn.ResNet.dense(2, 4, 5, 4), data.peaks(50, 10)
    with pytest.raises(ValueError, match=r"batch_size=0 must be None .* \[1, 50\]"):
        ResNetProblem(net, dataset, batch_size=0)
    with pytest.raises(ValueError, match="the network takes"):
        ResNetProblem(nn.ResNet.dense(3, 4, 5, 4), dataset)
    with pytest.raises(ValueError, match="nrelax=2: the bound is for 0"):
        two_level_bound(SPECTRUM, 0.1, 4, 2)
