"""Small networks and batches shared by the model and propagation tests, and an independent
PyTorch implementation of the same objective (written from the formulas, not from our code)."""

from __future__ import annotations

from typing import Any

import numpy as np

from layerbraid import nn

REGULARIZATIONS = {
    "none": nn.Regularization(),
    "tikhonov": nn.Regularization(tikhonov=0.3, classifier=0.2),
    "smoothness": nn.Regularization(smoothness=0.05),
    "all": nn.Regularization(tikhonov=1e-2, classifier=2e-2, smoothness=1e-3),
}


def dense_net(activation: str = "tanh", opening: str = "dense", depth: int = 6,
              reg: str = "all", width: int = 5) -> nn.ResNet:
    return nn.ResNet.dense(3, width, 4, depth, opening=opening, activation=activation,
                           final_time=2.0, regularization=REGULARIZATIONS[reg])


def conv_net(activation: str = "tanh", depth: int = 4, reg: str = "all",
             kernel_size: int = 3) -> nn.ResNet:
    return nn.ResNet.conv(2, (4, 5), 3, 3, depth, kernel_size=kernel_size,
                          activation=activation, final_time=1.5,
                          regularization=REGULARIZATIONS[reg])


def batch(net: nn.ResNet, size: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size, *net.opening.input_shape()))
    return x, rng.integers(0, net.classifier.classes, size)


def rough_params(net: nn.ResNet, seed: int = 1) -> dict[str, np.ndarray]:
    """Parameters with every entry nonzero (random biases and classifier bias too)."""
    params = net.init_params(seed, weights="random", scale=1.5)
    rng = np.random.default_rng(seed + 100)
    for key in params:
        if key.endswith("bias"):
            params[key] = 0.3 * rng.standard_normal(params[key].shape)
    return params


def torch_objective(net: nn.ResNet, params: dict[str, np.ndarray], x: np.ndarray,
                    labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradient by PyTorch autograd, float64, NCHW for images."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    eta = nn.activations.SMOOTH_RELU_ETA

    def sigma(z: Any) -> Any:
        if net.activation == "tanh":
            return torch.tanh(z)
        if net.activation == "relu":
            return torch.relu(z)
        quad = z * z / (4 * eta) + z / 2 + eta / 4
        return torch.where(z < -eta, torch.zeros_like(z), torch.where(z > eta, z, quad))

    xt = torch.tensor(x, dtype=torch.float64)
    conv = isinstance(net.layer, nn.Conv)
    if conv:
        source = [c % net.opening.in_channels for c in range(net.layer.channels)]
        u = xt[:, source]
    elif isinstance(net.opening, nn.DenseOpening):
        u = sigma(F.linear(xt, t["opening.weight"], t["opening.bias"]))
    else:
        u = F.pad(xt, (0, net.layer.width - x.shape[1]))
    h = net.step
    for n in range(net.depth):
        w, b = t[f"layers.{n}.weight"], t[f"layers.{n}.bias"]
        if conv:
            z = F.conv2d(u, w, b, padding=net.layer.kernel_size // 2)
        else:
            z = F.linear(u, w, b)
        u = u + h * sigma(z)
    flat = (u.permute(0, 2, 3, 1) if conv else u).reshape(u.shape[0], -1)
    scores = F.linear(flat, t["classifier.weight"], t["classifier.bias"])
    loss = F.cross_entropy(scores, torch.tensor(labels))
    reg = net.regularization
    for key, value in t.items():
        gamma = reg.classifier if key.startswith("classifier") else reg.tikhonov
        loss = loss + gamma / 2 * (value ** 2).sum()
    for n in range(1, net.depth):
        for part in ("weight", "bias"):
            diff = (t[f"layers.{n}.{part}"] - t[f"layers.{n - 1}.{part}"]) / h
            loss = loss + reg.smoothness / 2 * (diff ** 2).sum()
    loss.backward()
    return float(loss.detach()), {k: v.grad.numpy() for k, v in t.items()}
