"""The Python driver over the MGRIT engine: :class:`Solver` and its :class:`SolveResult`.

A solve in a few lines::

    solver = layerbraid.Solver(Decay(), tstart=0.0, tstop=5.0, ntime=1024,
                               max_levels=3, cfactor=4, abs_tol=1e-9)
    result = solver.drive()
    print(result.iterations, result.residual_history)

Every option is checked here, before the engine sees it: a wrong type raises TypeError and a
value out of range raises ValueError, each naming the option and what it accepts (the option
table and the value checkers are in :mod:`layerbraid.solver_options`, the checks of the app
against the options in :mod:`layerbraid.solver_checks`, the time grid's in
:mod:`layerbraid.time_grid`). Calling :meth:`Solver.drive` again warm-starts from the stored
solution.

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

import math
import re
import time
from dataclasses import dataclass
from numbers import Real
from typing import Any, Callable, Mapping

import numpy as np
from mpi4py import MPI

from . import _core
from .app import App, AppProtocol
from .solver_checks import (_check_adaptive, _check_adjoint, _check_delta, _check_periodic,
                            _check_step_takes_fstop, _has_residual, _has_spatial)
from .solver_options import (_LYAPUNOV_DEFAULTS, _NTIME_MAX, _PY_DEFAULTS, OPTIONS, Richardson,
                             _defer_delta, _finite_or_none, _flag, _fmg, _int_in, _lyapunov,
                             _per_level, _positive_or_none, _real_in, _richardson,
                             _temporal_norm, _text)
from .time_grid import _time_grid

__all__ = ["Solver", "SolveResult", "Richardson", "OPTIONS", "RemoteRankError",
           "DivergenceError", "check_options"]

RemoteRankError = _core.RemoteRankError
DivergenceError = _core.DivergenceError


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


# ---- the adjoint's gradient ----

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
