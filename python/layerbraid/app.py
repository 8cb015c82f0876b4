"""The App protocol: what the MGRIT engine calls back, and a base class that supplies it.

An app describes one time-stepping problem. The engine asks it for initial guesses (``init``),
to advance a state over one time step (``step``), and for vector operations (``clone``,
``sum``, ``norm``) and message packing (``bufsize``, ``pack``, ``unpack``). For states that
are arrays (NumPy or CuPy) or tuples of arrays, :class:`App` provides everything except
``init`` and ``step``::

    class Decay(layerbraid.App):
        def init(self, t):
            return np.ones(1) if t == self.tstart else np.zeros(1)

        def step(self, u, ustop, status):
            u /= 1.0 + (status.tstop - status.tstart)     # backward Euler for u' = -u

States are updated in place when possible: ``step`` and ``sum`` may modify their target and
return None, or return a new state that replaces it.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, Sequence, Union, runtime_checkable

import numpy as np

__all__ = ["App", "AppProtocol", "StepStatus", "AccessStatus", "BufferStatus", "State"]

#: A state: an array (NumPy or CuPy), a tuple of arrays, or any object the app's methods handle.
State = Any


class StepStatus(Protocol):
    """What ``step`` knows about its time step (valid only during the call)."""

    tstart: float
    tstop: float
    level: int
    nlevels: int
    iteration: int
    tindex: int


class AccessStatus(Protocol):
    """What ``access`` knows about the point it sees (valid only during the call)."""

    t: float
    tindex: int
    iteration: int
    level: int
    nlevels: int
    done: bool


class BufferStatus(Protocol):
    """Which message a buffer callback serves (valid only during the call)."""

    level: int
    tindex: int
    message_type: int


@runtime_checkable
class AppProtocol(Protocol):
    """Every method the engine calls. :class:`App` implements all but ``init`` and ``step``."""

    def init(self, t: float) -> State: ...

    def step(self, u: State, ustop: State, status: StepStatus) -> State | None: ...

    def clone(self, u: State) -> State: ...

    def sum(self, alpha: float, x: State, beta: float, y: State) -> State | None:
        """y = alpha x + beta y, in place, with no temporary in the engine's common cases."""
        xp = self.xp
        for xa, ya in zip(self._parts(x), self._parts(y)):
            if beta == 0.0:
                if alpha == 1.0:
                    xp.copyto(ya, xa)  # the engine's copy
                else:
                    xp.multiply(xa, alpha, out=ya)
            elif beta == 1.0:
                if alpha == 1.0:
                    ya += xa
                elif alpha == -1.0:
                    ya -= xa
                else:
                    ya += alpha * xa
            elif alpha == 1.0 and beta == -1.0:
                xp.subtract(xa, ya, out=ya)  # the coarse-grid correction u - v
            else:
                ya *= beta
                ya += alpha * xa
        return None

    def norm(self, u: State) -> float:
        """The Euclidean norm of all entries."""
        total = 0.0
        for a in self._parts(u):
            flat = a.reshape(-1)
            total += float(self.xp.vdot(flat, flat).real)
        return math.sqrt(total)

    # ---- messages ----

    def _ensure_layout(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        if self._layout is None:
            template = self.init(self.tstart)
            self._tuple_states = isinstance(template, tuple)
            self._layout = [(tuple(a.shape), np.dtype(a.dtype)) for a in self._parts(template)]
        return self._layout

    def bufsize(self, status: BufferStatus) -> int:
        """Bytes of one state (every state has the layout of ``init(tstart)``)."""
        return sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in self._ensure_layout())

    def pack(self, u: State, buffer: memoryview, status: BufferStatus) -> int:
        """Copy the state's arrays into the message buffer (one copy per array)."""
        offset = 0
        for a, (shape, dtype) in zip(self._parts(u), self._ensure_layout()):
            count = int(np.prod(shape))
            view = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(shape)
            if self.backend == "cupy":
                a.get(out=view)  # device to host, straight into the buffer
            else:
                np.copyto(view, a)
            offset += count * dtype.itemsize
        return offset

    def unpack(self, buffer: memoryview, status: BufferStatus) -> State:
        """A new state from the message buffer."""
        parts = []
        offset = 0
        for shape, dtype in self._ensure_layout():
            count = int(np.prod(shape))
            view = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(shape)
            parts.append(self.xp.array(view))  # a copy: the buffer is reused
            offset += count * dtype.itemsize
        return tuple(parts) if self._tuple_states else parts[0]
