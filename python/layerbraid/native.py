"""The native backend: forward and adjoint solves through the residual layers in C++.

``Propagator(net, backend="native")`` hands the layer solves to the C++ engine app
``layerbraid::resnet::Propagation`` (module ``layerbraid._native``): every step, sum, norm and
buffer callback runs in C++ on OpenBLAS (the ``scipy-openblas32`` wheel), and the GIL is
released for the whole solve. The opening layer, the classifier and the regularisers, a few
operations per batch, stay in NumPy. Results equal the NumPy backend to round-off: the kernels
perform the same operations in the same order.

The C++ app runs one BLAS thread per rank unless OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is
set. Ctrl-C reaches a running solve: every step (and, on a rank waiting for another, every
50 ms) the C++ app reads the interrupt flag of :func:`layerbraid._core.set_interrupt`, and at
most every 50 ms it runs Python's signal handlers (in a solve on the main thread, the only one
that runs them). A solve stopped by the flag raises :class:`layerbraid.Interrupted` (a
KeyboardInterrupt) on that rank, one stopped by an exception of a signal handler (the default
SIGINT handler's KeyboardInterrupt) raises that exception, and the other ranks raise
:class:`layerbraid.RemoteRankError`. The next solve starts afresh.

The element-wise passes run on AVX2 where the CPU has it; ``LAYERBRAID_NATIVE_ISA=baseline``
forces plain x86-64 code (``avx2`` insists on AVX2), read once per process (:func:`active_isa`).
Both give bitwise equal results.
"""

from __future__ import annotations

import ctypes
import time
from typing import Any, Mapping

import numpy as np
from mpi4py import MPI

from .braid import SolveResult
from .nn.layers import Conv, Dense
from .nn.network import ResNet

__all__ = ["NativeLayers", "native_options", "NATIVE_OPTIONS", "active_isa", "blas_description"]

#: The solver options the native backend takes (a subset of :data:`layerbraid.braid.OPTIONS`;
#: ``nrelax`` per level only as ``{-1: coarse, 0: fine}``).
NATIVE_OPTIONS = ("max_levels", "min_coarse", "cfactor", "nrelax", "abs_tol", "max_iter",
                  "skip", "print_level")

_native: Any = None


def _module() -> Any:
    """layerbraid._native, loaded on first use (after the wheel's OpenBLAS, so that the
    module finds it wherever pip put the two packages)."""
    global _native
    if _native is None:
        try:
            import scipy_openblas32

            ctypes.CDLL(f"{scipy_openblas32.get_lib_dir()}/"
                        f"{scipy_openblas32.get_library(fullname=True)}", mode=ctypes.RTLD_GLOBAL)
        except ImportError as e:
            raise ImportError("backend='native' needs the scipy-openblas32 wheel "
                              "(pip install scipy-openblas32)") from e
        from . import _native as module

        _native = module
    return _native


def blas_description() -> str:
    """The BLAS the native backend was built on, and its thread count."""
    m = _module()
    return f"{m.blas_description()}, {m.blas_threads()} thread(s)"


def active_isa() -> str:
    """The instruction set the native backend's element-wise passes run with: "avx2" or
    "baseline" (from LAYERBRAID_NATIVE_ISA = auto | avx2 | baseline; ValueError for a value
    that cannot be honoured)."""
    return str(_module().active_isa())


def native_options(options: Mapping[str, Any], warm_start: bool, spatial_coarsen: int = 0
                   ) -> Any:
    """The checked solver options (:func:`layerbraid.braid.check_options` output) as the C++
    app's SolverOptions, with the conv layers' spatial coarsening (images halved on the coarse
    levels 1..spatial_coarsen); ValueError naming an option the native backend does not
    take."""
    unsupported = sorted(set(options) - set(NATIVE_OPTIONS))
    if unsupported:
        raise ValueError(f"backend='native' does not support the solver option(s) "
                         f"{', '.join(map(repr, unsupported))}; it takes "
                         f"{', '.join(NATIVE_OPTIONS)} (use backend='numpy' for the others)")
    o = _module().SolverOptions()
    for name in ("max_levels", "min_coarse", "max_iter", "skip", "print_level"):
        if name in options:
            setattr(o, name, options[name])
    cfactor = options.get("cfactor", 2)
    if isinstance(cfactor, Mapping):
        values = set(cfactor.values())
        if len(values) != 1:
            raise ValueError(f"backend='native' takes one cfactor for every level, got {cfactor}")
        cfactor = values.pop()
    o.cfactor = cfactor
    nrelax = options.get("nrelax", 1)
    if isinstance(nrelax, Mapping):
        if not set(nrelax) <= {-1, 0}:
            raise ValueError(f"backend='native' takes nrelax per level only as "
                             f"{{-1: coarse levels, 0: finest level}}, got {nrelax}")
        o.nrelax = nrelax.get(-1, 1)
        o.fine_nrelax = nrelax.get(0, -1)
    else:
        o.nrelax = nrelax
    abs_tol = options.get("abs_tol")
    if abs_tol is not None:
        # the C++ app needs a positive tolerance; 0 (run max_iter cycles) is the smallest one
        o.abs_tol = abs_tol if abs_tol > 0 else np.nextafter(0.0, 1.0)
    o.warm_start = bool(warm_start)
    o.spatial_coarsen = int(spatial_coarsen)
    return o


class NativeLayers:
    """The forward and adjoint layer solves of one batch size, in C++.

    Parameters and gradients are exchanged as dicts ``{layer n: {"weight", "bias"}}`` of the
    layers this rank owns (:attr:`owned`). Collective: every rank calls forward and adjoint.
    """

    def __init__(self, net: ResNet, comm: MPI.Comm, batch: int, forward_options: Any,
                 adjoint_options: Any) -> None:
        """The options are :func:`native_options` results."""
        layer = net.layer
        if isinstance(layer, Dense):
            kind, dims = "dense", [layer.width]
        elif isinstance(layer, Conv):
            kind, dims = "conv", [layer.channels, layer.height, layer.width, layer.kernel_size]
        else:
            raise ValueError(f"backend='native' supports dense and conv layers, not "
                             f"{type(layer).__name__}")
        m = _module()
        cls = m.Propagation64 if net.np_dtype == np.float64 else m.Propagation32
        self._prop = cls(kind, dims, net.activation, net.depth, net.final_time, batch,
                         comm.py2f(), forward_options, adjoint_options,
                         list(layer.param_shapes()["weight"]))
        self._net, self._batch = net, batch
        self._abs_tols = (forward_options.abs_tol, adjoint_options.abs_tol)
        first, count = self._prop.owned_layers()
        self.owned = range(first, first + count)

    def forward(self, params: Mapping[int, Mapping[str, np.ndarray]],
                u0: np.ndarray | None) -> tuple[SolveResult, np.ndarray | None]:
        """The forward solve from u0 (rank 0; None elsewhere); its result and u_N (last rank,
        None elsewhere)."""
        dtype = self._net.np_dtype
        weights = [np.ascontiguousarray(params[n]["weight"], dtype=dtype) for n in self.owned]
        biases = [np.ascontiguousarray(params[n]["bias"], dtype=dtype) for n in self.owned]
        start = time.perf_counter()
        info = self._prop.forward(weights, biases, None if u0 is None else self._flat(u0))
        result = self._result(info, time.perf_counter() - start, self._abs_tols[0])
        return result, self._state(self._prop.final_state())

    def adjoint(self, lam_last: np.ndarray | None) -> tuple[SolveResult, np.ndarray | None,
                                                             dict[str, np.ndarray]]:
        """The adjoint solve from lambda_N (last rank; None elsewhere) with the states of the
        last forward solve: its result, lambda_0 (rank 0, None elsewhere) and the gradients of
        this rank's layers, stacked: {"weight": (layers, ...), "bias": (layers, ...)}."""
        start = time.perf_counter()
        info = self._prop.adjoint(None if lam_last is None else self._flat(lam_last))
        result = self._result(info, time.perf_counter() - start, self._abs_tols[1])
        weights, biases = self._prop.gradient()
        return result, self._state(self._prop.initial_adjoint()), {"weight": weights,
                                                                    "bias": biases}

    def record(self, direction: str, on: bool) -> None:
        """Keep every point's state after each solve of ``direction`` ("forward" or
        "adjoint"), or stop (and drop them)."""
        self._prop.record_states(direction, on)

    def recorded_states(self, direction: str) -> dict[int, np.ndarray]:
        """The last recorded solve's states at this rank's points, by time index."""
        return {i: self._state(u) for i, u in self._prop.recorded_states(direction).items()}

    def warm_state(self) -> dict[str, np.ndarray]:
        """The C-points the warm-started solves kept, named as Propagator.warm_state names
        them (``states.<forward|adjoint>.<time index>``)."""
        return {f"states.{d}.{i}": self._state(u)
                for d in ("forward", "adjoint") for i, u in self._prop.kept_states(d).items()}

    def restore_warm_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Start the next solves from :meth:`warm_state` output (states of another batch
        size are ignored, as the NumPy backend ignores them)."""
        shape = self._net.layer.state_shape(self._batch)
        for d in ("forward", "adjoint"):
            prefix = f"states.{d}."
            chosen = {int(k[len(prefix):]): self._flat(v) for k, v in state.items()
                      if k.startswith(prefix) and tuple(v.shape) == shape}
            if chosen:
                self._prop.restore_states(d, chosen)

    def _flat(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=self._net.np_dtype).reshape(-1)

    def _state(self, flat: np.ndarray | None) -> np.ndarray | None:
        return None if flat is None else flat.reshape(self._net.layer.state_shape(self._batch))

    @staticmethod
    def _result(info: Mapping[str, Any], wall: float, abs_tol: float) -> SolveResult:
        # as Solver.drive reports it: the engine repeats the last residual norm
        history = tuple(None if r < 0 else float(r) for r in info["rnorms"][:-1])
        known = [r for r in history if r is not None]
        nlevels = int(info["levels"])
        converged = nlevels == 1 or bool(known and known[-1] < abs_tol)
        return SolveResult(iterations=int(info["iterations"]), residual_history=history,
                           nlevels=nlevels, wall_time=wall, converged=converged)
