"""The piggy-back gradient (one drive of the engine's adjoint iteration,
``Propagator(gradient_method="piggy-back")``) against the two-solve path, exact
backpropagation and finite differences, in one process and on 1-4 ranks
(tests/mpi/piggyback_ranks.py), and its one-shot use in the trainer.

Tolerance of "converged == two-solve": 1e-8 absolute on every gradient entry (the entries are
of order 1e-3 .. 1). Both solves stop at residuals below 1e-12; the gradient error of an
iteration that stops there is of the order of the residuals times the (moderate) Lipschitz
constants of these short networks, so 1e-8 leaves a margin of several orders of magnitude for
every BLAS kernel and none for a wrong term (a missing coarse-step, classifier or opening
contribution is of the size of the gradient itself).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MPI_SCRIPTS
from layerbraid import data, nn
from layerbraid.propagate import Propagator
from layerbraid.train import TrainConfig, Trainer
from resnet_cases import batch, conv_net, dense_net, rough_params

MGRIT = {"max_levels": 10, "cfactor": 4, "min_coarse": 2, "nrelax": 1}
TIGHT = {**MGRIT, "abs_tol": 1e-12, "max_iter": 60}


def nets():
    return {"dense": dense_net("tanh", depth=32, width=6, reg="all"),
            "conv": conv_net("smoothrelu", depth=16, reg="all")}


def gradient_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("cfactor", [2, 4])
def test_converged_piggy_back_equals_two_solve_and_serial(kind: str, cfactor: int) -> None:
    net = nets()[kind]
    x, labels = batch(net, size=9)
    params = net.init_params(2, weights="smooth")
    options = {**TIGHT, "cfactor": cfactor}
    serial = Propagator(net).loss_and_gradient(params, x, labels)
    two = Propagator(net, options=options).loss_and_gradient(params, x, labels)
    piggy = Propagator(net, options=options, gradient_method="piggy-back").loss_and_gradient(
        params, x, labels)
    assert piggy.forward.converged and piggy.forward.iterations > 1
    assert piggy.forward.nlevels > 1
    assert piggy.adjoint.residual_history == piggy.forward.rnorms_adjoint
    assert piggy.adjoint.residual < 1e-12
    assert piggy.loss == pytest.approx(two.loss, rel=1e-12, abs=0)
    assert piggy.loss == pytest.approx(serial.loss, rel=1e-12, abs=0)
    assert piggy.accuracy == serial.accuracy
    assert gradient_difference(piggy.gradient, two.gradient) < 1e-8
    assert gradient_difference(piggy.gradient, serial.gradient) < 1e-8


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_one_level_piggy_back_is_exact_backpropagation_bitwise(kind: str) -> None:
    """max_levels=1 (the default options): one forward sweep and the backward one in the same
    drive, the same operations as the two-solve serial path."""
    net = nets()[kind]
    x, labels = batch(net)
    params = rough_params(net)
    serial = Propagator(net).loss_and_gradient(params, x, labels)
    piggy = Propagator(net, gradient_method="piggy-back").loss_and_gradient(params, x, labels)
    assert piggy.forward.nlevels == 1 and piggy.forward.iterations == 0
    assert piggy.loss == serial.loss and piggy.accuracy == serial.accuracy
    assert sorted(piggy.gradient) == sorted(serial.gradient)
    for key, g in serial.gradient.items():
        np.testing.assert_array_equal(piggy.gradient[key], g, err_msg=key)


def test_piggy_back_gradient_equals_finite_differences() -> None:
    """Every parameter of a tiny network, central differences of the exact loss."""
    net = dense_net("tanh", depth=4, width=3, reg="all")
    x, labels = batch(net, size=5)
    params = rough_params(net)
    piggy = Propagator(net, options={"max_levels": 2, "cfactor": 2, "abs_tol": 1e-13,
                                     "max_iter": 40}, gradient_method="piggy-back")
    gradient = piggy.loss_and_gradient(params, x, labels).gradient
    exact = Propagator(net)
    eps = 1e-6
    for key, value in params.items():
        fd = np.empty_like(value)
        for i in np.ndindex(value.shape):
            shifted = {k: v.copy() for k, v in params.items()}
            shifted[key][i] = value[i] + eps
            up = exact.loss(shifted, x, labels).loss
            shifted[key][i] = value[i] - eps
            down = exact.loss(shifted, x, labels).loss
            fd[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(gradient[key], fd, rtol=1e-6, atol=1e-8, err_msg=key)


def test_capped_warm_started_drives_converge_to_the_exact_gradient() -> None:
    """One-shot use: two cycles per call, state and adjoint kept between calls. Repeated calls
    with the same parameters continue the iteration towards the exact gradient."""
    net = nets()["dense"]
    x, labels = batch(net)
    params = net.init_params(2, weights="smooth")
    exact = Propagator(net).loss_and_gradient(params, x, labels).gradient
    prop = Propagator(net, options={**MGRIT, "abs_tol": 0.0, "max_iter": 2}, warm_start=True,
                      gradient_method="piggy-back")
    errors = []
    for _ in range(6):
        ev = prop.loss_and_gradient(params, x, labels)
        assert ev.forward.iterations == 2 and not ev.forward.converged
        errors.append(gradient_difference(ev.gradient, exact))
    assert errors[0] > 1e-6
    assert errors[-1] < 1e-3 * errors[0]
    cold = Propagator(net, options={**MGRIT, "abs_tol": 0.0, "max_iter": 2},
                      gradient_method="piggy-back").loss_and_gradient(params, x, labels)
    assert gradient_difference(cold.gradient, exact) == errors[0]  # no warm start: a fresh drive


def test_loss_and_predict_are_forward_solves() -> None:
    net = nets()["conv"]
    x, labels = batch(net)
    params = rough_params(net)
    prop = Propagator(net, options=TIGHT, gradient_method="piggy-back")
    full = prop.loss_and_gradient(params, x, labels)
    only = prop.loss(params, x, labels)
    assert only.gradient is None and only.adjoint is None
    assert only.loss == pytest.approx(full.loss, rel=1e-12, abs=0)
    assert np.mean(prop.predict(params, x).argmax(axis=1) == labels) == full.accuracy


@pytest.mark.parametrize("kwargs, message", [
    ({"gradient_method": "piggyback"}, r"gradient_method='piggyback' is not supported; use "
                                       r"one of 'two-solve', 'piggy-back'"),
    ({"gradient_method": "piggy-back", "backend": "native"},
     r"not available with backend='native'"),
    ({"gradient_method": "piggy-back", "options": MGRIT,
      "adjoint_options": {"cfactor": 2}}, r"adjoint_options may set only the adjoint's abs_tol "
                                          r"or rel_tol, not cfactor"),
])
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Propagator(nets()["dense"], **kwargs)


def test_adjoint_states_need_the_two_solve_method() -> None:
    net = nets()["dense"]
    x, labels = batch(net)
    prop = Propagator(net, options=MGRIT, gradient_method="piggy-back")
    with pytest.raises(ValueError, match="adjoint_states needs gradient_method='two-solve'"):
        prop.adjoint_states(net.init_params(0), x, labels)


def test_trainer_config_checks_the_gradient_method() -> None:
    with pytest.raises(ValueError, match="goes with method 'serial', 'parallel' or "
                                         "'one-shot', not 'predict-correct'"):
        TrainConfig(method="predict-correct", gradient_method="piggy-back")
    with pytest.raises(ValueError, match="gradient_method='adjoint' is not supported"):
        TrainConfig(method="one-shot", gradient_method="adjoint")


def test_one_shot_training_with_the_piggy_back_gradient() -> None:
    """A few one-shot L-BFGS steps on Peaks, full batch and mini-batches (the last one
    smaller: the solvers are rebuilt): the loss falls as with two solves (not along the same
    trajectory: the adjoint iterates together with the state)."""
    peaks = data.peaks(400, 100)
    net = nn.ResNet.dense(2, 6, 5, 8, activation="smoothrelu",
                          regularization=nn.Regularization(1e-7, 1e-7, 1e-5))
    for extra in ({"optimizer": "lbfgs"}, {"optimizer": "adam", "lr": 0.01, "batch_size": 150}):
        losses = {}
        for method in ("two-solve", "piggy-back"):
            config = TrainConfig(method="one-shot", epochs=6, min_coarse=2,
                                 gradient_method=method, **extra)
            history = Trainer(net, peaks, config, progress=False).fit()
            assert all(r.forward_iterations == r.adjoint_iterations for r in history)
            losses[method] = [r.loss for r in history]
        for method, values in losses.items():
            assert values[-1] < 0.95 * values[0], (extra, method, values)


def run_piggyback_ranks(run_mpi, python_exe: str, nprocs: int, out) -> dict[str, np.ndarray]:
    import json

    code, text = run_mpi(nprocs, [python_exe, MPI_SCRIPTS / "piggyback_ranks.py", out],
                         timeout=240)
    assert code == 0, text
    assert json.loads(text.strip().splitlines()[-1])["nprocs"] == nprocs
    with np.load(out) as saved:
        return dict(saved)


@pytest.fixture(scope="module")
def one_rank(run_mpi, python_exe, tmp_path_factory) -> dict[str, np.ndarray]:
    return run_piggyback_ranks(run_mpi, python_exe, 1,
                               tmp_path_factory.mktemp("piggy") / "np1.npz")


@pytest.mark.parametrize("nprocs", [1, 2, 3, 4])
def test_piggy_back_on_ranks_equals_two_solve_and_one_rank_bitwise(
        run_mpi, python_exe, one_rank, nprocs: int, tmp_path) -> None:
    """Converged (and on one level): piggy-back == two-solve to 1e-8 on every rank count.
    Every loss, gradient and residual history, converged, one-level and capped (three
    warm-started two-cycle calls), is bit-identical to the one-rank run."""
    results = one_rank if nprocs == 1 else run_piggyback_ranks(run_mpi, python_exe, nprocs,
                                                               tmp_path / "out.npz")
    assert sorted(results) == sorted(one_rank)
    for kind in ("dense", "conv"):
        names = [k.split("/", 3)[3] for k in results
                 if k.startswith(f"{kind}/two-solve/0/") and k.split("/")[3].startswith(
                     ("layers.", "opening.", "classifier."))]
        assert len(names) > 4
        two = {k: results[f"{kind}/two-solve/0/{k}"] for k in names}
        piggy = {k: results[f"{kind}/piggy-back/0/{k}"] for k in names}
        assert gradient_difference(piggy, two) < 1e-8
        assert results[f"{kind}/piggy-back/0/adjoint"][-1] < 1e-12
        one_level = {k: results[f"{kind}/one-level/0/{k}"] for k in names}
        assert gradient_difference(one_level, two) < 1e-8
        capped = {k: results[f"{kind}/one-shot/0/{k}"] for k in names}
        assert gradient_difference(capped, two) > 1e-3  # far from converged, equal bitwise
    for key, value in one_rank.items():
        np.testing.assert_array_equal(results[key], value, err_msg=key)
