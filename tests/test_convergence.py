"""MGRIT convergence of the forward and adjoint propagation (doc/propagation_convergence.md).

The problem, the solver options and the definitions of the factors are those of
benchmarks/convergence/run.py, imported from there: a dense ResNet-ODE of width 16, tanh,
batch 64, T = 4, cf 4, FCF V-cycles over as many levels as min_coarse = 2 allows, solved to
rel_tol 1e-12. "mean factor" is the geometric mean of r_(k+1)/r_k until r_k <= 1e-12 r_1,
"worst factor" the largest of those ratios.

The bounds come from the table in the doc (smooth weights, T = 4, cf 4, N = 64 / 256 / 1024):
forward mean 1.6e-2 / 2.1e-2 / 2.2e-2, worst 0.132 / 0.134 / 0.137; adjoint mean
1.8e-2 / 2.5e-2 / 2.5e-2, worst 0.144 / 0.149 / 0.152; 9 cycles to 1e-10 for every N. The test
asks for worst < 0.2 and mean < 0.05 (about 1.3x and 2x headroom), growth from N = 64 to
N = 1024 below 1.5x for both (measured: 1.04x worst, 1.35-1.4x mean, the mean at N = 64 being
lowered by its short grid), and no more than one extra cycle to 1e-10. With random weights the
same solves have mean factors 0.11-0.12 and worst factors 0.32-0.47 (N >= 256): the smooth
bounds fail for them, so they do discriminate.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks" / "convergence" / "run.py"

T, CF = 4.0, 4
DEPTHS = (64, 256, 1024)
WORST_BOUND, MEAN_BOUND, GROWTH_BOUND = 0.2, 0.05, 1.5


def _load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("convergence_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> Any:
    return _load_bench()


@pytest.fixture(scope="module")
def smooth_cases(bench: Any) -> dict[int, dict[str, Any]]:
    return {N: bench.run_case(N, CF, T, "smooth") for N in DEPTHS}


def test_factor_definitions(bench: Any) -> None:
    history = [None, 2.0, 0.2, 0.01, 1e-6, 1e-12, 1e-13]
    f = bench.factors(history)
    # ratios up to the first r_k <= 1e-12 r_1 = 2e-12, i.e. r_5 = 1e-12
    assert f["ratios"] == pytest.approx([0.1, 0.05, 1e-4, 1e-6])
    assert f["mean"] == pytest.approx((1e-12 / 2.0) ** (1 / 4))
    assert f["worst"] == pytest.approx(0.1)
    assert bench.iterations_to(history, 1e-10) == 6   # r_5 <= 2e-10: the engine reports 6
    assert bench.iterations_to(history, 1e-14) is None
    # a residual that never gets there: every ratio counts
    g = bench.factors([None, 1.0, 0.5, 0.25])
    assert g["mean"] == pytest.approx(0.5) and g["worst"] == pytest.approx(0.5)


@pytest.mark.parametrize("solve", ["forward", "adjoint"])
def test_smooth_factors_bounded(smooth_cases: dict[int, dict[str, Any]], solve: str) -> None:
    summary = {N: (c[solve]["mean_factor"], c[solve]["worst_factor"],
                   c[solve]["iterations_to_1e-10"]) for N, c in smooth_cases.items()}
    for N, (mean, worst, iters) in summary.items():
        assert smooth_cases[N][solve]["converged"], (N, summary)
        assert iters is not None, (N, summary)
        assert 0 < worst < WORST_BOUND, (N, summary)
        assert 0 < mean < MEAN_BOUND, (N, summary)
    lo, hi = summary[DEPTHS[0]], summary[DEPTHS[-1]]
    assert hi[0] < GROWTH_BOUND * lo[0], summary
    assert hi[1] < GROWTH_BOUND * lo[1], summary
    assert hi[2] <= lo[2] + 1, summary   # iterations to 1e-10 do not grow with N either


def test_converged_mgrit_equals_serial(smooth_cases: dict[int, dict[str, Any]]) -> None:
    for N, c in smooth_cases.items():
        assert c["loss_diff"] < 1e-9, (N, c["loss"], c["loss_serial"])
        assert c["grad_max_abs_diff"] < 1e-8, (N, c["grad_max_abs_diff"], c["grad_max_abs"])
        assert c["grad_max_abs"] > 1e-3   # the gradient compared is not trivially zero


def test_random_weights_factor_reported(bench: Any) -> None:
    c = bench.run_case(256, CF, T, "random")
    for solve in ("forward", "adjoint"):
        s = c[solve]
        assert s["converged"], s["residual_history"]
        assert s["iterations_to_1e-10"] is not None
        assert math.isfinite(s["mean_factor"]) and 0 < s["mean_factor"] < 1
        assert math.isfinite(s["worst_factor"]) and 0 < s["worst_factor"] < 1
        print(f"random weights, N=256, T={T:g}, cf={CF}, {solve}: mean factor "
              f"{s['mean_factor']:.3g}, worst {s['worst_factor']:.3g}, "
              f"{s['iterations_to_1e-10']} cycles to 1e-10")
    assert c["loss_diff"] < 1e-9 and c["grad_max_abs_diff"] < 1e-8
