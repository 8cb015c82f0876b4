"""The CuPy backend: each fused operation of a layer step is one CUDA kernel launch.

The kernels are CUDA C++ source, ``resnet_ops.cu``: installed with the package as
``layerbraid/kernels/resnet_ops.cu``, and found in ``cpp/kernels/`` of the source tree for an
editable install. NVRTC compiles them through ``cupy.RawModule`` at the first launch, once per
process and device (CuPy also caches the binary on disk). Launches go to the current stream and
never synchronise with the host.

CuPy is an optional extra: this module imports without it, and :class:`CupyOps` raises an
ImportError that says how to install it.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..nn.activations import ACTIVATIONS, SMOOTH_RELU_ETA

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["CupyOps", "COMPILE_OPTIONS", "KERNEL_FILE", "KERNEL_NAMES", "kernel_name",
           "kernel_source"]

#: The kernels' source file.
KERNEL_FILE = "resnet_ops.cu"

#: NVRTC options: C++17, and SmoothReLU's eta from its one definition in Python.
COMPILE_OPTIONS = ("--std=c++17", f"-DLAYERBRAID_SMOOTH_RELU_ETA={SMOOTH_RELU_ETA!r}")

# The C++ template arguments of each float type and activation.
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_ACTIVATIONS = {"tanh": "layerbraid::Tanh", "relu": "layerbraid::Relu",
                "smoothrelu": "layerbraid::SmoothRelu"}

# Threads per block, and blocks per multiprocessor at most: the kernels loop over the rest
# (grid stride), and this many blocks already keep every multiprocessor busy.
_THREADS = 256
_BLOCKS_PER_SM = 32

# The "no deriv" argument: a null pointer, passed as a 64-bit zero by value.
_NULL = np.uint64(0)

# Where an editable install finds the kernels: <repo>/cpp/kernels, from python/layerbraid/backends.
_SOURCE_TREE_KERNEL = Path(__file__).resolve().parents[3] / "cpp" / "kernels" / KERNEL_FILE

_INSTALL_HINT = 'backend="cupy" needs CuPy; install it with: pip install "layerbraid[gpu]"'


def kernel_name(kernel: str, dtype: Any, act: str | None = None) -> str:
    """The C++ name expression of ``kernel`` for ``dtype`` (and activation ``act``)."""
    args = [_CTYPES[np.dtype(dtype)]] + ([_ACTIVATIONS[act]] if act is not None else [])
    return f"layerbraid::{kernel}<{', '.join(args)}>"


#: Every kernel instantiation the backend launches.
KERNEL_NAMES: tuple[str, ...] = tuple(
    [kernel_name(k, t, a) for k in ("activate", "residual_update") for t in _CTYPES
     for a in _ACTIVATIONS]
    + [kernel_name("scaled_product", t) for t in _CTYPES])


def _kernel_files() -> list[Traversable]:
    """Where the source may be, in order: the installed package, then the source tree."""
    return [resources.files("layerbraid") / "kernels" / KERNEL_FILE, _SOURCE_TREE_KERNEL]


def kernel_source() -> str:
    """The CUDA source of the kernels (FileNotFoundError naming the places looked at)."""
    candidates = _kernel_files()
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError(
        f"the CUDA kernels {KERNEL_FILE} are neither installed with layerbraid nor in its "
        f"source tree (looked at {', '.join(map(str, candidates))}); reinstall layerbraid")


@functools.lru_cache(maxsize=None)
def _device_kernels(device: int) -> tuple[dict[str, Any], int]:
    """The compiled kernels on ``device`` (the current one), by name, and the most blocks
    worth launching there."""
    import cupy

    module = cupy.RawModule(code=kernel_source(), options=COMPILE_OPTIONS,
                            name_expressions=list(KERNEL_NAMES))
    kernels = {name: module.get_function(name) for name in KERNEL_NAMES}
    sms = cupy.cuda.Device(device).attributes["MultiProcessorCount"]
    return kernels, _BLOCKS_PER_SM * sms


class CupyOps:
    """The fused operations on CuPy arrays, one kernel launch each (see
    :class:`layerbraid.backends.ArrayOps`).

    Arrays must be C-contiguous ``cupy.ndarray`` of one dtype, float32 or float64, on the
    current device; anything else raises TypeError (or ValueError for shapes) before a launch.
    """

    name = "cupy"

    def __init__(self) -> None:
        try:
            import cupy
        except ImportError as exc:
            raise ImportError(_INSTALL_HINT) from exc
        self.xp: Any = cupy

    def activate(self, act: str, z: Any, bias: Any, deriv: Any | None) -> None:
        dtype = self._check({"z": z, "deriv": deriv}, bias)
        self._launch(kernel_name("activate", dtype, self._act(act)), z.size,
                     (z, bias, np.uint64(bias.size), _NULL if deriv is None else deriv,
                      np.uint64(z.size)))

    def residual_update(self, act: str, z: Any, bias: Any, u: Any, h: float,
                        deriv: Any | None) -> None:
        dtype = self._check({"z": z, "u": u, "deriv": deriv}, bias)
        self._launch(kernel_name("residual_update", dtype, self._act(act)), z.size,
                     (z, bias, np.uint64(bias.size), u, dtype.type(h),
                      _NULL if deriv is None else deriv, np.uint64(z.size)))

    def scaled_product(self, deriv: Any, lam: Any, h: float, out: Any) -> None:
        dtype = self._check({"deriv": deriv, "lam": lam, "out": out})
        self._launch(kernel_name("scaled_product", dtype), deriv.size,
                     (deriv, lam, dtype.type(h), out, np.uint64(deriv.size)))

    # ---- helpers ----

    @staticmethod
    def _act(act: str) -> str:
        if act not in _ACTIVATIONS:
            raise ValueError(f"activation={act!r} is not supported; use one of "
                             f"{', '.join(map(repr, ACTIVATIONS))}")
        return act

    def _check(self, arrays: dict[str, Any | None], bias: Any | None = None) -> np.dtype:
        """The arrays' common dtype, after checking that the kernels can take them as they
        are: all of the first one's shape (None entries skipped), bias of shape (last axis,)."""
        named = {k: v for k, v in arrays.items() if v is not None}
        if bias is not None:
            named["bias"] = bias
        first = next(iter(named.values()))
        for key, a in named.items():
            if not isinstance(a, self.xp.ndarray):
                raise TypeError(f"{key} must be a cupy.ndarray for backend 'cupy', got "
                                f"{type(a).__module__}.{type(a).__name__}")
            if not a.flags.c_contiguous:
                raise TypeError(f"{key} must be C-contiguous (the kernels index it flat), got "
                                f"strides {a.strides} for shape {a.shape}")
            if a.dtype != first.dtype:
                raise TypeError(f"{key} has dtype {a.dtype}, the other arrays {first.dtype}; "
                                "all must have one dtype")
        if first.dtype not in _CTYPES:
            raise TypeError(f"dtype {first.dtype} is not supported by backend 'cupy'; use "
                            "float32 or float64")
        for key, a in named.items():
            if key != "bias" and a.shape != first.shape:
                raise ValueError(f"{key} has shape {a.shape}, expected {first.shape}")
        if bias is not None and (first.ndim == 0 or bias.shape != first.shape[-1:]):
            raise ValueError(f"bias has shape {bias.shape}; it must be (size of the last "
                             f"axis,) of the arrays, whose shape is {first.shape}")
        return first.dtype

    def _launch(self, name: str, n: int, args: tuple[Any, ...]) -> None:
        """Launch kernel ``name`` over n entries on the current stream (asynchronously)."""
        if n == 0:
            return
        kernels, max_blocks = _device_kernels(self.xp.cuda.runtime.getDevice())
        blocks = min(-(-n // _THREADS), max_blocks)
        kernels[name]((blocks,), (_THREADS,), args)
