"""The NumPy backend: each fused operation as a few in-place passes, no temporaries of the
state's size beyond the caller's scratch array."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.activations import SMOOTH_RELU_ETA

__all__ = ["NumpyOps"]


class NumpyOps:
    name = "numpy"
    xp = np

    def activate(self, act: str, z: np.ndarray, bias: np.ndarray,
                 deriv: np.ndarray | None) -> None:
        z += bias
        if act == "tanh":
            np.tanh(z, out=z)
            if deriv is not None:  # 1 - tanh^2, from the value
                np.multiply(z, z, out=deriv)
                np.subtract(1.0, deriv, out=deriv)
        elif act == "relu":
            if deriv is not None:
                np.greater(z, 0.0, out=deriv, casting="unsafe")
            np.maximum(z, 0.0, out=z)
        elif act == "smoothrelu":
            self._smooth_relu(z, deriv)
        else:
            raise ValueError(f"activation={act!r} is not supported")

    @staticmethod
    def _smooth_relu(z: np.ndarray, deriv: np.ndarray | None) -> None:
        # With c = clip(z, -eta, eta): sigma = (c + eta)^2 / (4 eta) + max(z - eta, 0) and
        # sigma' = (c + eta) / (2 eta); both pieces meet with value eta and slope 1 at z = eta.
        eta = SMOOTH_RELU_ETA
        c = np.clip(z, -eta, eta)
        c += eta
        if deriv is not None:
            np.multiply(c, 1.0 / (2 * eta), out=deriv)
        np.multiply(c, c, out=c)
        c *= 1.0 / (4 * eta)
        z -= eta
        np.maximum(z, 0.0, out=z)
        z += c

    def residual_update(self, act: str, z: np.ndarray, bias: np.ndarray, u: np.ndarray,
                        h: float, deriv: np.ndarray | None) -> None:
        self.activate(act, z, bias, deriv)
        z *= h
        u += z

    def scaled_product(self, deriv: np.ndarray, lam: np.ndarray, h: float, out: Any) -> None:
        np.multiply(deriv, lam, out=out)
        out *= h
