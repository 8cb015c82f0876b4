"""Layer-parallel propagation against the serial computation, in one process, and on 1-4 ranks
(tests/mpi/propagate_ranks.py)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MPI_SCRIPTS, run_propagate_ranks
from layerbraid.propagate import LAYER_PARALLEL, Propagator
from resnet_cases import batch, conv_net, dense_net, rough_params

TIGHT = {**LAYER_PARALLEL, "abs_tol": 1e-10, "max_iter": 60}


def nets():
    return {"dense": dense_net("tanh", depth=32, width=6, reg="all"),
            "conv": conv_net("smoothrelu", depth=16, reg="all")}


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("cfactor", [2, 4])
def test_converged_mgrit_forward_equals_serial_states(kind: str, cfactor: int) -> None:
    net = nets()[kind]
    x, _ = batch(net, size=9)
    params = net.init_params(2, weights="smooth")
    serial = Propagator(net).forward_states(params, x)
    mgrit = Propagator(net, options={**TIGHT, "cfactor": cfactor}).forward_states(params, x)
    assert sorted(serial) == sorted(mgrit) == list(range(net.depth + 1))
    for p in serial:
        np.testing.assert_allclose(mgrit[p], serial[p], rtol=0, atol=1e-9, err_msg=f"u_{p}")


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("nrelax", [0, 1])
def test_layer_parallel_gradient_equals_serial(kind: str, nrelax: int) -> None:
    net = nets()[kind]
    x, labels = batch(net, size=9)
    params = net.init_params(2, weights="smooth")
    serial = Propagator(net).loss_and_gradient(params, x, labels)
    parallel = Propagator(net, options={**TIGHT, "nrelax": nrelax}).loss_and_gradient(
        params, x, labels)
    assert parallel.forward.iterations > 0 and parallel.adjoint.iterations > 0
    assert parallel.forward.converged and parallel.adjoint.converged
    assert parallel.loss == pytest.approx(serial.loss, rel=1e-12, abs=1e-12)
    for key, g in serial.gradient.items():
        np.testing.assert_allclose(parallel.gradient[key], g, rtol=0, atol=1e-8, err_msg=key)


def test_one_level_is_exact_serial_propagation() -> None:
    net = nets()["dense"]
    x, labels = batch(net)
    params = rough_params(net)
    serial = Propagator(net).loss_and_gradient(params, x, labels)
    one_level = Propagator(net, options={**TIGHT, "max_levels": 1}).loss_and_gradient(
        params, x, labels)
    assert one_level.forward.iterations == 0
    assert one_level.loss == serial.loss
    for key, g in serial.gradient.items():
        np.testing.assert_array_equal(one_level.gradient[key], g)


def test_warm_start_reuses_the_last_solution() -> None:
    net = nets()["dense"]
    x, labels = batch(net)
    params = net.init_params(2, weights="smooth")
    options = {**LAYER_PARALLEL, "abs_tol": 1e-9}
    cold = Propagator(net, options=options)
    warm = Propagator(net, options=options, warm_start=True)
    first = warm.loss_and_gradient(params, x, labels)
    second = warm.loss_and_gradient(params, x, labels)
    again = cold.loss_and_gradient(params, x, labels)
    assert second.forward.iterations < again.forward.iterations
    assert second.adjoint.iterations < again.adjoint.iterations
    assert second.loss == pytest.approx(first.loss, abs=1e-9)


def test_one_shot_gradient_is_inexact_but_close() -> None:
    """Two cycles per solve, as in simultaneous training: not exact, but near the exact one."""
    net = nets()["dense"]
    x, labels = batch(net)
    params = net.init_params(2, weights="smooth")
    exact = Propagator(net).loss_and_gradient(params, x, labels).gradient
    options = {**LAYER_PARALLEL, "abs_tol": 0.0, "max_iter": 2}
    approx = Propagator(net, options=options).loss_and_gradient(params, x, labels)
    assert approx.forward.iterations == 2
    diff = np.sqrt(sum(np.sum((approx.gradient[k] - g) ** 2) for k, g in exact.items()))
    norm = np.sqrt(sum(np.sum(g ** 2) for g in exact.values()))
    assert 0 < diff < 0.1 * norm


def test_predict_and_loss_agree_with_loss_and_gradient() -> None:
    net = nets()["conv"]
    x, labels = batch(net)
    params = rough_params(net)
    prop = Propagator(net)
    full = prop.loss_and_gradient(params, x, labels)
    only = prop.loss(params, x, labels)
    assert only.gradient is None and only.adjoint is None
    assert only.loss == full.loss and only.accuracy == full.accuracy
    scores = prop.predict(params, x)
    assert scores.shape == (len(labels), net.classifier.classes)
    assert np.mean(scores.argmax(axis=1) == labels) == full.accuracy


def test_changing_batch_size_rebuilds_the_solvers() -> None:
    net = nets()["dense"]
    prop = Propagator(net, options=LAYER_PARALLEL, warm_start=True)
    params = net.init_params(0, weights="smooth")
    for size in (5, 8, 5):
        x, labels = batch(net, size=size)
        assert prop.loss_and_gradient(params, x, labels).forward.converged


@pytest.fixture(scope="module")
def one_rank(run_mpi, python_exe, tmp_path_factory) -> dict[str, np.ndarray]:
    return run_propagate_ranks(run_mpi, python_exe, 1, tmp_path_factory.mktemp("ranks") / "np1.npz")


def test_one_rank_run_matches_this_process(one_rank) -> None:
    net = nets()["dense"]
    x, labels = batch(net, size=9)
    params = net.init_params(2, weights="smooth")
    here = Propagator(net, options=TIGHT).loss_and_gradient(params, x, labels)
    assert float(one_rank["dense/mgrit/loss"]) == here.loss
    np.testing.assert_array_equal(one_rank["dense/mgrit/layers.5.weight"],
                                  here.gradient["layers.5.weight"])


@pytest.mark.parametrize("nprocs", [2, 3, 4])
def test_results_do_not_depend_on_the_number_of_ranks(run_mpi, python_exe, one_rank,
                                                      nprocs: int, tmp_path) -> None:
    """Serial and layer-parallel losses, gradients and residual histories, gathered on rank
    0, are bit-identical for every rank count."""
    results = run_propagate_ranks(run_mpi, python_exe, nprocs, tmp_path / "out.npz")
    assert sorted(results) == sorted(one_rank)
    for key, value in one_rank.items():
        np.testing.assert_array_equal(results[key], value, err_msg=key)


def test_propagation_example_matches_serial_on_two_ranks(run_mpi, python_exe) -> None:
    example = MPI_SCRIPTS.parent.parent / "examples" / "python" / "resnet_propagation.py"
    code, text = run_mpi(2, [python_exe, example, "--depth", "64", "--batch", "32"])
    assert code == 0, text
    line = next(s for s in text.splitlines() if s.startswith("largest gradient difference"))
    assert float(line.split()[-1]) < 1e-8
    assert "2 rank(s)" in text
