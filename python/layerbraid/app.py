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

An app may also define ``residual(ustop, r, status)`` (optional; the solver looks for it). The
engine then measures residuals with it, and ``step`` receives the full-approximation-scheme
right-hand side as the keyword ``fstop`` and must solve the app's equation with it::

        def residual(self, ustop, r, status):   # r holds u(tstart): r <- A(ustop, r)
            r[:] = (1.0 + (status.tstop - status.tstart)) * ustop - r

        def step(self, u, ustop, status, fstop=None):   # solve A(u_new, u) = fstop
            if fstop is not None:
                u += fstop
            u /= 1.0 + (status.tstop - status.tstart)

Apps without ``residual`` are called ``step(u, ustop, status)`` as always. An app may also
define ``coarsen(fu, status)`` and ``refine(cu, status)`` (both, optional) to give coarser time
levels coarser spatial grids.

With ``Solver(..., refine=True)`` a step on the fine grid may ask for its interval to be
refined, and the solve goes on on the refined grid::

        def step(self, u, ustop, status):
            u /= 1.0 + (status.tstop - status.tstart)
            if status.level == 0 and status.nrefine < 2:
                status.set_rfactor(2)                  # halve this step (twice in all)

**Delta correction** (``Solver(..., delta_rank=k)``): the app gives the initial basis with
``init_basis(t, index)`` (and, unless it is an :class:`App`, ``inner_prod(u, v)``), and
``step`` also propagates the basis vectors it is handed with its linearisation::

        def init_basis(self, t, index):
            e = np.zeros(3)
            e[index] = 1.0
            return e

        def step(self, u, ustop, status):
            jac = self.jacobian(u, status.tstop - status.tstart)   # of the step at u
            for k in range(len(status.basis)):
                status.basis[k] = jac @ status.basis[k]
            u[:] = self.advance(u, status.tstop - status.tstart)

**The adjoint** (``Solver(..., adjoint=True)``, see :class:`AdjointApp`). The objective is a
sum over the fine time points, J = F(sum_i objective(u_i)) (F the identity unless the app has
``postprocess_objective``); the app says how each piece is differentiated, and the solver
returns J and the app's accumulated design gradient. For u' = lambda u with design lambda::

        def objective(self, u, status):            # this point's term of J
            return u[0] * u[0] / self.ntime

        def objective_diff(self, u, u_bar, f_bar, status):   # u_bar is given zeroed
            u_bar[0] = 2.0 * u[0] / self.ntime * f_bar        # (no lambda in the term)

        def step_diff(self, ustop, u, ustop_bar, u_bar, status):
            dt = status.tstop - status.tstart
            denom = 1.0 - self.lam * dt                       # step: u_new = u / denom
            self.grad += u[0] * dt / denom**2 * u_bar[0]      # d u_new / d lambda
            u_bar[0] = u_bar[0] / denom                       # d u_new / d u, transposed

        def reset_gradient(self):
            self.grad = 0.0

        def gradient(self):                        # optional: summed over ranks by the solver
            return self.grad
"""

from __future__ import annotations

import math
from typing import Any, Protocol, Sequence, Union, runtime_checkable

import numpy as np

__all__ = ["App", "AppProtocol", "AdjointApp", "StepStatus", "AccessStatus", "BufferStatus",
           "CoarsenRefStatus", "ObjectiveStatus", "State"]

#: A state: an array (NumPy or CuPy), a tuple of arrays, or any object the app's methods handle.
State = Any


class StepStatus(Protocol):
    """What ``step`` knows about its time step (valid only during the call).

    ``nrefine`` is the number of temporal refinements done so far and ``ntpoints`` the fine
    grid's current number of time steps (``Solver(refine=True)`` grows it);
    ``error_estimate`` the Richardson estimate of the local error at ``tstop`` (fine grid,
    ``Solver(richardson=...)``), None where there is none. With Delta correction
    (``Solver(delta_rank=k)``) ``basis`` holds the ``delta_rank`` basis vectors this step must
    also propagate, with the step's linearisation at u (the engine's own states: change them in
    place or assign ``status.basis[j] = new``); it is empty where there are none. With
    ``refine=True``, a fine-grid step may ask for its interval to be refined:
    ``set_rfactor(r)`` into r equal steps (an int >= 1), or ``set_refinement_dt(dts)`` into
    ``len(dts) + 1`` steps whose first sizes are ``dts`` (each > 0, together shorter than the
    interval; the last step is what remains). A bad request raises ValueError or TypeError
    from the step.
    """

    tstart: float
    tstop: float
    level: int
    nlevels: int
    iteration: int
    tindex: int
    nrefine: int
    ntpoints: int
    error_estimate: float | None
    delta_rank: int
    basis: Sequence[State]

    def set_rfactor(self, rfactor: int) -> None: ...

    def set_refinement_dt(self, dts: Any, rfactor: int | None = None) -> None: ...


class AccessStatus(Protocol):
    """What ``access`` knows about the point it sees (valid only during the call).

    After temporal refinement ``tindex`` runs over the refined grid (0..``ntpoints``) and
    ``t`` is the point's time on it; ``error_estimate`` is the Richardson estimate of the
    local error at the point (None where there is none). With Delta correction ``basis``
    holds the point's ``delta_rank`` basis vectors (with ``Solver(lyapunov=...)``: the
    Lyapunov vector estimates) and ``local_lyapunov_exponents`` their local exponents (empty
    where there are none).
    """

    t: float
    tindex: int
    iteration: int
    level: int
    nlevels: int
    done: bool
    nrefine: int
    ntpoints: int
    error_estimate: float | None
    delta_rank: int
    basis: Sequence[State]
    local_lyapunov_exponents: list[float]


class BufferStatus(Protocol):
    """Which message a buffer callback serves (valid only during the call)."""

    level: int
    tindex: int
    message_type: int

    def set_basis_size(self, size: int) -> None: ...


class CoarsenRefStatus(Protocol):
    """Where ``coarsen``/``refine`` move a state (valid only during the call); ``level`` is the
    finer of the two time levels, ``tindex`` the point's index on the coarser one,
    ``ftprior``/``ftstop`` and ``ctprior``/``ctstop`` the neighbouring times of point ``t``
    on the finer and on the coarser level."""

    t: float
    tindex: int
    iteration: int
    level: int
    nlevels: int
    ftprior: float
    ftstop: float
    ctprior: float
    ctstop: float


class ObjectiveStatus(Protocol):
    """Which fine time point an objective term belongs to (valid only during the call):
    ``t`` and ``tindex``, the ``iteration`` of the piggy-back iteration, ``level`` (0: the
    objective is taken on the fine grid), ``nlevels``, ``nrefine``, ``ntpoints`` and the
    state's halting tolerance ``tol``."""

    t: float
    tindex: int
    iteration: int
    level: int
    nlevels: int
    nrefine: int
    ntpoints: int
    tol: float


@runtime_checkable
class AdjointApp(Protocol):
    """What ``Solver(..., adjoint=True)`` calls besides the :class:`AppProtocol` methods
    (XBraid's objectiveT, objectiveT_diff, step_diff and reset_gradient).

    One drive runs the piggy-back iteration: every MGRIT cycle of the state is recorded and
    then differentiated backwards, so the objective and the adjoint converge together.
    ``objective_diff`` and ``step_diff`` are called in the adjoint sweeps only; each adds its
    design derivative (times the adjoint it is given) into a gradient the app keeps, which
    ``reset_gradient`` zeroes before every sweep. After the drive that gradient is this rank's
    share: :attr:`SolveResult.gradient` is ``gradient()`` summed over the ranks.

    - ``objective(u, status) -> float``: the term of J at time ``status.t``. Called for every
      fine point in the objective window (``tstart_objective <= t <= tstop_objective``).
    - ``objective_diff(u, u_bar, f_bar, status)``: ``u_bar`` arrives zeroed, shaped like u; it
      must become ``f_bar`` times d objective / du (in place, or return the new state), and
      ``f_bar`` times d objective / d design goes into the gradient.
    - ``step_diff(ustop, u, ustop_bar, u_bar, status)``: the transposed derivative of
      ``step`` from ``status.tstart`` to ``status.tstop``: ``u`` is the step's input and
      ``ustop`` its result; ``u_bar`` holds the adjoint of the result on entry and must hold
      the adjoint of the input on return (in place, or return it); the design derivative
      times the entry ``u_bar`` goes into the gradient. ``ustop_bar`` (the adjoint of step's
      initial guess) may be ignored.
    - ``reset_gradient()``: zero the gradient.

    Optional: ``gradient() -> float | array | tuple of arrays`` (this rank's gradient), and
    together ``postprocess_objective(J) -> float`` with ``postprocess_objective_diff(J) ->
    float`` (J = F(sum of the terms) and dF/dsum).
    """

    def objective(self, u: State, status: ObjectiveStatus) -> float: ...

    def objective_diff(self, u: State, u_bar: State, f_bar: float,
                       status: ObjectiveStatus) -> State | None: ...

    def step_diff(self, ustop: State, u: State, ustop_bar: State, u_bar: State,
                  status: StepStatus) -> State | None: ...

    def reset_gradient(self) -> None: ...


@runtime_checkable
class AppProtocol(Protocol):
    """Every method the engine calls. :class:`App` implements all but ``init`` and ``step``.

    Optional, and not part of the runtime check (see :class:`App`):
    ``residual(ustop, r, status) -> State | None`` (an app that has it gets
    ``step(u, ustop, status, fstop=...)``), and ``coarsen(fu, status) -> State`` with
    ``refine(cu, status) -> State`` (spatial coarsening between time levels).
    """

    def init(self, t: float) -> State: ...

    def step(self, u: State, ustop: State, status: StepStatus) -> State | None: ...

    def clone(self, u: State) -> State: ...

    def sum(self, alpha: float, x: State, beta: float, y: State) -> State | None: ...

    def norm(self, u: State) -> float: ...

    def access(self, u: State, status: AccessStatus) -> None: ...

    def bufsize(self, status: BufferStatus) -> int: ...

    def pack(self, u: State, buffer: memoryview, status: BufferStatus) -> int | None: ...

    def unpack(self, buffer: memoryview, status: BufferStatus) -> State: ...


_Arrays = Union[Any, Sequence[Any]]


class App:
    """Base class for apps whose states are arrays or tuples of arrays.

    Args:
        backend: ``"numpy"`` (default) or ``"cupy"``: the array module of the states, chosen
            once. With CuPy, a message costs one device-to-host copy to pack and one
            host-to-device copy to unpack.

    Subclasses implement :meth:`init` and :meth:`step`, and may override :meth:`access`.
    The solver calls :meth:`bind` with the time domain before the first solve, so ``tstart``,
    ``tstop`` and ``ntime`` are available to subclasses from then on. With temporal
    refinement (``Solver(refine=True)``) the fine grid grows during the solve: ``self.ntime``
    stays the ntime given, ``status.ntpoints`` is the current one.

    **Residual (optional).** A subclass may define
    ``residual(self, ustop, r, status) -> State | None``: on entry ``r`` holds u at
    ``status.tstart``; it must become (in place, or returned like ``step``'s result) the
    residual at ``status.tstop`` of the app's one-step equation A(ustop, u(tstart)), which is
    zero when ``ustop`` is the exact step of ``u(tstart)``. With it, the solver calls
    ``step(u, ustop, status, fstop=f)``: ``f`` is the FAS right-hand side, None where it is
    zero, and step must return the u_new that solves A(u_new, u) = f (with f = None: the
    plain step). ``step`` must accept ``fstop`` then (Solver checks its signature). The
    engine no longer adds the FAS term to step's result itself; the app does, through
    ``fstop``. Without ``residual`` nothing changes: step is called with three arguments.

    **Spatial coarsening (optional).** A subclass may define both
    ``coarsen(self, fu, status) -> State``, the state ``fu`` of time level ``status.level``
    moved to the spatial grid of level ``status.level + 1``, and
    ``refine(self, cu, status) -> State``, a state of level ``status.level + 1`` moved back to
    level ``status.level``'s grid (``status`` is a CoarsenRefStatus: ``t``, ``tindex``,
    ``level``, ``nlevels``, ``iteration``, ``ftprior``/``ftstop`` and ``ctprior``/``ctstop``,
    the neighbouring times on the fine and the coarse level). Each returns a new state, never
    its argument. Then ``step``, ``sum``, ``norm`` and the buffer methods see states of
    several sizes: this class's ``bufsize``/``pack``/``unpack`` assume every state has the
    layout of ``init(tstart)``, so such an app overrides them (``bufsize`` is an upper bound;
    ``pack`` may return the bytes it wrote).
    """

    tstart: float = 0.0
    tstop: float = 1.0
    ntime: int = 1

    def __init__(self, backend: str = "numpy") -> None:
        if backend == "numpy":
            self.xp: Any = np
        elif backend == "cupy":
            import cupy  # imported here: CuPy is an optional extra

            self.xp = cupy
        else:
            raise ValueError(f"backend={backend!r} is not supported; use 'numpy' or 'cupy'")
        self.backend = backend
        self._layout: list[tuple[tuple[int, ...], np.dtype]] | None = None
        self._tuple_states = False

    def bind(self, tstart: float, tstop: float, ntime: int) -> None:
        """Called by the solver: the time domain this app is solved on."""
        self.tstart, self.tstop, self.ntime = float(tstart), float(tstop), int(ntime)

    # ---- what a subclass writes ----

    def init(self, t: float) -> State:
        """Initial guess at time t; the initial condition when ``t == self.tstart``."""
        raise NotImplementedError(f"{type(self).__name__} must implement init(t)")

    def step(self, u: State, ustop: State, status: StepStatus) -> State | None:
        """Advance u from ``status.tstart`` to ``status.tstop`` (in place, or return it).

        ``ustop`` is the current value at tstop (an initial guess for implicit solvers; it may
        be ``u`` itself). Apps that define ``residual`` take a fourth parameter,
        ``fstop=None``, the FAS right-hand side to solve with (see the class docstring).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement step(u, ustop, status)")

    def access(self, u: State, status: AccessStatus) -> None:
        """Sees the solution at every time point after the solve (``status.done``)."""

    # ---- vector operations for array states ----

    @staticmethod
    def _parts(u: _Arrays) -> Sequence[Any]:
        return u if isinstance(u, tuple) else (u,)

    def clone(self, u: State) -> State:
        if isinstance(u, tuple):
            return tuple(a.copy() for a in u)
        return u.copy()

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

    def inner_prod(self, u: State, v: State) -> float:
        """The Euclidean inner product of all entries (Delta correction orthonormalises its
        basis with it; for complex entries its real part)."""
        total = 0.0
        for a, b in zip(self._parts(u), self._parts(v)):
            total += float(self.xp.vdot(a.reshape(-1), b.reshape(-1)).real)
        return total

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
