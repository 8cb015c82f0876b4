"""The options of :class:`~layerbraid.braid.Solver`: the :data:`OPTIONS` table (every option
with its default and meaning), the checker of each option's value (TypeError for a wrong type,
ValueError for a value out of range, each naming the option and what it accepts) and
:class:`Richardson`, the value of the ``richardson=`` option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Callable, Mapping

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


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a non-empty str, got {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    return value


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
