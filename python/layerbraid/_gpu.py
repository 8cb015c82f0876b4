"""Optional GPU support through CuPy (extra: pip install "layerbraid[gpu]")."""

from __future__ import annotations

__all__ = ["gpu_available"]


def gpu_available() -> bool:
    """Return True when CuPy is installed and sees at least one CUDA device; never raises.

    ``import cupy`` succeeds on machines without a GPU or driver; the failure shows up only at
    the first device call, so this asks for the device count and treats any error as "no GPU".
    """
    try:
        from cupy.cuda import runtime

        return bool(runtime.getDeviceCount() > 0)
    except Exception:  # ImportError, CUDARuntimeError (no driver / device), missing libcuda, ...
        return False
