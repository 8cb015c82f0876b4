"""The ResNet-ODE model: opening layer, N residual layers of step h = T / N, classifier, and
the regularisers; parameters, their initialisation and the regularisation terms.

Parameters are a flat ``dict`` from names to arrays: ``opening.weight``, ``opening.bias``,
``layers.<n>.weight``, ``layers.<n>.bias`` (n = 0 .. N-1) and ``classifier.weight``,
``classifier.bias``. A rank holds only the entries of the layers it owns (see
:class:`layerbraid.layout.LayerLayout`); this module never communicates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from .activations import check_activation
from .classifier import Classifier
from .layers import Conv, Dense, ResidualLayer, _positive_int, layer_from_config
from .openings import (DenseOpening, ExpandZero, Opening, Replicate, check_opening_fits,
                       opening_from_config)

__all__ = ["ResNet", "Regularization", "layer_key", "WEIGHT_INITS"]

Array = Any
Params = dict[str, Array]

#: How :meth:`ResNet.init_params` draws the residual layers' weights.
WEIGHT_INITS = {
    "random": "independent N(0, scale^2 / fan_in) weights and N(0, (scale/10)^2) biases per layer",
    "smooth": "theta(t) = A cos(pi t / T) + B sin(pi t / T) with A, B drawn as for 'random': "
              "weights that vary smoothly with the layer (what MGRIT's coarse grids rely on)",
    "zero": "all residual weights and biases zero (every residual layer the identity)",
}


def layer_key(n: int, part: str) -> str:
    """The parameter name of residual layer n's ``part`` ("weight" or "bias")."""
    return f"layers.{n}.{part}"


@dataclass(frozen=True)
class Regularization:
    """The regularisers' weights.

    Attributes:
        tikhonov: gamma of ``gamma/2 sum_n (|W_n|^2 + |b_n|^2)`` over the residual layers and
            the opening layer.
        classifier: gamma of the same term for the classifier's weight and bias.
        smoothness: gamma of ``gamma/2 sum_{n>=1} |(theta_n - theta_{n-1}) / h|^2`` over
            consecutive residual layers (weights and biases).
    """

    tikhonov: float = 0.0
    classifier: float = 0.0
    smoothness: float = 0.0

    def __post_init__(self) -> None:
        for name in ("tikhonov", "classifier", "smoothness"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"regularization {name}={value!r} must be a finite float >= 0")


@dataclass(frozen=True)
class ResNet:
    """A residual network read as forward Euler on ``du/dt = sigma(K(theta(t)) u + b(t))``.

    Build one with :meth:`dense` or :meth:`conv`, or from its parts.
    """

    opening: Opening
    layer: ResidualLayer
    depth: int
    classifier: Classifier
    activation: str = "tanh"
    final_time: float = 1.0
    regularization: Regularization = field(default_factory=Regularization)
    dtype: str = "float64"

    def __post_init__(self) -> None:
        _positive_int("depth", self.depth)
        object.__setattr__(self, "activation", check_activation(self.activation))
        if not (isinstance(self.final_time, (int, float)) and math.isfinite(self.final_time)
                and self.final_time > 0):
            raise ValueError(f"final_time={self.final_time!r} must be a finite float > 0")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype={self.dtype!r} is not supported; use 'float64' or 'float32'")
        check_opening_fits(self.opening, self.layer)
        if self.classifier.features != self.layer.features:
            raise ValueError(f"classifier features={self.classifier.features} differ from the "
                             f"state's {self.layer.features} entries")

    # ---- construction ----

    @classmethod
    def dense(cls, in_features: int, width: int, classes: int, depth: int, *,
              opening: str = "dense", activation: str = "tanh", final_time: float = 1.0,
              regularization: Regularization | None = None,
              dtype: str = "float64") -> "ResNet":
        """A dense ResNet; ``opening`` is "dense" (sigma(W x + b)) or "expand_zero"."""
        openings = {"dense": DenseOpening, "expand_zero": ExpandZero}
        if opening not in openings:
            raise ValueError(f"opening={opening!r} is not supported for dense layers; use "
                             "'dense' or 'expand_zero'")
        return cls(openings[opening](in_features, width), Dense(width), depth,
                   Classifier(width, classes), activation, final_time,
                   regularization or Regularization(), dtype)

    @classmethod
    def conv(cls, in_channels: int, image_size: tuple[int, int], channels: int, classes: int,
             depth: int, *, kernel_size: int = 3, activation: str = "tanh",
             final_time: float = 1.0, regularization: Regularization | None = None,
             dtype: str = "float64") -> "ResNet":
        """A convolutional ResNet on ``in_channels x H x W`` images, replicate opening."""
        height, width = image_size
        layer = Conv(channels, height, width, kernel_size)
        return cls(Replicate(in_channels, channels, height, width), layer, depth,
                   Classifier(layer.features, classes), activation, final_time,
                   regularization or Regularization(), dtype)

    @property
    def step(self) -> float:
        """h = T / N, the step of one residual layer."""
        return self.final_time / self.depth

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    # ---- parameters ----

    def parameter_shapes(self, layers: Iterable[int] | None = None, opening: bool = True,
                         classifier: bool = True) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the parameters of the given parts (default: all)."""
        shapes: dict[str, tuple[int, ...]] = {}
        if opening:
            shapes.update({f"opening.{p}": s for p, s in self.opening.param_shapes().items()})
        for n in range(self.depth) if layers is None else layers:
            shapes.update({layer_key(n, p): s for p, s in self.layer.param_shapes().items()})
        if classifier:
            shapes.update({f"classifier.{p}": s
                           for p, s in self.classifier.param_shapes().items()})
        return shapes

    def init_params(self, seed: int = 0, *, weights: str = "random", scale: float = 1.0,
                    layers: Iterable[int] | None = None, opening: bool = True,
                    classifier: bool = True) -> Params:
        """Initial parameters of the given parts (default: all), the same whichever parts are
        asked for: each layer's values depend only on ``seed`` and its index.

        Args:
            weights: how residual weights are drawn, see :data:`WEIGHT_INITS`.
            scale: multiplies the residual layers' standard deviations.
        """
        if weights not in WEIGHT_INITS:
            raise ValueError(f"weights={weights!r} is not supported; use one of "
                             f"{', '.join(map(repr, WEIGHT_INITS))}")
        dt = self.np_dtype
        shapes = self.layer.param_shapes()
        std_w, std_b = scale / math.sqrt(self.layer.fan_in()), scale / 10
        params: Params = {}
        if opening:
            rng = np.random.default_rng([seed, 0])
            for p, s in self.opening.param_shapes().items():
                std = 1 / math.sqrt(s[1]) if p == "weight" else 0.1
                params[f"opening.{p}"] = (std * rng.standard_normal(s)).astype(dt)
        if weights == "smooth":
            rng = np.random.default_rng([seed, 2])
            anchors = {p: [std * rng.standard_normal(s) for _ in range(2)]
                       for p, s, std in (("weight", shapes["weight"], std_w),
                                         ("bias", shapes["bias"], std_b))}
        for n in range(self.depth) if layers is None else layers:
            if weights == "random":
                rng = np.random.default_rng([seed, 1, n])
                values = {"weight": std_w * rng.standard_normal(shapes["weight"]),
                          "bias": std_b * rng.standard_normal(shapes["bias"])}
            elif weights == "smooth":
                phase = math.pi * n / self.depth
                values = {p: math.cos(phase) * a + math.sin(phase) * b
                          for p, (a, b) in anchors.items()}
            else:
                values = {p: np.zeros(s) for p, s in shapes.items()}
            for p, v in values.items():
                params[layer_key(n, p)] = np.ascontiguousarray(v, dtype=dt)
        if classifier:
            rng = np.random.default_rng([seed, 3])
            w, b = self.classifier.param_shapes().values()
            params["classifier.weight"] = (rng.standard_normal(w)
                                           / math.sqrt(self.classifier.features)).astype(dt)
            params["classifier.bias"] = np.zeros(b, dtype=dt)
        return params

    # ---- regularisation ----

    def regularization_terms(self, params: Mapping[str, Array], layers: Iterable[int],
                             opening: bool, classifier: bool, grads: Params | None = None,
                             layer_grads: Mapping[str, Array] | None = None,
                             xp: Any = np) -> list[float]:
        """The regulariser's terms that belong to the given parts, each as one float, and
        their gradient added into the given gradients.

        ``layers`` is a contiguous range. The smoothness term of the pair (n-1, n) belongs to
        layer n; ``params`` must hold layers n-1 and n+1 of every given layer n that has them.
        ``grads``: the opening's and the classifier's gradients by name. ``layer_grads``: the
        given layers' gradients stacked, {"weight": (len(layers), ...), "bias": (...)}.
        ``xp`` is the arrays' module (NumPy or CuPy).
        """
        reg = self.regularization
        terms: list[float] = []

        def tikhonov(prefix: str, gamma: float) -> None:
            for part in ("weight", "bias"):
                key = f"{prefix}.{part}"
                if key in params and gamma:
                    value = params[key]
                    terms.append(0.5 * gamma * _sqnorm(value))
                    if grads is not None:
                        grads[key] += gamma * value

        if opening:
            tikhonov("opening", reg.tikhonov)
        layers = list(layers)
        if layers and (reg.tikhonov or reg.smoothness):
            terms += self._layer_terms(xp, params, layers, layer_grads)
        if classifier:
            tikhonov("classifier", reg.classifier)
        return terms

    def _layer_terms(self, xp: Any, params: Mapping[str, Array], layers: list[int],
                     grads: Mapping[str, Array] | None) -> list[float]:
        """Tikhonov and smoothness terms of a contiguous run of layers (one float per layer
        and term), vectorised over the layers: a few array operations per layer were most of
        an evaluation's Python time at N = 256. Each layer's term and gradient is computed
        from its own rows only, so results do not depend on how the layers are split."""
        reg, depth = self.regularization, self.depth
        first, last = layers[0], layers[-1]
        if layers != list(range(first, last + 1)):
            raise ValueError(f"layers must be a contiguous range, got {layers[:3]}...")
        lo = max(first - 1, 0) if reg.smoothness else first      # with the neighbours
        hi = min(last + 2, depth) if reg.smoothness else last + 1
        weight = reg.smoothness / self.step ** 2
        terms: list[float] = []
        for part in ("weight", "bias"):
            # few temporaries of the stack's size: fresh large arrays cost page faults
            rows = xp.stack([params[layer_key(n, part)] for n in range(lo, hi)]).reshape(hi - lo, -1)
            own = rows[first - lo:last + 1 - lo]
            grad = None
            if reg.tikhonov:
                terms += (0.5 * reg.tikhonov * xp.einsum("ij,ij->i", own, own)).tolist()
                if grads is not None:
                    grad = own * reg.tikhonov
            if reg.smoothness:
                diff = rows[1:] - rows[:-1]           # row j: theta_{lo+j+1} - theta_{lo+j}
                start = max(first, 1)                 # layers n >= 1 own the pair (n-1, n)
                behind = diff[start - 1 - lo:last - lo]
                terms += (0.5 * weight * xp.einsum("ij,ij->i", behind, behind)).tolist()
                if grads is not None:
                    diff *= weight
                    if grad is None:
                        grad = xp.zeros_like(own)
                    grad[start - first:] += behind
                    end = min(last, depth - 2)        # the last layer n with a layer n + 1
                    grad[:end + 1 - first] -= diff[first - lo:end + 1 - lo]
            if grad is not None:
                assert grads is not None
                grads[part] += grad.reshape(grads[part].shape)
        return terms

    # ---- (de)serialisation ----

    def config(self) -> dict[str, Any]:
        """A JSON-able description, for :meth:`from_config` and checkpoints."""
        reg = self.regularization
        return {"opening": self.opening.config(), "layer": self.layer.config(),
                "depth": self.depth, "classifier": self.classifier.config(),
                "activation": self.activation, "final_time": self.final_time,
                "regularization": {"tikhonov": reg.tikhonov, "classifier": reg.classifier,
                                   "smoothness": reg.smoothness},
                "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ResNet":
        return cls(opening_from_config(dict(config["opening"])),
                   layer_from_config(dict(config["layer"])), int(config["depth"]),
                   Classifier(**config["classifier"]), config["activation"],
                   float(config["final_time"]), Regularization(**config["regularization"]),
                   config["dtype"])


def _sqnorm(a: Array) -> float:
    flat = a.reshape(-1)
    return float(flat @ flat)

