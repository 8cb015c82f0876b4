"""Predict globally, correct locally (layerbraid.methods.predict_correct): the checks A-1 to
A-5 of shared/notes/companion_methods.md.

Frozen weights make one iteration a parareal iteration for the block-boundary states and
co-states, with its finite termination; with exact boundaries the block-local gradients are
backpropagation.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from mpi4py import MPI

from conftest import MPI_SCRIPTS
from layerbraid import Propagator, data, nn
from layerbraid.methods.predict_correct import PredictCorrect

SELF = MPI.COMM_SELF


def toy(depth: int = 16):
    """Two-arm spirals, inputs zero-padded to width 4, a tanh ResNet with h = 0.25."""
    ds = data.spirals(400, 100)
    net = nn.ResNet.dense(2, 4, 2, depth, activation="tanh", final_time=depth / 4,
                          opening="expand_zero")
    return ds, net


def rel_error(a: dict, b: dict) -> float:
    num = sum(float(np.sum((a[k] - b[k]) ** 2)) for k in b)
    return float(np.sqrt(num / sum(float(np.sum(b[k] ** 2)) for k in b)))


@pytest.fixture(scope="module")
def frozen():
    """Smooth weights that stay fixed, the exact states, co-states and gradient."""
    ds, net = toy()
    serial = Propagator(net, SELF)
    params = serial.init_params(0, weights="smooth")
    x, y = ds.x_train, ds.y_train
    return (net, params, x, y, serial.forward_states(params, x),
            serial.adjoint_states(params, x, y), serial.loss_and_gradient(params, x, y))


def test_frozen_weights_terminate_like_parareal(frozen) -> None:
    """A-2: the boundary states' error never grows, the first k boundaries are exact after k
    iterations, all are exact after P; the co-states (swept simultaneously) after 2P."""
    net, params, x, y, states, costates, _ = frozen
    blocks, m = 4, 4
    pc = PredictCorrect(net, SELF, blocks=blocks)
    previous = np.inf
    for k in range(2 * blocks):
        pc.loss_and_gradient(params, x, y)
        # iteration k + 1 swept from the boundaries of prediction k (k = 0: the coarse sweep)
        err = [float(np.abs(pc.interface_states()[j] - states[j * m]).max())
               for j in range(blocks)]
        assert max(err) <= previous + 1e-15
        previous = max(err)
        assert max(err[:k + 1]) <= 1e-12, (k, err)
        cerr = [float(np.abs(pc.interface_costates()[j] - costates[(j + 1) * m]).max())
                for j in range(blocks)]
    assert max(err) <= 1e-12 and max(cerr) <= 1e-12, (err, cerr)
    first = PredictCorrect(net, SELF, blocks=blocks)
    first.loss_and_gradient(params, x, y)
    assert max(float(np.abs(first.interface_states()[j] - states[j * m]).max())
               for j in range(blocks)) > 1e-2


def test_exact_boundaries_give_backpropagation(frozen) -> None:
    """A-1: once the boundaries are exact, the block-local gradients are backprop's."""
    net, params, x, y, _, _, exact = frozen
    pc = PredictCorrect(net, SELF, blocks=4)
    errors = [rel_error(pc.loss_and_gradient(params, x, y).gradient, exact.gradient)
              for _ in range(8)]
    assert errors[0] > 1e-2            # the coarse prediction alone is not exact
    assert errors[-1] <= 1e-12, errors
    ev = pc.loss_and_gradient(params, x, y)
    assert ev.loss == pytest.approx(exact.loss, rel=1e-13)


def test_exact_coarse_network_converges_at_once(frozen) -> None:
    """A-3: with G = F the prediction is exact, so the first gradient is backprop's."""
    net, params, x, y, states, _, exact = frozen
    pc = PredictCorrect(net, SELF, blocks=4, coarse="exact")
    ev = pc.loss_and_gradient(params, x, y)
    assert rel_error(ev.gradient, exact.gradient) <= 1e-12
    assert max(float(np.abs(pc.interface_states()[j] - states[4 * j]).max())
               for j in range(4)) <= 1e-12


def test_one_block_is_gradient_descent() -> None:
    """A-3: P = 1 is serial gradient descent, step for step (to round-off)."""
    ds, net = toy()
    serial, pc = Propagator(net, SELF), PredictCorrect(net, SELF, blocks=1)
    p_serial = serial.init_params(0)
    p_pc = {k: v.copy() for k, v in p_serial.items()}
    x, y = ds.x_train[:100], ds.y_train[:100]
    for _ in range(20):
        for prop, p in ((serial, p_serial), (pc, p_pc)):
            g = prop.loss_and_gradient(p, x, y).gradient
            for k in p:
                p[k] -= 0.5 * g[k]
    assert max(float(np.abs(p_pc[k] - p_serial[k]).max()) for k in p_serial) <= 1e-14


def test_cost_model_matches_the_steps_taken() -> None:
    """A-5: the reported critical path is 2M + 2(P + 1) c_G per iteration, and the engine
    did exactly the steps the model counts."""
    ds, net = toy()
    pc = PredictCorrect(net, SELF, blocks=4)
    cost = pc.cost()
    assert (cost.fine, cost.coarse, cost.coarse_cost) == (4, 5, 1)
    assert cost.per_iteration == 2 * 4 + 2 * 5 and cost.serial_per_iteration == 32
    params = pc.init_params(0)
    iterations = 3
    for _ in range(iterations):
        pc.loss_and_gradient(params, ds.x_train[:50], ds.y_train[:50])
    work = pc.work()
    # every layer once per solve; per solve P coarse residual steps and P coarse-solve steps,
    # plus the first iteration's coarse prediction (P steps per solve)
    assert work["forward_fine"] == work["adjoint_fine"] == iterations * 16
    assert work["forward_coarse"] == work["adjoint_coarse"] == iterations * 2 * 4 + 4
    assert cost.sequential_steps(iterations) == 8 + iterations * 18
    assert PredictCorrect(net, SELF, blocks=4, coarse="exact").cost().per_iteration == \
        2 * 4 + 2 * 5 * 4


def gradient_descent(prop, net, x, y, lr: float, iterations: int, exact: Propagator):
    """Gradient descent with prop's gradients: true losses every 25 iterations, relative
    gradient errors every 10 (from iteration 50), final training accuracy."""
    params = exact.init_params(0)
    losses, errors = [], []
    for i in range(iterations):
        grad = prop.loss_and_gradient(params, x, y).gradient
        if prop is not exact and i >= 50 and i % 10 == 0:
            errors.append(rel_error(grad, exact.loss_and_gradient(params, x, y).gradient))
        for k in params:
            params[k] -= lr * grad[k]
        if (i + 1) % 25 == 0:
            losses.append(exact.loss(params, x, y).loss)
    return np.array(losses), errors, exact.loss(params, x, y).accuracy


def test_training_follows_gradient_descent_with_fewer_sequential_steps() -> None:
    """A-4 and A-5 on the spirals toy (N = 16, P = 4, learning rate 0.1, where serial
    gradient descent decreases monotonically): the loss stays within 5 % of serial gradient
    descent from iteration 50 on, the final training accuracy is the same, the median gradient
    error is below 2e-2; and reaching the loss serial descent has after 300 iterations takes
    at most 1/1.5 of its sequential layer steps."""
    ds, net = toy()
    x, y = ds.x_train, ds.y_train
    exact = Propagator(net, SELF)
    serial_losses, _, serial_acc = gradient_descent(exact, net, x, y, 0.1, 500, exact)
    pc = PredictCorrect(net, SELF, blocks=4)
    losses, errors, acc = gradient_descent(pc, net, x, y, 0.1, 500, exact)
    assert np.all(np.diff(serial_losses) < 0)
    assert np.max(np.abs(losses[1:] / serial_losses[1:] - 1)) <= 0.05
    assert acc == serial_acc
    assert np.median(errors) <= 2e-2
    target = serial_losses[11]                       # after 300 iterations
    reached = 25 * (int(np.argmax(losses <= target)) + 1)
    assert losses.min() <= target
    serial_steps = 300 * pc.cost().serial_per_iteration
    assert pc.cost().sequential_steps(reached) <= serial_steps / 1.5, reached


@pytest.mark.parametrize("kwargs,match", [
    ({"blocks": 3}, "blocks=3 must divide the depth 16"),
    ({"blocks": 16}, "blocks of at least 2 layers"),
    ({"blocks": 0}, "blocks=0 must be an int >= 1"),
    ({"coarse": "mean"}, "coarse='mean' is not supported"),
    ({"sweeps": 0}, "sweeps=0 must be an int >= 1"),
])
def test_bad_settings_are_named(kwargs, match: str) -> None:
    _, net = toy()
    with pytest.raises(ValueError, match=match):
        PredictCorrect(net, SELF, **kwargs)


def test_prediction_needs_a_propagator(frozen) -> None:
    net, params, x, _, _, _, _ = frozen
    with pytest.raises(NotImplementedError, match="Propagator"):
        PredictCorrect(net, SELF, blocks=4).predict(params, x)


def test_the_same_on_one_two_and_four_ranks(run_mpi, python_exe) -> None:
    """Losses and gradients of predict/correct iterations do not depend on the ranks."""
    out = {}
    for nprocs in (1, 2, 4):
        code, text = run_mpi(nprocs, [python_exe, MPI_SCRIPTS / "predict_correct_ranks.py"],
                             timeout=120)
        assert code == 0, text
        out[nprocs] = json.loads(text.strip().splitlines()[-1])
    assert out[1] == out[2] == out[4]
    assert len(out[1]["losses"]) == 6
