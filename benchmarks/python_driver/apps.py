"""The apps the Python-driver benchmarks drive: do-nothing steps and Dahlquist's test problem.

Dahlquist: u' = lambda u, u(0) = 1, lambda = -1, backward Euler u_{n+1} = u_n / (1 - lambda dt)
(the problem of PyMGRIT's ``pymgrit.dahlquist.dahlquist.Dahlquist`` with method 'BE').
"""

from __future__ import annotations

import collections
import math
import struct
from typing import Any

import numpy as np

import layerbraid

LAMBDA = -1.0


class NoopApp(layerbraid.App):
    """A one-element NumPy state and a step that does nothing: what is left is the dispatch."""

    def init(self, t: float) -> np.ndarray:
        return np.ones(1) if t == self.tstart else np.zeros(1)

    def step(self, u, ustop, status):
        pass


class StatusApp(NoopApp):
    """Reads the step's times from the status, does nothing else."""

    def step(self, u, ustop, status):
        status.tstart
        status.tstop


class DahlquistApp(NoopApp):
    """Backward Euler for u' = lambda u on a one-element NumPy array, updated in place."""

    def step(self, u, ustop, status):
        u *= 1.0 / (1.0 - LAMBDA * (status.tstop - status.tstart))


class FloatDahlquistApp:
    """The same problem with Python floats as states (the representation PyMGRIT's Dahlquist
    uses), written against layerbraid.AppProtocol directly: the cheapest vector operations
    Python allows, so what is left of a callback is the dispatch."""

    _pack = struct.Struct("d")

    def __init__(self, tstart: float = 0.0) -> None:
        self.tstart = tstart

    def init(self, t: float) -> float:
        return 1.0 if t == self.tstart else 0.0

    def step(self, u: float, ustop: Any, status: Any) -> float:
        return u / (1.0 - LAMBDA * (status.tstop - status.tstart))

    def clone(self, u: float) -> float:
        return u  # floats are immutable: sharing is a copy

    def sum(self, alpha: float, x: float, beta: float, y: float) -> float:
        return alpha * x + beta * y

    def norm(self, u: float) -> float:
        return abs(u)

    def access(self, u: float, status: Any) -> None:
        pass

    def bufsize(self, status: Any) -> int:
        return 8

    def pack(self, u: float, buffer: memoryview, status: Any) -> int:
        self._pack.pack_into(buffer, 0, u)
        return 8

    def unpack(self, buffer: memoryview, status: Any) -> float:
        return self._pack.unpack_from(buffer, 0)[0]


class Counting:
    """Wraps an app and counts its callbacks (and the (alpha, beta) pairs of sum)."""

    METHODS = ("init", "step", "clone", "sum", "norm", "access", "bufsize", "pack", "unpack")

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: collections.Counter[str] = collections.Counter()
        self.sum_kinds: collections.Counter[tuple[float, float]] = collections.Counter()
        for name in self.METHODS:
            setattr(self, name, self._wrap(name, getattr(app, name)))

    def _wrap(self, name: str, fn: Any) -> Any:
        calls = self.calls

        def wrapped(*args: Any) -> Any:
            calls[name] += 1
            if name == "sum":
                self.sum_kinds[(args[0], args[2])] += 1
            return fn(*args)

        return wrapped

    def bind(self, tstart: float, tstop: float, ntime: int) -> None:
        if isinstance(self.app, layerbraid.App):
            self.app.bind(tstart, tstop, ntime)


def dahlquist_exact(tstart: float, tstop: float, ntime: int) -> float:
    """The backward Euler solution at tstop on a uniform grid of ntime steps."""
    dt = (tstop - tstart) / ntime
    return math.exp(-ntime * math.log1p(-LAMBDA * dt))
