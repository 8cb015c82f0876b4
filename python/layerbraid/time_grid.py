"""The fine time grid of a solve (``time_grid=`` of :class:`~layerbraid.braid.Solver`): an
array of times or a function of the point indices, checked and turned into the engine's
time-grid function.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, Callable

import numpy as np

from .solver_options import _NTIME_MAX, _int_in


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_times(t: np.ndarray, first: int, what: str) -> None:
    """Finite and strictly increasing; ``t[k]`` is point ``first + k``."""
    bad = ~np.isfinite(t)
    if bad.any():
        k = _first_bad(bad)
        raise ValueError(f"{what}: time point {first + k} is {float(t[k])!r}; every time must be "
                         "finite")
    steps = np.diff(t)
    if (steps <= 0).any():
        k = _first_bad(steps <= 0)
        raise ValueError(f"{what} must be strictly increasing: time point {first + k} is "
                         f"{float(t[k])!r} and time point {first + k + 1} is {float(t[k + 1])!r}")


def _as_times(values: Any, what: str) -> np.ndarray:
    """A 1-D float64 array of real times (TypeError for anything else)."""
    try:
        t = np.asarray(values)
    except Exception as e:  # e.g. a CuPy array: implicit conversion is refused
        raise TypeError(f"{what} must be a NumPy array or a sequence of floats, got "
                        f"{type(values).__name__} ({e})") from None
    if t.dtype == bool or t.dtype.kind not in "iuf":
        raise TypeError(f"{what} must hold real numbers, got dtype {t.dtype} "
                        f"({type(values).__name__})")
    if t.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {t.shape}")
    return np.ascontiguousarray(t, dtype=np.float64)


def _check_end(name: str, given: Any, grid_value: float, where: str) -> float:
    if given is None:
        return grid_value
    if isinstance(given, bool) or not isinstance(given, Real):
        raise TypeError(f"{name} must be a finite float, got {given!r}")
    if float(given) != grid_value:
        raise ValueError(f"{name}={given!r} does not match the time grid, whose {where} is "
                         f"{grid_value!r}; leave {name} out or give the grid's value")
    return grid_value


def _time_grid(grid: Any, tstart: Any, tstop: Any,
               ntime: Any) -> tuple[float, float, int, Callable[[int, int], np.ndarray]]:
    """tstart, tstop, ntime and the engine's time-grid function from ``time_grid``."""
    if callable(grid):
        if ntime is None:
            raise TypeError("ntime is required with a time_grid function (it cannot be "
                            "derived from it)")
        n = _int_in("ntime", ntime, 1, _NTIME_MAX)
        ends = _as_times(grid(np.array([0, n], dtype=np.int64)), "time_grid(indices)")
        if ends.shape != (2,):
            raise ValueError(f"time_grid(indices) must return one time per index: got "
                             f"{ends.shape[0]} for the 2 indices [0, {n}]")
        _check_times(ends, 0, f"time_grid([0, {n}]) (the first and the last point)")
        t0 = _check_end("tstart", tstart, float(ends[0]), "first time (point 0)")
        t1 = _check_end("tstop", tstop, float(ends[1]), f"last time (point {n})")
        return t0, t1, n, _GridFunction(grid, t0, t1, n)
    t = _as_times(grid, "time_grid")
    if t.shape[0] < 2:
        raise ValueError(f"time_grid needs at least 2 times (ntime + 1, ntime >= 1), got "
                         f"{t.shape[0]}")
    if t.shape[0] - 1 > _NTIME_MAX:
        raise ValueError(f"time_grid has {t.shape[0]} times; at most {_NTIME_MAX + 1} "
                         f"(ntime <= {_NTIME_MAX})")
    if ntime is not None:
        n = _int_in("ntime", ntime, 1, _NTIME_MAX)
        if n != t.shape[0] - 1:
            raise ValueError(f"ntime={n} does not match time_grid: its {t.shape[0]} times "
                             f"make ntime={t.shape[0] - 1} steps (a grid has ntime + 1 times)")
    _check_times(t, 0, "time_grid")
    t0 = _check_end("tstart", tstart, float(t[0]), "first time")
    t1 = _check_end("tstop", tstop, float(t[-1]), "last time")
    t = t.copy()  # the checked times: later changes to the caller's array do not reach them
    t.setflags(write=False)

    def times(ilower: int, iupper: int) -> np.ndarray:
        return t[ilower:iupper + 1]

    return t0, t1, t.shape[0] - 1, times


class _GridFunction:
    """The engine's time-grid function over the user's ``f(indices) -> times``: every chunk
    checked (length, finite, strictly increasing, inside [tstart, tstop], exact ends)."""

    def __init__(self, f: Callable[[np.ndarray], Any], tstart: float, tstop: float,
                 ntime: int) -> None:
        self.f, self.tstart, self.tstop, self.ntime = f, tstart, tstop, ntime

    def __call__(self, ilower: int, iupper: int) -> np.ndarray:
        indices = np.arange(ilower, iupper + 1, dtype=np.int64)
        what = f"time_grid(indices {ilower}..{iupper})"
        t = _as_times(self.f(indices), what)
        if t.shape[0] != indices.shape[0]:
            raise ValueError(f"{what} returned {t.shape[0]} times for {indices.shape[0]} "
                             "indices; it must return one time per index")
        _check_times(t, ilower, what)
        if ilower == 0 and t[0] != self.tstart:
            raise ValueError(f"{what} gave {float(t[0])!r} for point 0, not tstart={self.tstart!r} "
                             "(it gave that before the solve)")
        if iupper == self.ntime and t[-1] != self.tstop:
            raise ValueError(f"{what} gave {float(t[-1])!r} for point {self.ntime}, not "
                             f"tstop={self.tstop!r} (it gave that before the solve)")
        outside = (t < self.tstart) | (t > self.tstop)
        if outside.any():
            k = _first_bad(outside)
            raise ValueError(f"{what}: time point {ilower + k} is {float(t[k])!r}, outside "
                             f"[tstart, tstop] = [{self.tstart!r}, {self.tstop!r}]")
        return t
