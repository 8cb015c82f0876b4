"""The Python driver over the MGRIT engine: :class:`Solver` and its :class:`SolveResult`.

A solve in a few lines::

    solver = layerbraid.Solver(Decay(), tstart=0.0, tstop=5.0, ntime=1024,
                               max_levels=3, cfactor=4, abs_tol=1e-9)
    result = solver.drive()
    print(result.iterations, result.residual_history)

Every option is checked here, before the engine sees it: a wrong type raises TypeError and a
value out of range raises ValueError, each naming the option and what it accepts. Calling
:meth:`Solver.drive` again warm-starts from the stored solution.

Beyond uniform steps on [tstart, tstop]: ``time_grid=`` gives the fine time points (an array,
or a function of the point indices), ``periodic=True`` solves u(tstart) = u(tstop), and an app
with a ``residual`` method gets the FAS right-hand side in ``step(..., fstop=)``::

    solver = layerbraid.Solver(Decay(), time_grid=np.linspace(0.0, 5.0, 11) ** 2 / 5.0,
                               max_levels=2)

Adaptivity in time: with ``refine=True`` a fine-grid step may ask for its interval to be split
(``status.set_rfactor(2)`` or ``status.set_refinement_dt(dts)``), and the solve continues on
the refined grid (:attr:`SolveResult.ntime`, :attr:`SolveResult.nrefine`);
``richardson=Richardson(order=2)`` (``layerbraid.Richardson``; or the dict
``{"order": 2}``) extrapolates the fine C-points to one order higher and estimates each fine
step's local error (``status.error_estimate``)::

    solver = layerbraid.Solver(Decay(), 0.0, 4.0, 64, max_levels=3,
                               richardson=Richardson(estimate=True, order=2))

Optimisation: with ``adjoint=True`` one drive runs XBraid's piggy-back iteration, the state's
MGRIT cycles each followed by an adjoint sweep, and returns the objective J and, from the
app's own accumulation, its gradient (the app needs ``objective``, ``objective_diff``,
``step_diff`` and ``reset_gradient``; see :class:`~layerbraid.app.AdjointApp`)::

    result = layerbraid.Solver(app, 0.0, 25.0, 50, max_levels=2, abs_tol=1e-6,
                               adjoint=True, abs_tol_adjoint=1e-6).drive()
    print(result.objective, result.gradient)

Dynamics whose linearisation grows (chaotic ones): ``delta_rank=k`` corrects the coarse
propagators with a rank-k approximation of the fine ones' Jacobians (Delta correction; the
app needs ``init_basis`` and ``inner_prod``, and its step propagates ``status.basis`` with its
linearisation), and ``lyapunov=True`` makes the basis the Lyapunov vectors and gives their
local exponents to ``access`` (``status.local_lyapunov_exponents``)::

    solver = layerbraid.Solver(Lorenz(), 0.0, 10.0, 4096, max_levels=3, cfactor=4,
                               delta_rank=3, lyapunov=True)
"""

from __future__ import annotations

import inspect
import math
import re
import time
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Callable, Mapping, Union

import numpy as np
from mpi4py import MPI

from . import _core
from .app import App, AppProtocol

__all__ = ["Solver", "SolveResult", "Richardson", "OPTIONS", "RemoteRankError",
           "DivergenceError", "check_options"]

RemoteRankError = _core.RemoteRankError
DivergenceError = _core.DivergenceError

PerLevel = Union[int, Mapping[int, int]]


@dataclass(frozen=True)
class SolveResult:
    """What one :meth:`Solver.drive` did.

    Attributes:
        iterations: MGRIT cycles done (0 for a one-level, sequential solve).
        residual_history: the residual norm after the relaxation of each cycle, before its
            coarse-grid correction; None where it was not computed (the first cycle with
            ``skip``, or ``residual_computation=False``).
        nlevels: number of time grids in the hierarchy.
        wall_time: seconds spent in the solve on this rank.
        converged: whether the last residual met the tolerance (always True for one level:
            sequential time stepping is exact). With ``full_residual=True`` it is the full
            residual that decides, as in the engine; after a temporal refinement a relative
            tolerance counts from the first residual on the refined grid.
        ntime: the fine grid's number of time steps at the end of the solve: the ``ntime``
            the solver was given, or more after temporal refinements (``refine=True``); the
            solution then has the points 0..ntime, whose times ``access`` sees as ``status.t``.
            None where the solver does not report it.
        nrefine: how many temporal refinements the solve did (0 without ``refine=True``).
        full_residual: with ``full_residual=True``, the residual norm over every fine point
            (C- and F-points) after the last cycle; None otherwise, or where it was not
            computed (one level).

        With ``adjoint=True`` (None or empty otherwise), the same on every rank unless said:
        objective: J of the last iteration, after ``postprocess_objective``.
        rnorms_adjoint: the adjoint residual norm of every iteration; empty for one level
            (a sequential solve and one exact adjoint sweep: no iterations) and with
            ``objective_only=True`` (no adjoint is computed).
        gradient: the app's ``gradient()`` summed over the ranks (in rank order, so every
            rank gets the same bits); None if the app has no ``gradient`` method or with
            ``objective_only=True``.
        initial_adjoint: dJ/du_0, the adjoint of the initial condition, on the rank that
            owns time point 0 (None on the others, and with ``objective_only=True``).
        ``converged`` then also asks the adjoint residual to meet its tolerance (unless
        ``objective_only=True``).
    """

    iterations: int
    residual_history: tuple[float | None, ...]
    nlevels: int
    wall_time: float
    converged: bool
    ntime: int | None = None
    nrefine: int = 0
    full_residual: float | None = None
    objective: float | None = None
    rnorms_adjoint: tuple[float, ...] = ()
    gradient: Any = None
    initial_adjoint: Any = None

    @property
    def rnorms(self) -> tuple[float | None, ...]:
        """The state's residual history under the name the adjoint results use (it is
        :attr:`residual_history`)."""
        return self.residual_history

    @property
    def residual(self) -> float | None:
        """The last computed residual norm, or None if none was computed."""
        known = [r for r in self.residual_history if r is not None]
        return known[-1] if known else None


# ---- option validation ----

_INT_MAX = 2**31 - 1  # the engine's braid_Int is a C int
_NTIME_MAX = _INT_MAX - 1  # the engine's limit: the ntime + 1 time points must fit a braid_Int


def _int_in(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < lo or value > (_INT_MAX if hi is None else hi):
        accepted = f"in [{lo}, {_INT_MAX}]" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name}={value} is out of range; it must be {accepted}")
    return int(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, Integral)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    if value not in (0, 1):
        raise ValueError(f"{name}={value!r} is out of range; it must be a bool (or 0 or 1)")
    return bool(value)


def _real_in(name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a float, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
        if math.isinf(hi):
            accepted = f"{'>' if lo_open else '>='} {lo:g}"
        else:
            accepted = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise ValueError(f"{name}={value!r} is out of range; it must be finite and {accepted}")
    return v


def _per_level(name: str, value: Any, check: Callable[[str, Any], Any]) -> dict[int, Any]:
    """An int/float for every level, or a mapping level -> value (-1 = every level)."""
    if isinstance(value, Mapping):
        out = {}
        for level, v in value.items():
            level = _int_in(f"{name} level", level, -1, 31)  # cfactor >= 2: at most 32 levels
            out[level] = check(f"{name}[{level}]", v)
        return out
    return {-1: check(name, value)}


_TNORMS = {"sum": 1, "l2": 2, "max": 3, 1: 1, 2: 2, 3: 3}


def _temporal_norm(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, Integral)):
        raise TypeError(f"{name} must be a str or an int, got {type(value).__name__} {value!r}")
    if value not in _TNORMS:
        raise ValueError(f"{name}={value!r} is not supported; use 'l2' (2), 'sum' (1) or 'max' (3)")
    return _TNORMS[value]


def _fmg(name: str, value: Any) -> int | None:
    """True: F-cycles throughout; False: V-cycles; an int k: k F-cycles, then V-cycles."""
    if isinstance(value, bool):
        return -1 if value else None
    k = _int_in(name, value, 0)
    return k if k > 0 else None  # zero F-cycles: plain V-cycles


def _positive_or_none(name: str, value: Any) -> float | None:
    return None if value is None else _real_in(name, value, 0.0, math.inf)


def _finite_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a float, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be finite")
    return float(value)


@dataclass(frozen=True)
class Richardson:
    """Richardson extrapolation and error estimation on the fine grid (the ``richardson=``
    option; the engine's braid_SetRichardsonEstimation).

    On each fine C-interval the m fine steps and the one coarse step of the same length both
    approximate the exact flow; their difference estimates the local error, and a weighted
    combination of the two cancels its leading term.

    Args:
        estimate: estimate the local error of every fine step; read it as
            ``status.error_estimate`` in ``step`` (for the point at tstop) and ``access`` (for
            the accessed point), None where there is none (coarse levels, before the first
            estimate).
        extrapolate: replace the fine C-point equations by the extrapolated ones, so the
            C-point values become one order more accurate (the F-points are not changed).
        order: the time stepper's local order k, an int >= 2 (its local error is C dt**k):
            2 for backward and forward Euler, 3 for a second-order method.

    Needs at least two levels, the engine's own residual (no app ``residual``), one spatial
    grid (no ``coarsen``/``refine``) and a non-periodic problem; Solver checks these.
    ``richardson=True`` means ``Richardson()``; a dict such as ``{"order": 3}`` is read as
    ``Richardson(**dict)``.
    """

    estimate: bool = True
    extrapolate: bool = True
    order: int = 2

    def __post_init__(self) -> None:
        for name in ("estimate", "extrapolate"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"Richardson {name} must be a bool, got "
                                f"{type(value).__name__} {value!r}")
        order = self.order
        if isinstance(order, bool) or not isinstance(order, Integral):
            raise TypeError(f"Richardson order must be an int, got {type(order).__name__} "
                            f"{order!r}")
        if order < 2 or order > _INT_MAX:
            raise ValueError(f"Richardson order={order} is out of range; it is the time "
                             f"stepper's local order, an int in [2, {_INT_MAX}] (2 for "
                             "backward Euler)")
        object.__setattr__(self, "order", int(order))


def _richardson(name: str, value: Any) -> Richardson | None:
    """None, False: off; True: Richardson(); a Richardson; a mapping of its fields."""
    if value is None or value is False:
        return None
    if value is True:
        return Richardson()
    if isinstance(value, Richardson):
        return value
    if isinstance(value, Mapping):
        fields = ("estimate", "extrapolate", "order")
        unknown = sorted(map(repr, set(value) - set(fields)))
        if unknown:
            raise TypeError(f"{name} has unknown key(s) {', '.join(unknown)}; its keys are "
                            f"{', '.join(fields)}")
        try:
            return Richardson(**value)
        except (TypeError, ValueError) as e:  # name the option, as every option's error does
            raise type(e)(f"{name}={dict(value)!r}: {e}") from None
    raise TypeError(f"{name} must be a layerbraid.Richardson, a dict of its fields, True or "
                    f"None, got {type(value).__name__} {value!r}")


#: Every option :class:`Solver` accepts, with its default (the engine's) and meaning.
OPTIONS: dict[str, str] = {
    "max_levels": "int >= 1 (30): most time grids in the hierarchy; 1 = sequential stepping",
    "min_coarse": "int >= 1 (2): stop coarsening before a grid has fewer intervals",
    "cfactor": "int >= 2 or {level: int} (2): coarsening factor (-1 key = every level)",
    "nrelax": "int >= 0 or {level: int} (1): 0 = F-, 1 = FCF-, 2 = FCFCF-relaxation",
    "crelax_weight": "float in (0, 2] or {level: float} (1.0): weighted C-relaxation",
    "max_iter": "int >= 1 (100): most MGRIT cycles",
    "abs_tol": "float >= 0: stop when the residual norm is below it",
    "rel_tol": "float >= 0 (1e-9): stop when the residual is below rel_tol times the first",
    "temporal_norm": "'l2' (default), 'sum' or 'max' (or 2, 1, 3) over the C-points",
    "skip": "bool (True): skip the first down-cycle's work",
    "fmg": "bool or int k (False): F-cycles throughout, or for the first k cycles",
    "fmg_vcycles": "int >= 1 (1): V-cycles per level inside an F-cycle",
    "storage": "int >= -1 (-1): -1 keeps C-points only, 0 every point, l > 0 every point "
               "from level l on",
    "seq_soln": "bool (False): start from the sequential solution (for debugging)",
    "final_fcrelax": "bool (False): one more FC-relaxation after convergence",
    "residual_computation": "bool (True): False skips all norms and runs max_iter cycles",
    "reverted_ranks": "bool (False): the last rank holds the first time points",
    "print_level": "int in [0, 3] (1): 0 silent, 1 residuals, 2 also statistics",
    "access_level": "int in [0, 2] (1): 0 never, 1 after the solve, 2 also every cycle",
    "print_file": "str: file for the engine's output (rank 0) instead of stdout",
    "periodic": "bool (False): periodic in time, u(tstart) = u(tstop); the ntime points "
                "0..ntime-1 are the unknowns; needs ntime divisible by cfactor**(levels-1) "
                "and >= 2 levels",
    "relax_only_cg": "bool (False): relax the coarsest grid (its nrelax sweeps) instead of "
                     "solving it sequentially",
    "refine": "bool (False): temporal refinement: a fine-grid step may ask for its interval "
              "to be split (status.set_rfactor, status.set_refinement_dt) and the solve goes "
              "on on the refined grid; not with periodic=True",
    "max_refinements": "int >= 0 (200): most refinements (needs refine=True)",
    "tpoints_cutoff": "int >= 0 (no limit): no refinement that would make more time steps "
                      "(needs refine=True)",
    "incr_max_levels": "bool (False): allow one more level after each refinement "
                       "(needs refine=True)",
    "richardson": "layerbraid.Richardson(estimate, extrapolate, order), a dict of its "
                  "fields, True (= Richardson()) or None (default): Richardson extrapolation "
                  "of the fine C-points and local error estimates (status.error_estimate)",
    "full_residual": "bool (False): also measure the residual over every fine point with the "
                     "app's residual method, and halt on it (SolveResult.full_residual)",
    "timer_file": "str: time the callbacks and write each rank's totals to "
                  "<timer_file>_<rank, 4 digits>.txt after every drive",
    "adjoint": "bool (False): XBraid's piggy-back adjoint iteration: the objective and its "
               "gradient from one drive (the app needs objective, objective_diff, step_diff "
               "and reset_gradient); halts when state and adjoint residual meet their "
               "tolerances",
    "tstart_objective": "float in [tstart, tstop] (tstart): the objective sums the terms of "
                        "the fine points with tstart_objective <= t <= tstop_objective "
                        "(needs adjoint=True)",
    "tstop_objective": "float in [tstart_objective, tstop] (tstop): the end of that window "
                       "(needs adjoint=True)",
    "abs_tol_adjoint": "float >= 0: the adjoint halts when its residual norm is below it "
                       "(needs adjoint=True)",
    "rel_tol_adjoint": "float >= 0 (1e-6): the adjoint halts when its residual is below "
                       "rel_tol_adjoint times the first (needs adjoint=True)",
    "objective_only": "bool (False): compute only the objective, no adjoint and no gradient "
                      "(needs adjoint=True)",
}

#: lyapunov=True: what braid_SetLyapunovEstimation gets (relax, cglv, exponents).
_LYAPUNOV_DEFAULTS = {"relax": False, "cglv": True, "exponents": True}

OPTIONS.update({
    "delta_rank": "int >= 0 (0): Delta correction of this rank (0 = off): coarse propagators "
                  "corrected by the fine Jacobian on the span of rank basis vectors (the app "
                  "needs init_basis(t, index) and inner_prod(u, v); step propagates "
                  "status.basis with its linearisation, in place)",
    "defer_delta": "(level >= 1, iteration >= 0) ((1, 0)): Delta correction only on levels "
                   ">= level and from that iteration on (needs delta_rank > 0)",
    "lyapunov": "bool or dict with keys relax, cglv, exponents (False): estimate Lyapunov "
                "vectors (the basis, propagated and re-orthonormalised along the trajectory) "
                "and exponents (status.local_lyapunov_exponents in access); True means "
                f"{_LYAPUNOV_DEFAULTS}; relax: also in the FC-relaxation, cglv: on the "
                "coarsest grid (needs delta_rank > 0)",
})

#: The options that only mean something with adjoint=True.
_ADJOINT_OPTIONS = ("tstart_objective", "tstop_objective", "abs_tol_adjoint",
                    "rel_tol_adjoint", "objective_only")

_PY_DEFAULTS = {"print_level": 1}


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options as the engine takes them; TypeError or ValueError naming a bad one."""
    return Solver._validate_options(options)


class Solver:
    """MGRIT over the time steps of an app, distributed over the ranks of ``comm``.

    Args:
        app: the problem, an :class:`App` subclass or any object with the
            :class:`AppProtocol` methods. If it also has a ``residual(ustop, r, status)``
            method, the engine uses it (braid_SetResidual): residuals are computed with it,
            and ``step`` is then called as ``step(u, ustop, status, fstop=...)`` and must
            solve the app's equation with the FAS right-hand side ``fstop`` (None where it is
            zero). If it has ``coarsen(fu, status)`` and ``refine(cu, status)``, coarser time
            levels use coarser spatial grids (braid_SetSpatialCoarsen/Refine). See
            :class:`App` for both.
        tstart, tstop: the time interval. With ``time_grid`` they may be left out (they are
            then the grid's first and last time); if given they must equal them.
        ntime: number of time steps, in [1, 2**31 - 2] (the grid has ntime + 1 points; the
            engine keeps a slot for each, spread over the ranks, so a huge ntime may instead
            make :meth:`drive` raise MemoryError). With an array ``time_grid`` it may be left
            out (``len(time_grid) - 1``); with a function it is required.
        comm: the communicator whose ranks share the time points (default COMM_WORLD).
        time_grid: the fine time points instead of ntime uniform steps (braid_SetTimeGrid):
            a 1-D array of ntime + 1 finite, strictly increasing times, or a function
            ``f(indices) -> times`` that gets an int64 array of point indices (a contiguous
            range of 0..ntime) and returns their times as an array of the same length; the
            engine asks each rank only for the points it needs. An array is checked here; a
            function's ends (points 0 and ntime) are checked here and every value it returns
            is checked when the engine asks (ValueError from :meth:`drive`: finite, strictly
            increasing, inside [tstart, tstop], the ends equal to tstart and tstop).
        **options: see :data:`OPTIONS` (``Solver.options()`` prints them). Among them:

            ``refine=True`` (with ``max_refinements``, ``tpoints_cutoff``,
            ``incr_max_levels``): temporal refinement. A step on the fine grid (``status.level
            == 0``) may call ``status.set_rfactor(r)`` to have its interval split into r equal
            steps, or ``status.set_refinement_dt(dts)`` to split it into ``len(dts) + 1``
            steps, the first of sizes ``dts``. At the top of the next cycle the engine
            refines the fine grid (the points are rebalanced over the ranks) and iterates on
            it; ``status.nrefine`` and ``status.ntpoints`` (the current ntime) say where the
            solve stands, :attr:`SolveResult.ntime` and :attr:`SolveResult.nrefine` where it
            ended. ``access`` then sees the points 0..ntime of the refined grid: take their
            times from ``status.t`` (``self.ntime`` of an :class:`App` stays the ntime given).

            ``richardson=``: see :class:`Richardson`.

            ``full_residual=True``: needs an app with ``residual``; the engine also computes the
            residual norm over all fine points with it after each cycle, and halts on that.

            ``timer_file="stem"``: each rank writes its callback timings to
            ``stem_0000.txt``, ``stem_0001.txt``, ... after every drive.
    """

    def __init__(self, app: AppProtocol, tstart: float | None = None, tstop: float | None = None,
                 ntime: int | None = None, comm: MPI.Comm | None = None, *,
                 time_grid: Any = None, **options: Any) -> None:
        tstart, tstop, ntime, times = self._validate_problem(app, tstart, tstop, ntime, comm,
                                                             time_grid)
        settings = self._validate_options({**_PY_DEFAULTS, **options})
        if settings.get("periodic"):
            _check_periodic(ntime, settings)
        _check_adaptive(app, settings)
        _check_adjoint(app, float(tstart), float(tstop), settings)
        _check_delta(app, settings)
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.app = app
        self.tstart, self.tstop, self.ntime = float(tstart), float(tstop), int(ntime)
        self.settings = settings
        self.has_residual = _has_residual(app)
        self.has_spatial = _has_spatial(app)
        self._failure: str | None = None  # what made an earlier drive() fail
        if isinstance(app, App):
            app.bind(self.tstart, self.tstop, self.ntime)
        self._engine: Any = _core.Engine(app, self.comm.py2f(), self.tstart, self.tstop,
                                         self.ntime)
        if times is not None:
            self._engine.set_time_grid(times)
        if self.has_residual:
            self._engine.set_residual()
        if self.has_spatial:
            self._engine.set_spatial()
        if settings.get("adjoint"):  # before _apply: the adjoint's options need it
            self._engine.set_adjoint()
            if callable(getattr(app, "postprocess_objective", None)):
                self._engine.set_postprocess()
        self._apply(settings)

    @staticmethod
    def options() -> str:
        """A description of every option, one per line."""
        return "\n".join(f"{name}: {text}" for name, text in OPTIONS.items())

    # ---- validation ----

    @staticmethod
    def _validate_problem(app: Any, tstart: Any, tstop: Any, ntime: Any, comm: Any,
                          time_grid: Any = None) -> tuple[float, float, int, Any]:
        """(tstart, tstop, ntime, the engine's time-grid function or None), checked."""
        missing = [m for m in ("init", "step", "clone", "sum", "norm", "access", "bufsize",
                               "pack", "unpack") if not callable(getattr(app, m, None))]
        if isinstance(app, App):  # App's own init and step only raise NotImplementedError
            missing += [m for m in ("init", "step") if getattr(type(app), m) is getattr(App, m)]
        if missing:
            raise TypeError(f"app of type {type(app).__name__} lacks {', '.join(missing)}; derive "
                            "it from layerbraid.App or implement layerbraid.AppProtocol")
        if _has_residual(app):
            _check_step_takes_fstop(app)
        _has_spatial(app)  # both coarsen and refine, or neither
        if time_grid is not None:
            tstart, tstop, ntime, times = _time_grid(time_grid, tstart, tstop, ntime)
        else:
            for name, value in (("tstart", tstart), ("tstop", tstop), ("ntime", ntime)):
                if value is None:
                    raise TypeError(f"{name} is required (only time_grid= can stand in for "
                                    "tstart, tstop and ntime)")
            times = None
        for name, value in (("tstart", tstart), ("tstop", tstop)):
            if isinstance(value, bool) or not isinstance(value, Real):
                raise TypeError(f"{name} must be a finite float, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite float, got {value!r}")
        if tstart == tstop:
            raise ValueError(f"tstart and tstop must differ (both are {tstart!r})")
        _int_in("ntime", ntime, 1, _NTIME_MAX)
        if comm is not None and not isinstance(comm, MPI.Comm):
            raise TypeError(f"comm must be an mpi4py communicator, got {type(comm).__name__}")
        return float(tstart), float(tstop), int(ntime), times

    @staticmethod
    def _validate_options(options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TypeError(f"unknown solver option(s) {', '.join(map(repr, unknown))}; valid "
                            f"options are: {', '.join(OPTIONS)}")
        for a, r in (("abs_tol", "rel_tol"), ("abs_tol_adjoint", "rel_tol_adjoint")):
            if options.get(a) is not None and options.get(r) is not None:
                raise ValueError(f"{a} and {r} are exclusive; give one of them")
        checks: dict[str, Callable[[str, Any], Any]] = {
            "max_levels": lambda n, v: _int_in(n, v, 1),
            "min_coarse": lambda n, v: _int_in(n, v, 1),
            "cfactor": lambda n, v: _per_level(n, v, lambda n2, v2: _int_in(n2, v2, 2)),
            "nrelax": lambda n, v: _per_level(n, v, lambda n2, v2: _int_in(n2, v2, 0)),
            "crelax_weight": lambda n, v: _per_level(
                n, v, lambda n2, v2: _real_in(n2, v2, 0.0, 2.0, lo_open=True)),
            "max_iter": lambda n, v: _int_in(n, v, 1),
            "abs_tol": _positive_or_none,
            "rel_tol": _positive_or_none,
            "temporal_norm": _temporal_norm,
            "skip": _flag,
            "fmg": _fmg,
            "fmg_vcycles": lambda n, v: _int_in(n, v, 1),
            "storage": lambda n, v: _int_in(n, v, -1, 31),
            "seq_soln": _flag,
            "final_fcrelax": _flag,
            "residual_computation": _flag,
            "reverted_ranks": _flag,
            "print_level": lambda n, v: _int_in(n, v, 0, 3),
            "access_level": lambda n, v: _int_in(n, v, 0, 2),
            "print_file": lambda n, v: _text(n, v),
            "periodic": _flag,
            "relax_only_cg": _flag,
            "refine": _flag,
            "max_refinements": lambda n, v: _int_in(n, v, 0),
            "tpoints_cutoff": lambda n, v: _int_in(n, v, 0),
            "incr_max_levels": _flag,
            "richardson": _richardson,
            "full_residual": _flag,
            "timer_file": lambda n, v: _text(n, v),
            "adjoint": _flag,
            "tstart_objective": _finite_or_none,
            "tstop_objective": _finite_or_none,
            "abs_tol_adjoint": _positive_or_none,
            "rel_tol_adjoint": _positive_or_none,
            "objective_only": _flag,
            "delta_rank": lambda n, v: _int_in(n, v, 0),
            "defer_delta": _defer_delta,
            "lyapunov": _lyapunov,
        }
        return {name: checks[name](name, value) for name, value in options.items()}

    def _apply(self, settings: Mapping[str, Any]) -> None:
        e = self._engine
        simple = {"max_levels": e.set_max_levels, "min_coarse": e.set_min_coarse,
                  "max_iter": e.set_max_iter, "temporal_norm": e.set_temporal_norm,
                  "skip": e.set_skip, "fmg_vcycles": e.set_nfmg_vcyc, "storage": e.set_storage,
                  "seq_soln": e.set_seq_soln, "residual_computation": e.set_residual_computation,
                  "reverted_ranks": e.set_reverted_ranks, "print_level": e.set_print_level,
                  "access_level": e.set_access_level, "print_file": e.set_print_file,
                  "periodic": e.set_periodic, "relax_only_cg": e.set_relax_only_cg,
                  "refine": e.set_refine, "max_refinements": e.set_max_refinements,
                  "tpoints_cutoff": e.set_tpoints_cutoff,
                  "objective_only": e.set_objective_only}
        optional = {"abs_tol": e.set_abs_tol, "rel_tol": e.set_rel_tol,
                    "tstart_objective": e.set_tstart_objective,
                    "tstop_objective": e.set_tstop_objective,
                    "abs_tol_adjoint": e.set_abs_tol_adjoint,
                    "rel_tol_adjoint": e.set_rel_tol_adjoint}
        per_level = {"cfactor": e.set_cfactor, "nrelax": e.set_nrelax,
                     "crelax_weight": e.set_crelax_wt}
        for name, value in settings.items():
            if name in simple:
                simple[name](value)
            elif name in per_level:
                # the all-levels value first, so per-level values override it
                for level in sorted(value):
                    per_level[name](level, value[level])
            elif name in optional and value is not None:
                optional[name](value)
            elif name == "fmg" and value is not None:
                e.set_nfmg(value)
            elif name == "final_fcrelax" and value:
                e.set_final_fcrelax()
            elif name == "incr_max_levels" and value:
                e.set_incr_max_levels()
            elif name == "richardson" and value is not None:
                e.set_richardson(int(value.estimate), int(value.extrapolate), value.order)
            elif name == "full_residual" and value:
                e.set_full_residual()  # the app's residual, set before (set_residual)
            elif name == "delta_rank" and value:
                e.set_delta(value)
            elif name == "defer_delta" and value is not None:
                e.set_defer_delta(*value)
            elif name == "lyapunov" and value is not None:
                e.set_lyapunov(*(int(value[k]) for k in _LYAPUNOV_DEFAULTS))
            elif name == "timer_file":
                e.set_timings(2)
                e.set_timer_file(value)

    # ---- solving ----

    def drive(self) -> SolveResult:
        """Solve (again: a warm restart from the stored solution) and report what happened.

        Raises:
            the exception of a failed callback on the rank where it happened;
            RemoteRankError on the other ranks, naming the failed rank and its exception;
            DivergenceError if the residual norm became NaN or infinite;
            MemoryError if the engine could not allocate its storage on this rank.
        """
        if self._failure is not None:
            raise RuntimeError(f"this Solver cannot drive again: its earlier drive() failed with "
                               f"{self._failure}; create a new Solver")
        start = time.perf_counter()
        try:
            self._engine.drive()
        except BaseException as e:
            memory_error = self._memory_error(e)
            self._failure = _describe(e if memory_error is None else memory_error)
            if memory_error is None:
                raise
            # no local may keep the exception: its traceback holds this frame, a reference
            # cycle that would keep the app's states alive until the garbage collector runs
            try:
                raise memory_error from e
            finally:
                del memory_error
        wall = time.perf_counter() - start
        history = self._engine.rnorms()[:-1]  # the engine repeats the last entry
        residuals = tuple(None if r < 0 else float(r) for r in history)
        nlevels = int(self._engine.nlevels())
        nrefine = int(self._engine.nrefine())
        rnorm0, full, full0 = self._engine.halting_norms()
        full_residual = None
        if self.settings.get("full_residual") and full >= 0:
            full_residual = float(full)
        if self.settings.get("full_residual"):
            # the engine halts on the full residual: judge convergence by it too
            converged = self._met_tolerance(full_residual, None if full0 < 0 else full0)
        else:
            known = [r for r in residuals if r is not None]
            # after a refinement, a relative tolerance counts from the refined grid's first
            first = (None if rnorm0 < 0 else float(rnorm0)) if nrefine else \
                (known[0] if known else None)
            converged = self._met_tolerance(known[-1] if known else None, first)
        adjoint: dict[str, Any] = {}
        if self.settings.get("adjoint"):
            adjoint = self._adjoint_results()
            if not self.settings.get("objective_only"):
                history = adjoint["rnorms_adjoint"]
                converged = converged and self._met_tolerance(
                    history[-1] if history else None, history[0] if history else None,
                    "abs_tol_adjoint", "rel_tol_adjoint", 1e-6)
        return SolveResult(iterations=int(self._engine.num_iter()), residual_history=residuals,
                           nlevels=nlevels, wall_time=wall, converged=nlevels == 1 or converged,
                           ntime=int(self._engine.ntime()), nrefine=nrefine,
                           full_residual=full_residual, **adjoint)

    def _adjoint_results(self) -> dict[str, Any]:
        """SolveResult's adjoint fields after an adjoint drive."""
        out: dict[str, Any] = {"objective": float(self._engine.objective())}
        if self.settings.get("objective_only"):
            return out  # no adjoint was computed: no residuals, gradient or dJ/du_0
        # the engine repeats the last entry, as for the state's history
        out["rnorms_adjoint"] = tuple(float(r) for r in self._engine.rnorms_adjoint()[:-1])
        out["initial_adjoint"] = self._engine.initial_adjoint()
        gradient = getattr(self.app, "gradient", None)
        if callable(gradient):
            out["gradient"] = _gradient_over_ranks(self.comm, gradient)
        return out

    def _memory_error(self, e: BaseException) -> MemoryError | None:
        """The engine's braid_ERROR_MEMORY (a MemoryError from _core whose text the engine
        wrote: "rank R: out of memory: ..."), explained; None for anything else."""
        found = re.match(r"(rank \d+): out of memory: ", str(e))
        if type(e) is not MemoryError or found is None:
            return None
        detail = f"{found.group(1)}: {str(e)[found.end():]}"
        return MemoryError(f"the MGRIT engine ran out of memory: {detail}; each rank keeps a "
                           "slot per time point it owns, so fewer steps or more ranks (now "
                           f"{self.comm.Get_size()}) need less")

    def _met_tolerance(self, last: float | None, first: float | None, abs_name: str = "abs_tol",
                       rel_name: str = "rel_tol", rel_default: float = 1e-9) -> bool:
        """The engine's halting test: ``last`` below the absolute tolerance, or below the
        relative one times ``first``; False where a norm it needs was not computed."""
        if last is None:
            return False
        abs_tol = self.settings.get(abs_name)
        if abs_tol is not None:
            return last < abs_tol
        if first is None:
            return False
        rel_tol = self.settings.get(rel_name)
        return last < (rel_default if rel_tol is None else rel_tol) * first

    def close(self) -> None:
        """Free the engine and every stored state (also done when the solver is collected)."""
        self._engine.close()

    def __enter__(self) -> "Solver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(error: BaseException) -> str:
    """``Type: first line of the message`` of an exception."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a non-empty str, got {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    return value


# ---- problem variants: time grids, periodic problems, user residuals ----

def _has_residual(app: Any) -> bool:
    """Whether the app brings its own residual (braid_SetResidual)."""
    return callable(getattr(app, "residual", None))


def _has_spatial(app: Any) -> bool:
    """Whether the app moves states between time levels' spatial grids (coarsen and refine;
    TypeError for only one of them)."""
    coarsen, refine = (callable(getattr(app, m, None)) for m in ("coarsen", "refine"))
    if coarsen != refine:
        has, lacks = ("coarsen", "refine") if coarsen else ("refine", "coarsen")
        raise TypeError(f"app of type {type(app).__name__} has {has} but no {lacks}; spatial "
                        "coarsening needs both: coarsen(fu, status) -> the state on the next "
                        "coarser time level's grid, refine(cu, status) -> back on the finer")
    return coarsen


def _check_step_takes_fstop(app: Any) -> None:
    """An app with a residual must have a step that accepts the keyword fstop."""
    try:
        params = inspect.signature(app.step).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): let the call tell
        return
    if any(p.kind is p.VAR_KEYWORD or (p.name == "fstop" and p.kind is not p.POSITIONAL_ONLY)
           for p in params):
        return
    raise TypeError(f"app of type {type(app).__name__} has a residual method, so its step "
                    "receives the FAS right-hand side: it must be step(u, ustop, status, "
                    "fstop=None) and solve residual(ustop=u_new, r=u) = fstop when fstop is "
                    "not None")


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


def _check_adaptive(app: Any, settings: Mapping[str, Any]) -> None:
    """Refinement, Richardson extrapolation and the full residual against the rest of the
    problem, before the engine sees them (it would refuse or ignore them only in drive)."""
    periodic = settings.get("periodic", False)
    if not settings.get("refine"):
        given = [name for name in ("max_refinements", "tpoints_cutoff", "incr_max_levels")
                 if name in settings and settings[name] is not False]
        if given:
            raise ValueError(f"{', '.join(f'{n}={settings[n]!r}' for n in given)} only "
                             "take effect with temporal refinement; add refine=True")
    elif periodic:
        raise ValueError("refine=True cannot be combined with periodic=True: the engine does "
                         "not refine periodic grids")
    richardson = settings.get("richardson")
    if richardson is not None and (richardson.estimate or richardson.extrapolate):
        reason = None
        if periodic:
            reason = "periodic=True"
        elif _has_residual(app):
            reason = (f"an app with its own residual method ({type(app).__name__}.residual): "
                      "the engine's residual is the one it extrapolates")
        elif _has_spatial(app):
            reason = (f"spatial coarsening ({type(app).__name__}.coarsen/refine): the fine "
                      "and coarse steps must be on one spatial grid")
        elif settings.get("max_levels", 30) < 2:
            reason = ("max_levels=1: the estimate compares fine steps with a coarse grid's, "
                      "so it needs at least 2 levels")
        if reason is not None:
            raise ValueError(f"richardson={richardson!r} cannot be combined with {reason}")
    if settings.get("full_residual") and not _has_residual(app):
        raise TypeError(f"full_residual=True measures the residual with the app's residual "
                        f"method, and {type(app).__name__} has none; define "
                        "residual(ustop, r, status) (see layerbraid.App)")


# ---- the adjoint ----

#: What adjoint=True needs of the app, and what it may have.
_ADJOINT_METHODS = ("objective", "objective_diff", "step_diff", "reset_gradient")


def _check_adjoint(app: Any, tstart: float, tstop: float, settings: Mapping[str, Any]) -> None:
    """adjoint=True against the app and the other options (the engine would refuse most of
    these only in drive, or ignore them)."""
    if not settings.get("adjoint"):
        given = [n for n in _ADJOINT_OPTIONS if settings.get(n) not in (None, False)]
        if given:
            raise ValueError(f"{', '.join(f'{n}={settings[n]!r}' for n in given)} only take "
                             "effect with the adjoint; add adjoint=True")
        return
    name = type(app).__name__
    missing = [m for m in _ADJOINT_METHODS if not callable(getattr(app, m, None))]
    if missing:
        raise TypeError(f"adjoint=True needs the app's {', '.join(missing)}: app of type {name} "
                        "lacks them (see layerbraid.app.AdjointApp: objective(u, status) -> "
                        "float, objective_diff(u, u_bar, f_bar, status), step_diff(ustop, u, "
                        "ustop_bar, u_bar, status), reset_gradient())")
    post = [callable(getattr(app, m, None))
            for m in ("postprocess_objective", "postprocess_objective_diff")]
    if post[0] != post[1]:
        has, lacks = (("postprocess_objective", "postprocess_objective_diff") if post[0]
                      else ("postprocess_objective_diff", "postprocess_objective"))
        raise TypeError(f"app of type {name} has {has} but no {lacks}; a postprocessed "
                        "objective needs both: J = postprocess_objective(sum of the terms) "
                        "and its derivative postprocess_objective_diff(sum)")
    lo, hi = min(tstart, tstop), max(tstart, tstop)
    window = [settings.get("tstart_objective"), settings.get("tstop_objective")]
    for key, value in zip(("tstart_objective", "tstop_objective"), window):
        if value is not None and not lo <= value <= hi:
            raise ValueError(f"{key}={value!r} is outside the time interval [{lo!r}, {hi!r}]")
    first = tstart if window[0] is None else window[0]
    last = tstop if window[1] is None else window[1]
    if first > last:
        raise ValueError(f"the objective window is empty: tstart_objective={first!r} is after "
                         f"tstop_objective={last!r}")
    # what the engine's adjoint iteration refuses, or ignores (with a warning)
    refused = {"periodic": "periodic problems", "fmg": "F-cycles",
               "richardson": "Richardson extrapolation", "refine": "temporal refinement",
               "full_residual": "the full residual", "relax_only_cg": "a relaxed coarsest grid",
               "skip": "skipping the first down-cycle"}
    for key, what in refused.items():
        if settings.get(key) not in (None, False):
            raise ValueError(f"adjoint=True cannot be combined with {key}: the adjoint "
                             f"iteration does not do {what}")
    if settings.get("residual_computation") is False:
        raise ValueError("adjoint=True cannot be combined with residual_computation=False: "
                         "the adjoint iteration always computes both residual norms")
    if _has_residual(app) or _has_spatial(app):
        raise ValueError(f"adjoint=True cannot be combined with an app that has "
                         f"{'residual' if _has_residual(app) else 'coarsen/refine'} "
                         f"({name}): the adjoint iteration uses the engine's residual and "
                         "one spatial grid")


# ---- Delta correction ----

def _defer_delta(name: str, value: Any) -> tuple[int, int] | None:
    """None, or (level >= 1, iteration >= 0)."""
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (level, iteration), got {type(value).__name__} "
                        f"{value!r}")
    return (_int_in(f"{name} level", value[0], 1), _int_in(f"{name} iteration", value[1], 0))


def _lyapunov(name: str, value: Any) -> dict[str, bool] | None:
    """False, None: off; True: the defaults; a mapping of some of relax, cglv, exponents."""
    if value is None or value is False:
        return None
    if value is True:
        return dict(_LYAPUNOV_DEFAULTS)
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a bool or a dict with keys "
                        f"{', '.join(_LYAPUNOV_DEFAULTS)}, got {type(value).__name__} {value!r}")
    unknown = sorted(map(repr, set(value) - set(_LYAPUNOV_DEFAULTS)))
    if unknown:
        raise TypeError(f"{name} has unknown key(s) {', '.join(unknown)}; its keys are "
                        f"{', '.join(_LYAPUNOV_DEFAULTS)}")
    out = dict(_LYAPUNOV_DEFAULTS)
    for key, flag in value.items():
        if not isinstance(flag, bool):
            raise TypeError(f"{name}[{key!r}] must be a bool, got {type(flag).__name__} "
                            f"{flag!r}")
        out[key] = flag
    if not any(out.values()):
        raise ValueError(f"{name}={dict(value)!r} turns everything off; use lyapunov=False")
    return out


def _check_delta(app: Any, settings: Mapping[str, Any]) -> None:
    """delta_rank against the app and the options that need it."""
    if not settings.get("delta_rank"):
        given = [n for n in ("defer_delta", "lyapunov") if settings.get(n) is not None]
        if given:
            raise ValueError(f"{', '.join(f'{n}={settings[n]!r}' for n in given)} only take "
                             "effect with Delta correction; add delta_rank=k (k >= 1)")
        return
    missing = [m for m in ("init_basis", "inner_prod") if not callable(getattr(app, m, None))]
    if missing:
        raise TypeError(f"delta_rank={settings['delta_rank']} needs the app's "
                        f"{' and '.join(missing)}: app of type {type(app).__name__} lacks "
                        "them (init_basis(t, index) -> basis vector index at time t, "
                        "inner_prod(u, v) -> float; layerbraid.App has a Euclidean inner_prod)")
    # what the engine's Delta correction does not do (it would refuse them in drive)
    refused = {"adjoint": "the adjoint iteration", "periodic": "periodic problems",
               "refine": "temporal refinement", "richardson": "Richardson extrapolation",
               "relax_only_cg": "a relaxed (not solved) coarsest grid"}
    for key, what in refused.items():
        if settings.get(key) not in (None, False):
            raise ValueError(f"delta_rank cannot be combined with {key}=True: Delta "
                             f"correction does not work with {what}")
    if _has_residual(app) or _has_spatial(app):
        raise ValueError(f"delta_rank cannot be combined with an app that has "
                         f"{'residual' if _has_residual(app) else 'coarsen/refine'} "
                         f"({type(app).__name__}): Delta correction needs the engine's "
                         "residual and one spatial grid")


def _gradient_over_ranks(comm: MPI.Comm, gradient: Callable[[], Any]) -> Any:
    """The sum over the ranks of ``gradient()`` (a float, an array, NumPy or CuPy, or a tuple
    of them), added in rank order: the same bits on every rank, whatever MPI's reduction
    order. A failure or a layout that differs between ranks raises on every rank (the others
    get RemoteRankError naming the rank), so no rank is left waiting in a collective."""
    error: BaseException | None = None
    try:
        parts, rebuild = _host_parts(gradient())
        mine: Any = [(p.shape, p.dtype.str) for p in parts]
    except Exception as e:  # reported to every rank below
        error, mine = e, _describe(e)
    everyone = comm.allgather(mine)
    if error is not None:
        raise error
    for rank, theirs in enumerate(everyone):
        if isinstance(theirs, str):
            raise RemoteRankError(f"stopped because another rank failed: rank {rank}: the "
                                  f"app's gradient() failed: {theirs}")
        if theirs != mine:
            raise ValueError(f"the app's gradient() has the layout {theirs} (shapes, dtypes) "
                             f"on rank {rank} and {mine} on rank {comm.Get_rank()}; it must "
                             "be the same on every rank")
    sums = []
    for p in parts:
        flat = p.reshape(-1)
        gathered = np.empty((comm.Get_size(), flat.size), dtype=flat.dtype)
        comm.Allgather(flat, gathered)
        total = gathered[0].copy()
        for row in gathered[1:]:
            total += row
        sums.append(total.reshape(p.shape))
    return rebuild(sums)


def _host_parts(value: Any) -> tuple[list[np.ndarray], Callable[[list[np.ndarray]], Any]]:
    """A gradient as contiguous host arrays, and the function that turns arrays of the same
    layout back into the gradient's form (float, NumPy, CuPy, tuple)."""
    if isinstance(value, tuple):
        pieces = [_host_parts(v) for v in value]

        def tuple_back(arrays: list[np.ndarray]) -> tuple[Any, ...]:
            out, k = [], 0
            for parts, back in pieces:
                out.append(back(arrays[k:k + len(parts)]))
                k += len(parts)
            return tuple(out)

        return [a for parts, _ in pieces for a in parts], tuple_back
    if isinstance(value, Real) and not isinstance(value, bool):
        return [np.array(float(value))], lambda arrays: float(arrays[0])
    on_device = type(value).__module__.startswith("cupy")
    try:
        host = np.ascontiguousarray(value.get() if on_device else value)
    except Exception as e:  # e.g. an object NumPy cannot convert
        raise TypeError(f"the app's gradient() must return a float, a float array or a tuple "
                        f"of them, got {type(value).__name__} ({e})") from None
    if host.dtype.kind not in "fc":
        raise TypeError(f"the app's gradient() must return a float, a float array or a tuple "
                        f"of them, got {type(value).__name__} of dtype {host.dtype}")
    if on_device:
        import cupy  # only for an app whose gradient lives on the GPU

        return [host], lambda arrays: cupy.asarray(arrays[0])
    return [host], lambda arrays: arrays[0]


def _check_periodic(ntime: int, settings: Mapping[str, Any]) -> None:
    """The engine's periodic hierarchy (grid.c) built ahead: every coarsened level's points
    divisible by its cfactor, at least 2 levels, no sequential initial guess."""
    if settings.get("seq_soln"):
        raise ValueError("periodic=True cannot start from the sequential solution "
                         "(seq_soln=True): a periodic problem has no initial value to step from")
    max_levels = settings.get("max_levels", 30)
    min_coarse = settings.get("min_coarse", 2)
    cfactor = settings.get("cfactor", {-1: 2})

    def cf(level: int) -> int:
        return cfactor.get(level, cfactor.get(-1, 2))

    npoints, nlevels, product = ntime, 1, 1
    while nlevels < min(max_levels, 32) and npoints // cf(nlevels - 1) - 1 >= min_coarse:
        c = cf(nlevels - 1)
        if npoints % c != 0:
            raise ValueError(
                f"periodic=True needs ntime divisible by cfactor**(levels - 1): ntime={ntime} "
                f"has {npoints} points on level {nlevels - 1}, not divisible by its cfactor {c} "
                f"(the product of the cfactors so far is {product * c}); choose ntime a "
                f"multiple of {product * c}, or fewer levels (max_levels={nlevels})")
        npoints //= c
        product *= c
        nlevels += 1
    if nlevels < 2:
        raise ValueError(f"periodic=True needs at least 2 levels, but max_levels={max_levels}, "
                         f"min_coarse={min_coarse} and ntime={ntime} give {nlevels}")
