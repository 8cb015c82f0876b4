"""The app and the solver options checked against each other before the engine sees them:
whether the app brings its own residual or spatial coarsening, and what temporal refinement,
Richardson extrapolation, the full residual, the adjoint, Delta correction and periodic
problems need of the app and of the other options.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from .solver_options import _ADJOINT_OPTIONS

# ---- problem variants: periodic problems, user residuals, spatial coarsening ----

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

def _refuse(settings: Mapping[str, Any], refused: Mapping[str, str], message: str) -> None:
    """ValueError(message) for the first option of ``refused`` that is set; the message may
    name it ({key}) and what it would need ({what})."""
    for key, what in refused.items():
        if settings.get(key) not in (None, False):
            raise ValueError(message.format(key=key, what=what))


def _refuse_app_features(app: Any, feature: str, why: str) -> None:
    """ValueError when the app has a residual or spatial coarsening, which ``feature`` does
    not support."""
    if _has_residual(app) or _has_spatial(app):
        raise ValueError(f"{feature} cannot be combined with an app that has "
                         f"{'residual' if _has_residual(app) else 'coarsen/refine'} "
                         f"({type(app).__name__}): {why}")


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
    _refuse(settings, refused, "adjoint=True cannot be combined with {key}: the adjoint "
                               "iteration does not do {what}")
    if settings.get("residual_computation") is False:
        raise ValueError("adjoint=True cannot be combined with residual_computation=False: "
                         "the adjoint iteration always computes both residual norms")
    _refuse_app_features(app, "adjoint=True", "the adjoint iteration uses the engine's "
                         "residual and one spatial grid")


# ---- Delta correction ----

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
    _refuse(settings, refused, "delta_rank cannot be combined with {key}=True: Delta "
                               "correction does not work with {what}")
    _refuse_app_features(app, "delta_rank", "Delta correction needs the engine's residual "
                         "and one spatial grid")
