"""Array backends: the few fused elementwise operations of a layer step, per array library.

Everything else in a layer step (matrix products, im2col for convolutions, reductions) is
written once against the array module ``ops.xp``; what differs per library is only how the
bias, the activation and its derivative are fused. :func:`get_ops` picks the implementation:
``"numpy"`` (in-place NumPy passes) or ``"cupy"`` (one CUDA kernel per operation, from
``cpp/kernels/``).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ArrayOps", "get_ops", "BACKENDS"]

#: The array backends, by name.
BACKENDS = ("numpy", "cupy")


class ArrayOps(Protocol):
    """The fused elementwise operations a backend supplies (arrays are C-contiguous, with the
    bias broadcast along the last axis)."""

    name: str
    xp: Any

    def activate(self, act: str, z: Any, bias: Any, deriv: Any | None) -> None:
        """z <- sigma(z + bias); deriv <- sigma'(z + bias) when deriv is given."""

    def residual_update(self, act: str, z: Any, bias: Any, u: Any, h: float,
                        deriv: Any | None) -> None:
        """u <- u + h sigma(z + bias), deriv <- sigma'(z + bias) when given; z is scratch."""

    def scaled_product(self, deriv: Any, lam: Any, h: float, out: Any) -> None:
        """out <- h * deriv * lam (the adjoint's sigma'(z) (.) lambda, scaled by the step)."""


def get_ops(backend: str) -> ArrayOps:
    """The operations of ``backend`` ("numpy" or "cupy")."""
    if backend == "numpy":
        from .numpy_ops import NumpyOps

        return NumpyOps()
    if backend == "cupy":
        from .cupy_ops import CupyOps

        return CupyOps()
    raise ValueError(f"backend={backend!r} is not supported; use one of "
                     f"{', '.join(map(repr, BACKENDS))}")
