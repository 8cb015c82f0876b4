"""The ResNet-ODE model, serially: gradients against finite differences and against PyTorch
autograd, the activations' fused kernels against their definitions, save/load, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from layerbraid import nn
from layerbraid.backends import get_ops
from layerbraid.nn.activations import ACTIVATIONS, reference_derivative, reference_value
from layerbraid.propagate import Propagator
from resnet_cases import REGULARIZATIONS, batch, conv_net, dense_net, rough_params, torch_objective

CASES = (
    [("dense", act, "dense", reg) for act in ACTIVATIONS for reg in REGULARIZATIONS]
    + [("dense", act, "expand_zero", "all") for act in ACTIVATIONS]
    + [("conv", act, None, reg) for act in ACTIVATIONS for reg in ("none", "all")]
)


def make_net(kind: str, act: str, opening: str | None, reg: str) -> nn.ResNet:
    return dense_net(act, opening, reg=reg) if kind == "dense" else conv_net(act, reg=reg)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("with_deriv", [True, False])
def test_fused_activation_matches_its_definition(act: str, with_deriv: bool) -> None:
    ops = get_ops("numpy")
    rng = np.random.default_rng(3)
    z = rng.standard_normal((40, 6)) * 0.3   # many points inside SmoothReLU's blend
    bias, u = rng.standard_normal(6) * 0.1, rng.standard_normal((40, 6))
    deriv = np.full_like(z, np.nan) if with_deriv else None
    u_new, work = u.copy(), z.copy()
    ops.residual_update(act, work, bias, u_new, 0.25, deriv)
    np.testing.assert_allclose(u_new, u + 0.25 * reference_value(act, z + bias), rtol=0,
                               atol=1e-15)
    if with_deriv:
        np.testing.assert_allclose(deriv, reference_derivative(act, z + bias), rtol=0,
                                   atol=1e-15)


def test_smooth_relu_is_continuously_differentiable() -> None:
    eta = nn.activations.SMOOTH_RELU_ETA
    x = np.array([-eta, eta])
    for side in (-1e-9, 1e-9):
        np.testing.assert_allclose(reference_value("smoothrelu", x + side), [0, eta], atol=1e-8)
        np.testing.assert_allclose(reference_derivative("smoothrelu", x + side), [0, 1],
                                   atol=1e-7)


@pytest.mark.parametrize("kind,act,opening,reg", CASES)
def test_gradient_matches_central_differences(kind: str, act: str, opening: str | None,
                                              reg: str) -> None:
    net = make_net(kind, act, opening, reg)
    x, labels = batch(net)
    params = rough_params(net)
    prop = Propagator(net)
    grad = prop.loss_and_gradient(params, x, labels).gradient
    rng = np.random.default_rng(7)
    direction = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    eps = 1e-6

    def loss_at(s: float) -> float:
        return prop.loss({k: v + s * direction[k] for k, v in params.items()}, x, labels).loss

    fd = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    exact = sum(float(np.vdot(grad[k], direction[k])) for k in params)
    assert fd == pytest.approx(exact, rel=1e-6, abs=1e-9)
    # and entry by entry for one layer in the middle, where every term of the model meets
    key = f"layers.{net.depth // 2}.weight"
    for index in [(0,) * params[key].ndim, tuple(s - 1 for s in params[key].shape)]:
        bumped = {k: v.copy() for k, v in params.items()}
        bumped[key][index] += eps
        up = prop.loss(bumped, x, labels).loss
        bumped[key][index] -= 2 * eps
        down = prop.loss(bumped, x, labels).loss
        assert (up - down) / (2 * eps) == pytest.approx(grad[key][index], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("kind,act,opening,reg", CASES)
def test_loss_and_gradient_match_pytorch_autograd(kind: str, act: str, opening: str | None,
                                                  reg: str) -> None:
    pytest.importorskip("torch")
    net = make_net(kind, act, opening, reg)
    x, labels = batch(net)
    params = rough_params(net)
    ours = Propagator(net).loss_and_gradient(params, x, labels)
    loss, grads = torch_objective(net, params, x, labels)
    assert ours.loss == pytest.approx(loss, rel=1e-12)
    assert set(ours.gradient) == set(grads)
    for key, g in grads.items():
        np.testing.assert_allclose(ours.gradient[key], g, rtol=1e-10,
                                   atol=1e-10 * np.abs(g).max() + 1e-15, err_msg=key)


@pytest.mark.parametrize("kernel_size", [1, 5])
def test_conv_kernel_sizes_match_pytorch(kernel_size: int) -> None:
    pytest.importorskip("torch")
    net = conv_net("smoothrelu", reg="all", kernel_size=kernel_size)
    x, labels = batch(net)
    params = rough_params(net)
    ours = Propagator(net).loss_and_gradient(params, x, labels)
    loss, grads = torch_objective(net, params, x, labels)
    assert ours.loss == pytest.approx(loss, rel=1e-12)
    for key, g in grads.items():
        np.testing.assert_allclose(ours.gradient[key], g, rtol=1e-10,
                                   atol=1e-10 * np.abs(g).max() + 1e-15, err_msg=key)


def test_float32_agrees_with_float64() -> None:
    net64 = dense_net("tanh", depth=8)
    net32 = nn.ResNet.from_config({**net64.config(), "dtype": "float32"})
    x, labels = batch(net64, size=16)
    params = rough_params(net64)
    e64 = Propagator(net64).loss_and_gradient(params, x, labels)
    e32 = Propagator(net32).loss_and_gradient(
        {k: v.astype(np.float32) for k, v in params.items()}, x, labels)
    assert all(g.dtype == np.float32 for g in e32.gradient.values())
    assert e32.loss == pytest.approx(e64.loss, rel=1e-5)
    for key, g in e64.gradient.items():
        np.testing.assert_allclose(e32.gradient[key], g, rtol=1e-3,
                                   atol=1e-4 * np.abs(g).max(), err_msg=key)


def test_init_params_do_not_depend_on_which_layers_are_asked_for() -> None:
    net = dense_net(depth=9)
    for weights in nn.WEIGHT_INITS:
        full = net.init_params(5, weights=weights)
        part = net.init_params(5, weights=weights, layers=range(3, 6), opening=False,
                               classifier=False)
        assert set(part) == {nn.layer_key(n, p) for n in range(3, 6) for p in ("weight", "bias")}
        for key, value in part.items():
            np.testing.assert_array_equal(value, full[key])


def test_smooth_init_varies_slowly_across_layers() -> None:
    net = dense_net(depth=64, width=8)
    smooth, rough = net.init_params(0, weights="smooth"), net.init_params(0, weights="random")

    def jump(p: dict[str, np.ndarray]) -> float:
        w = np.stack([p[nn.layer_key(n, "weight")] for n in range(64)])
        return float(np.abs(np.diff(w, axis=0)).max() / np.abs(w).max())

    assert jump(smooth) < 0.1 < jump(rough)


def test_save_and_load_round_trip(tmp_path) -> None:
    net = conv_net("relu")
    params = rough_params(net)
    path = tmp_path / "net.npz"
    nn.save(path, net, params)
    loaded_net, loaded = nn.load(path)
    assert loaded_net == net
    assert set(loaded) == set(params)
    for key in params:
        np.testing.assert_array_equal(loaded[key], params[key])
    only_layers = nn.load(path, keep=lambda name: name.startswith("layers.1."))[1]
    assert set(only_layers) == {"layers.1.weight", "layers.1.bias"}


def test_load_rejects_files_that_are_not_networks(tmp_path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a layerbraid network"):
        nn.load(path)
    with pytest.raises(OSError, match="cannot read"):
        nn.load(tmp_path / "missing.npz")


def test_save_refuses_incomplete_parameters(tmp_path) -> None:
    net = dense_net()
    params = rough_params(net)
    del params["layers.2.bias"]
    with pytest.raises(ValueError, match="layers.2.bias"):
        nn.save(tmp_path / "x.npz", net, params)


@pytest.mark.parametrize("build,match", [
    (lambda: nn.ResNet.dense(2, 8, 5, 0), "depth=0"),
    (lambda: nn.ResNet.dense(2, 8, 5, 4, activation="sigmoid"), "activation='sigmoid'"),
    (lambda: nn.ResNet.dense(2, 8, 5, 4, opening="conv"), "opening='conv'"),
    (lambda: nn.ResNet.dense(9, 8, 5, 4, opening="expand_zero"), "in_features=9"),
    (lambda: nn.ResNet.dense(2, 8, 1, 4), "classes=1"),
    (lambda: nn.ResNet.dense(2, 8, 5, 4, final_time=-1.0), "final_time=-1.0"),
    (lambda: nn.ResNet.dense(2, 8, 5, 4, dtype="float16"), "dtype='float16'"),
    (lambda: nn.ResNet.conv(1, (8, 8), 4, 10, 4, kernel_size=4), "kernel_size=4"),
    (lambda: nn.Regularization(tikhonov=-1.0), "tikhonov=-1.0"),
    (lambda: nn.ResNet.dense(2, 8, 5, 4).init_params(weights="ones"), "weights='ones'"),
])
def test_bad_model_input_is_named(build, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_bad_batches_are_named() -> None:
    net = dense_net()
    prop = Propagator(net)
    params = rough_params(net)
    x, labels = batch(net)
    with pytest.raises(ValueError, match=r"x has shape \(7, 2\)"):
        prop.loss(params, x[:, :2], labels)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\]"):
        prop.loss(params, x, labels + 4)
    with pytest.raises(ValueError, match="labels must be 7 integers"):
        prop.loss(params, x, labels[:3])
    with pytest.raises(KeyError, match="layers.0.weight"):
        prop.loss({k: v for k, v in params.items() if k != "layers.0.weight"}, x, labels)
    with pytest.raises(TypeError, match="unknown solver option"):
        Propagator(net, options={"max_level": 3})
