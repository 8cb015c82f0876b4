"""Activation functions of the residual layers, by name.

Each activation is a name the array backends know how to apply in one fused pass (bias, value
and derivative together); this module holds the definitions every backend follows and a
reference implementation used by the tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ACTIVATIONS", "SMOOTH_RELU_ETA", "check_activation", "reference_value",
           "reference_derivative"]

#: The blend half-width of SmoothReLU: quadratic on [-eta, eta], 0 below, x above.
SMOOTH_RELU_ETA = 0.1

#: Supported activations and their definitions.
ACTIVATIONS: dict[str, str] = {
    "tanh": "tanh(x)",
    "relu": "max(x, 0) (derivative taken as 0 at x = 0)",
    "smoothrelu": f"0 for x < -eta, x for x > eta, x^2/(4 eta) + x/2 + eta/4 between; "
                  f"eta = {SMOOTH_RELU_ETA}",
}


def check_activation(name: Any) -> str:
    """The activation's canonical name, or ValueError naming the accepted ones."""
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(f"activation={name!r} is not supported; use one of "
                         f"{', '.join(map(repr, ACTIVATIONS))}")
    return name.lower()


def reference_value(name: str, x: np.ndarray) -> np.ndarray:
    """sigma(x), written plainly (for tests and for checking the fused kernels)."""
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    eta = SMOOTH_RELU_ETA
    return np.where(x < -eta, 0.0, np.where(x > eta, x, x * x / (4 * eta) + x / 2 + eta / 4))


def reference_derivative(name: str, x: np.ndarray) -> np.ndarray:
    """sigma'(x), written plainly."""
    if name == "tanh":
        return 1.0 - np.tanh(x) ** 2
    if name == "relu":
        return (x > 0).astype(x.dtype)
    eta = SMOOTH_RELU_ETA
    return np.where(x < -eta, 0.0, np.where(x > eta, 1.0, x / (2 * eta) + 0.5))
