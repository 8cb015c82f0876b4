"""Opening layers: map a batch of inputs to the first state u_0 of the residual layers.

- :class:`DenseOpening` ("activate"): ``u_0 = sigma(x W^T + b)``, learned.
- :class:`ExpandZero`: the input features copied into the first entries, the rest zero.
- :class:`Replicate`: an image ``(batch, C_in, H, W)`` copied into every channel of the
  channels-last state (channel c takes input channel c mod C_in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from ..backends import ArrayOps
from .layers import Conv, Dense, ResidualLayer, _positive_int

__all__ = ["DenseOpening", "ExpandZero", "Replicate", "Opening", "opening_from_config"]

Array = Any
Params = dict[str, Array]


@dataclass(frozen=True)
class DenseOpening:
    """``u_0 = sigma(x W^T + b)`` with W of shape (width, in_features)."""

    in_features: int
    width: int

    def __post_init__(self) -> None:
        _positive_int("in_features", self.in_features)
        _positive_int("width", self.width)

    def input_shape(self) -> tuple[int, ...]:
        return (self.in_features,)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.width, self.in_features), "bias": (self.width,)}

    def forward(self, ops: ArrayOps, x: Array, params: Params, act: str) -> tuple[Array, Array]:
        """u_0 and sigma'(z), which the adjoint needs."""
        z = x @ params["weight"].T
        deriv = ops.xp.empty_like(z)
        ops.activate(act, z, params["bias"], deriv)
        return z, deriv

    def adjoint(self, ops: ArrayOps, lam0: Array, x: Array, deriv: Array, params: Params,
                grads: Params) -> None:
        g = deriv * lam0
        ops.xp.matmul(g.T, x, out=grads["weight"])
        ops.xp.sum(g, axis=0, out=grads["bias"])

    def config(self) -> dict[str, Any]:
        return {"kind": "dense", "in_features": self.in_features, "width": self.width}


@dataclass(frozen=True)
class ExpandZero:
    """The input features in the first ``in_features`` entries of u_0, zeros after them."""

    in_features: int
    width: int

    def __post_init__(self) -> None:
        _positive_int("in_features", self.in_features)
        _positive_int("width", self.width)
        if self.in_features > self.width:
            raise ValueError(f"in_features={self.in_features} exceeds width={self.width}; "
                             "expand-zero needs width >= in_features")

    def input_shape(self) -> tuple[int, ...]:
        return (self.in_features,)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def forward(self, ops: ArrayOps, x: Array, params: Params, act: str) -> tuple[Array, None]:
        u0 = ops.xp.zeros((x.shape[0], self.width), dtype=x.dtype)
        u0[:, :self.in_features] = x
        return u0, None

    def adjoint(self, ops: ArrayOps, lam0: Array, x: Array, deriv: Any, params: Params,
                grads: Params) -> None:
        pass

    def config(self) -> dict[str, Any]:
        return {"kind": "expand_zero", "in_features": self.in_features, "width": self.width}


@dataclass(frozen=True)
class Replicate:
    """Images ``(batch, in_channels, height, width)`` copied into every state channel."""

    in_channels: int
    channels: int
    height: int
    width: int

    def __post_init__(self) -> None:
        for name in ("in_channels", "channels", "height", "width"):
            _positive_int(name, getattr(self, name))

    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.height, self.width)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def forward(self, ops: ArrayOps, x: Array, params: Params, act: str) -> tuple[Array, None]:
        xp = ops.xp
        source = xp.arange(self.channels) % self.in_channels
        u0 = xp.ascontiguousarray(x.transpose(0, 2, 3, 1)[..., source])
        return u0, None

    def adjoint(self, ops: ArrayOps, lam0: Array, x: Array, deriv: Any, params: Params,
                grads: Params) -> None:
        pass

    def config(self) -> dict[str, Any]:
        return {"kind": "replicate", "in_channels": self.in_channels, "channels": self.channels,
                "height": self.height, "width": self.width}


Opening = Union[DenseOpening, ExpandZero, Replicate]

_OPENINGS = {"dense": DenseOpening, "expand_zero": ExpandZero, "replicate": Replicate}


def opening_from_config(config: dict[str, Any]) -> Opening:
    kind = config.get("kind")
    if kind not in _OPENINGS:
        raise ValueError(f"opening kind={kind!r} is not supported; use one of "
                         f"{', '.join(map(repr, _OPENINGS))}")
    return _OPENINGS[kind](**{k: v for k, v in config.items() if k != "kind"})


def check_opening_fits(opening: Opening, layer: ResidualLayer) -> None:
    """ValueError unless the opening produces the residual layers' state."""
    if isinstance(layer, Dense):
        ok = isinstance(opening, (DenseOpening, ExpandZero)) and opening.width == layer.width
        want = f"a dense or expand-zero opening of width {layer.width}"
    else:
        assert isinstance(layer, Conv)
        ok = (isinstance(opening, Replicate) and opening.channels == layer.channels
              and (opening.height, opening.width) == (layer.height, layer.width))
        want = (f"a replicate opening with {layer.channels} channels on "
                f"{layer.height}x{layer.width} images")
    if not ok:
        raise ValueError(f"opening {opening} does not fit residual layer {layer}; use {want}")
