"""Residual layers: one forward-Euler step u <- u + dt * sigma(K(theta) u + b) and its adjoint.

A residual layer kind (:class:`Dense`, :class:`Conv`) knows its state shape, its parameter
shapes and how to take one step and one adjoint step with a backend's operations. Steps work
in place on the state and on preallocated scratch (a :class:`Workspace`), so a layer step
allocates nothing. States are ``(batch, width)`` for dense layers and channels-last
``(batch, height, width, channels)`` for convolutional ones (the channel axis last makes the
bias broadcast and the im2col product contiguous); kernels are stored as PyTorch lays them
out, ``(channels_out, channels_in, k, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..backends import ArrayOps

__all__ = ["Dense", "Conv", "ResidualLayer", "Workspace"]

Array = Any
Params = dict[str, Array]


class Workspace:
    """Scratch arrays of one app, allocated once per batch shape."""

    def __init__(self, xp: Any, shape: tuple[int, ...], dtype: np.dtype,
                 layer: "ResidualLayer") -> None:
        self.z = xp.empty(shape, dtype=dtype)   # pre-activation, then the step's increment
        self.g = xp.empty(shape, dtype=dtype)   # h sigma'(z) (.) lambda in the adjoint
        if isinstance(layer, Conv):
            batch, height, width, channels = shape
            p, k = layer.kernel_size // 2, layer.kernel_size
            self.padded = xp.zeros((batch, height + 2 * p, width + 2 * p, channels), dtype=dtype)
            self.cols = xp.empty((batch, height, width, k, k, channels), dtype=dtype)


@dataclass(frozen=True)
class Dense:
    """A dense residual layer: ``u <- u + dt sigma(u W^T + b)``, W of shape (width, width)."""

    width: int

    def __post_init__(self) -> None:
        _positive_int("width", self.width)

    @property
    def features(self) -> int:
        return self.width

    def state_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.width)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.width, self.width), "bias": (self.width,)}

    def fan_in(self) -> int:
        return self.width

    def forward(self, ops: ArrayOps, u: Array, params: Params, dt: float, act: str,
                work: Workspace, cache_u: Array | None = None,
                cache_deriv: Array | None = None) -> None:
        """One step in place; with caches, also keep the input and sigma'(z) for the adjoint."""
        xp = ops.xp
        xp.matmul(u, params["weight"].T, out=work.z)
        if cache_u is not None:
            xp.copyto(cache_u, u)
        ops.residual_update(act, work.z, params["bias"], u, dt, cache_deriv)

    def adjoint(self, ops: ArrayOps, lam: Array, params: Params, dt: float, deriv: Array,
                work: Workspace, u_in: Array | None = None, grads: Params | None = None) -> None:
        """lam <- lam + dt W^T (sigma'(z) (.) lam); with u_in, grads <- this step's dL/dtheta."""
        xp = ops.xp
        ops.scaled_product(deriv, lam, dt, work.g)
        xp.matmul(work.g, params["weight"], out=work.z)
        if grads is not None:
            xp.matmul(work.g.T, u_in, out=grads["weight"])
            xp.sum(work.g, axis=0, out=grads["bias"])
        lam += work.z

    def config(self) -> dict[str, Any]:
        return {"kind": "dense", "width": self.width}


@dataclass(frozen=True)
class Conv:
    """A convolutional residual layer: ``u <- u + dt sigma(K * u + b)`` with C x C kernels of
    odd size k x k and same (zero) padding, on images of height x width pixels."""

    channels: int
    height: int
    width: int
    kernel_size: int = 3

    def __post_init__(self) -> None:
        for name in ("channels", "height", "width", "kernel_size"):
            _positive_int(name, getattr(self, name))
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={self.kernel_size} is even; same padding needs an "
                             "odd kernel size (1, 3, 5, ...)")

    @property
    def features(self) -> int:
        return self.channels * self.height * self.width

    def state_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.height, self.width, self.channels)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        k = self.kernel_size
        return {"weight": (self.channels, self.channels, k, k), "bias": (self.channels,)}

    def fan_in(self) -> int:
        return self.channels * self.kernel_size ** 2

    def _im2col(self, xp: Any, src: Array, work: Workspace) -> Array:
        """The k x k neighbourhoods of every pixel: rows (b, y, x), columns (dy, dx, c)."""
        k, p = self.kernel_size, self.kernel_size // 2
        h, w = self.height, self.width
        work.padded[:, p:p + h, p:p + w, :] = src
        for dy in range(k):
            for dx in range(k):
                work.cols[:, :, :, dy, dx, :] = work.padded[:, dy:dy + h, dx:dx + w, :]
        return work.cols.reshape(-1, k * k * self.channels)

    def _matrix(self, kernel: Array) -> Array:
        """The kernel as a (C_out, k k C_in) matrix matching the im2col columns."""
        return kernel.transpose(0, 2, 3, 1).reshape(self.channels, -1)

    def forward(self, ops: ArrayOps, u: Array, params: Params, dt: float, act: str,
                work: Workspace, cache_u: Array | None = None,
                cache_deriv: Array | None = None) -> None:
        xp = ops.xp
        cols = self._im2col(xp, u, work)
        xp.matmul(cols, self._matrix(params["weight"]).T, out=work.z.reshape(-1, self.channels))
        if cache_u is not None:
            xp.copyto(cache_u, u)
        ops.residual_update(act, work.z, params["bias"], u, dt, cache_deriv)

    def adjoint(self, ops: ArrayOps, lam: Array, params: Params, dt: float, deriv: Array,
                work: Workspace, u_in: Array | None = None, grads: Params | None = None) -> None:
        xp = ops.xp
        c = self.channels
        ops.scaled_product(deriv, lam, dt, work.g)
        g = work.g.reshape(-1, c)
        if grads is not None:
            cols = self._im2col(xp, u_in, work)
            k = self.kernel_size
            dk = (g.T @ cols).reshape(c, k, k, c)       # [c_out, dy, dx, c_in]
            grads["weight"][...] = dk.transpose(0, 3, 1, 2)
            xp.sum(g, axis=0, out=grads["bias"])
        # The transposed convolution is a convolution of g with the flipped, transposed kernel.
        flipped = params["weight"][:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        cols = self._im2col(xp, work.g, work)
        xp.matmul(cols, self._matrix(flipped).T, out=work.z.reshape(-1, c))
        lam += work.z

    def config(self) -> dict[str, Any]:
        return {"kind": "conv", "channels": self.channels, "height": self.height,
                "width": self.width, "kernel_size": self.kernel_size}


ResidualLayer = Union[Dense, Conv]


def layer_from_config(config: dict[str, Any]) -> ResidualLayer:
    kind = config.get("kind")
    args = {k: v for k, v in config.items() if k != "kind"}
    if kind == "dense":
        return Dense(**args)
    if kind == "conv":
        return Conv(**args)
    raise ValueError(f"residual layer kind={kind!r} is not supported; use 'dense' or 'conv'")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name}={value} must be >= 1")
