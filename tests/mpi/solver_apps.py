"""Small apps shared by tests/test_solver.py and the MPI scripts beside this file.

Not a test script: the scripts import it (their directory is on sys.path when they run), and
tests/test_solver.py loads it by path.
"""

from __future__ import annotations

import math
import struct
import weakref
from typing import Any

import numpy as np

import layerbraid

PI = 3.14159265358979323846


class BoomError(Exception):
    """The exception the failure tests raise from a callback."""


# ---- scalar decay: the scalar_ode problem, in either array backend ----

class ScalarDecay(layerbraid.App):
    """u' = lam u, backward Euler; the state is a 1-element array of the chosen backend."""

    def __init__(self, lam: float = -1.0, backend: str = "numpy") -> None:
        super().__init__(backend=backend)
        self.lam = lam
        self.solution: dict[int, float] = {}

    def init(self, t: float) -> Any:
        return self.xp.array([1.0 if t == self.tstart else 0.456])

    def step(self, u: Any, ustop: Any, status: Any) -> None:
        u /= 1.0 - self.lam * (status.tstop - status.tstart)

    def access(self, u: Any, status: Any) -> None:
        if status.done and status.level == 0:
            self.solution[status.tindex] = float(u[0])


# ---- heat equation: the heat1d problem, in either array backend ----

def heat_backward_euler(d: list[float], dt: float, h: float) -> list[float]:
    """(I - dt D_xx) u_new = d on the interior points, zero boundary values: the Thomas
    algorithm of examples/c/heat1d.c, on Python floats."""
    n = len(d)
    d = list(d)
    cp = [0.0] * n
    r = dt / (h * h)
    diag, off = 1.0 + 2.0 * r, -r
    cp[1] = off / diag
    d[1] = d[1] / diag
    for i in range(2, n - 1):
        denom = diag - off * cp[i - 1]
        cp[i] = off / denom
        d[i] = (d[i] - off * d[i - 1]) / denom
    for i in range(n - 3, 0, -1):
        d[i] -= cp[i] * d[i + 1]
    d[0] = d[n - 1] = 0.0
    return d


class HeatXP(layerbraid.App):
    """u_t = u_xx on [0, pi], backward Euler + central differences (Thomas on the host).

    The arithmetic of the step happens on Python floats, so NumPy and CuPy states give the
    same steps; clone, sum, norm, pack and unpack are the App's backend operations.
    """

    def __init__(self, nspace: int = 17, backend: str = "numpy") -> None:
        super().__init__(backend=backend)
        self.nspace = nspace
        self.h = PI / (nspace - 1)
        self.solution: dict[int, np.ndarray] = {}

    def init(self, t: float) -> Any:
        values = [math.sin(j * self.h) if t == self.tstart else
                  (j * self.h) * (PI - j * self.h) / (PI * PI) for j in range(self.nspace)]
        values[0] = values[-1] = 0.0
        return self.xp.asarray(np.array(values))

    def step(self, u: Any, ustop: Any, status: Any) -> None:
        d = heat_backward_euler(u.tolist(), status.tstop - status.tstart, self.h)
        u[...] = self.xp.asarray(np.array(d))

    def access(self, u: Any, status: Any) -> None:
        if status.done and status.level == 0:
            host = u.get() if self.backend == "cupy" else u
            self.solution[status.tindex] = np.array(host, dtype=np.float64)


# ---- a ResNet-like forward Euler step (layer-serial == max_levels 1) ----

class ResNetLike(layerbraid.App):
    """u_{n+1} = u_n + dt tanh(W u_n + b): the forward propagation of a residual network."""

    def __init__(self, width: int = 6, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.W = rng.standard_normal((width, width)) / math.sqrt(width)
        self.b = rng.standard_normal(width) * 0.1
        self.u0 = rng.standard_normal(width)
        self.solution: dict[int, np.ndarray] = {}

    def init(self, t: float) -> np.ndarray:
        return self.u0.copy() if t == self.tstart else np.zeros_like(self.u0)

    def forward(self, u: np.ndarray, dt: float) -> np.ndarray:
        return u + dt * np.tanh(self.W @ u + self.b)

    def step(self, u: np.ndarray, ustop: np.ndarray, status: Any) -> np.ndarray:
        return self.forward(u, status.tstop - status.tstart)  # a new state replaces u

    def access(self, u: np.ndarray, status: Any) -> None:
        if status.done and status.level == 0:
            self.solution[status.tindex] = u.copy()

    def sequential(self, dt: float) -> list[np.ndarray]:
        """The plain loop over ntime steps of size dt, every state kept."""
        states = [self.u0.copy()]
        for _ in range(self.ntime):
            states.append(self.forward(states[-1], dt))
        return states


# ---- tuple states: two arrays of different shapes ----

class CoupledPair(layerbraid.App):
    """State (u, v), u of shape (3,), v of shape (2, 2): a linear damped system, forward Euler.

    u' = -u + 0.1 sum(v),  v' = -2 v + 0.1 mean(u).
    """

    def __init__(self) -> None:
        super().__init__()
        self.solution: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def init(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        if t == self.tstart:
            return np.array([1.0, -0.5, 0.25]), np.array([[0.5, 1.0], [-1.0, 2.0]])
        return np.zeros(3), np.zeros((2, 2))

    def forward(self, state: tuple[np.ndarray, np.ndarray], dt: float) -> None:
        u, v = state
        du = -u + 0.1 * v.sum()
        dv = -2.0 * v + 0.1 * u.mean()
        u += dt * du
        v += dt * dv

    def step(self, state: Any, ustop: Any, status: Any) -> None:
        self.forward(state, status.tstop - status.tstart)

    def access(self, state: Any, status: Any) -> None:
        if status.done and status.level == 0:
            self.solution[status.tindex] = (state[0].copy(), state[1].copy())

    def sequential(self, dt: float) -> list[tuple[np.ndarray, np.ndarray]]:
        state = self.init(self.tstart)
        states = [(state[0].copy(), state[1].copy())]
        for _ in range(self.ntime):
            self.forward(state, dt)
            states.append((state[0].copy(), state[1].copy()))
        return states


# ---- an app written against AppProtocol only (no layerbraid.App) ----

class Vec:
    """A plain Python vector: a list of floats."""

    __slots__ = ("values", "__weakref__")

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)


class ProtocolDecay:
    """u' = -u on a 2-vector of Python floats, backward Euler, every method written by hand.

    step and sum return new states (the engine replaces the old ones); pack returns the bytes
    it wrote.
    """

    SIZE = 2

    def __init__(self, tstart: float) -> None:
        self.tstart = tstart
        self.solution: dict[int, list[float]] = {}

    def init(self, t: float) -> Vec:
        return Vec([1.0, 2.0] if t == self.tstart else [0.3, 0.3])

    def step(self, u: Vec, ustop: Vec, status: Any) -> Vec:
        dt = status.tstop - status.tstart
        return Vec([x / (1.0 + dt) for x in u.values])

    def clone(self, u: Vec) -> Vec:
        return Vec(u.values)

    def sum(self, alpha: float, x: Vec, beta: float, y: Vec) -> Vec:
        return Vec([alpha * a + beta * b for a, b in zip(x.values, y.values)])

    def norm(self, u: Vec) -> float:
        return math.sqrt(sum(a * a for a in u.values))

    def access(self, u: Vec, status: Any) -> None:
        if status.done and status.level == 0:
            self.solution[status.tindex] = list(u.values)

    def bufsize(self, status: Any) -> int:
        return 8 * self.SIZE

    def pack(self, u: Vec, buffer: memoryview, status: Any) -> int:
        struct.pack_into(f"<{self.SIZE}d", buffer, 0, *u.values)
        return 8 * self.SIZE

    def unpack(self, buffer: memoryview, status: Any) -> Vec:
        return Vec(list(struct.unpack_from(f"<{self.SIZE}d", buffer, 0)))


# ---- counting the states an app creates, and how many are still alive ----

class TrackedArray(np.ndarray):
    """An ndarray subclass, so that states can be followed with weak references."""


class StateCounter:
    """created - released = the states still alive (released: collected by Python)."""

    def __init__(self) -> None:
        self.created = 0
        self.released = 0

    def _released(self) -> None:
        self.released += 1

    def track(self, a: np.ndarray) -> TrackedArray:
        t = a if isinstance(a, TrackedArray) else a.view(TrackedArray)
        self.created += 1
        weakref.finalize(t, self._released)
        return t

    @property
    def live(self) -> int:
        return self.created - self.released


class TrackedDecay(layerbraid.App):
    """Scalar decay whose every state (init, clone, unpack) is counted by ``counter``.

    With ``fail_rank`` set, step raises BoomError on that rank in the second cycle.
    """

    def __init__(self, counter: StateCounter, fail_rank: int | None = None, rank: int = 0):
        super().__init__()
        self.counter = counter
        self.fail = fail_rank is not None and fail_rank == rank

    def init(self, t: float) -> TrackedArray:
        return self.counter.track(np.array([1.0 if t == self.tstart else 0.456, 0.5]))

    def step(self, u: np.ndarray, ustop: np.ndarray, status: Any) -> None:
        if self.fail and status.iteration >= 1 and status.level == 0:
            raise BoomError("boom")
        u /= 1.0 + (status.tstop - status.tstart)

    def clone(self, u: np.ndarray) -> TrackedArray:
        return self.counter.track(super().clone(u))

    def unpack(self, buffer: memoryview, status: Any) -> TrackedArray:
        return self.counter.track(super().unpack(buffer, status))
