"""The settings search of ``layerbraid plan``: iteration counts measured with the native
backend, the candidate settings, their predictions ranked (:func:`recommend`) and the plan as
text (:func:`format_plan`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .costs import ConvShape, CostTable, _native_solver_options, _NativeNet
from .model import Prediction, Settings, level_sizes, predict, serial_time
from .platforms import Platform


def measure_iterations(depth: int, width: int | ConvShape, batch: int, settings: Settings,
                       tol: float, *, max_iter: int = 100, seed: int = 0) -> tuple[int, int]:
    """MGRIT iterations of a forward and an adjoint solve to abs tolerance ``tol`` on one rank
    (they do not depend on the number of ranks), with the scaling driver's random network:
    dense of ``width``, or conv of the :class:`ConvShape` ``width`` (with the settings'
    spatial coarsening)."""
    from ..native import _module

    m = _module()
    o = _native_solver_options(m, settings.max_levels, settings.cfactor, settings.nrelax, tol,
                               max_iter, False)
    o.min_coarse = settings.min_coarse
    if settings.spatial:
        if not isinstance(width, ConvShape):
            raise ValueError("spatial coarsening is for conv networks")
        if not hasattr(o, "spatial_coarsen"):
            raise RuntimeError("this build of the native backend has no spatial coarsening "
                               "(SolverOptions.spatial_coarsen); rebuild layerbraid")
        o.spatial_coarsen = settings.spatial
        o.spatial_states = settings.spatial_states
    fwd, adj = _NativeNet(depth, width, batch, o, o, seed).solve()
    return int(fwd["iterations"]), int(adj["iterations"])


def candidate_settings(depth: int, min_coarse: int = 2,
                       cfactors: Iterable[int] = (2, 4, 8, 16), max_spatial: int = 0,
                       spatial_states: bool = False) -> list[Settings]:
    """Levels 2, 3, 4 and the most the engine builds (down to min_coarse), every cfactor,
    F and FCF; spatial coarsening 0..min(max_spatial, levels - 1) for each (with
    spatial_states: low-resolution states, FCF only)."""
    out = []
    for cf in cfactors:
        most = len(level_sizes(depth, Settings(30, cf, "F", min_coarse)))
        for levels in sorted({min(2, most), min(3, most), min(4, most), most} - {1}):
            for relax in ("F", "FCF"):
                for spatial in range(min(max_spatial, levels - 1) + 1):
                    states = spatial_states and spatial > 0
                    if states and relax == "F":
                        continue
                    out.append(Settings(levels, cf, relax, min_coarse, spatial, states))
    return out


@dataclass
class Plan:
    depth: int
    width: int
    batch: int
    ranks: int
    platform: Platform
    mode: str
    costs: CostTable
    serial: float
    candidates: list[Prediction] = field(default_factory=list)
    verdict: str = ""
    notes: list[str] = field(default_factory=list)
    by_cycles: dict[int, Prediction] = field(default_factory=dict)   # one-shot: best per K
    conv: ConvShape | None = None        # a conv network (width: its features)
    max_spatial: int = 0                 # spatial coarsening searched 0..max_spatial

    @property
    def best(self) -> Prediction | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self, top: int = 5) -> dict[str, Any]:
        best = self.best
        network: dict[str, Any] = {"network": "conv" if self.conv else "dense"}
        if self.conv:
            network.update(conv=asdict(self.conv), max_spatial=self.max_spatial,
                           spatial_coarsen=best.settings.spatial if best else 0,
                           spatial_states=best.settings.spatial_states if best else False,
                           spatial_levels=_spatial_levels(best.settings) if best else [])
        return {**network, "depth": self.depth, "width": self.width, "batch": self.batch,
                "ranks": self.ranks, "platform": asdict(self.platform), "mode": self.mode,
                "costs": self.costs.to_dict(), "serial_time": self.serial,
                "layer_serial_faster": self.best is None or self.best.speedup <= 1.0,
                "verdict": self.verdict, "notes": self.notes,
                "best_by_cycles": {str(k): p.to_dict() for k, p in self.by_cycles.items()},
                "recommendations": [p.to_dict() for p in self.candidates[:top]]}


def _reason(p: Prediction, plan: Plan) -> str:
    """Why the best layer-parallel setting still loses."""
    if plan.ranks == 1:
        return (f"one rank: MGRIT only adds work to layer-serial stepping (the best setting, "
                f"{_describe(p.settings)}, {p.iterations[0]}+{p.iterations[1]} iterations, "
                f"does {p.total / p.serial:.1f}x the work of layer-serial); use more ranks or "
                f"train layer-serial")
    parts = {"relaxation work (too few ranks for the depth and the "
             f"{p.iterations[0]}+{p.iterations[1]} iterations)": p.relaxation,
             "the sequential coarsest-grid solve": p.coarsest,
             "communication latency against the step cost": p.communication,
             "the residual-norm reductions": p.norm}
    name, value = max(parts.items(), key=lambda kv: kv[1])
    return (f"the best setting ({_describe(p.settings)}) takes {p.total * 1e3:.3g} ms against "
            f"{p.serial * 1e3:.3g} ms layer-serial; its largest part is {name}, "
            f"{value * 1e3:.3g} ms")


def _describe(s: Settings) -> str:
    return f"{s.max_levels} levels, cfactor {s.cfactor}, {s.relax}" \
        + (f", spatial {s.spatial}" + (" (low-resolution states)" if s.spatial_states else "")
           if s.spatial else "")


def _spatial_levels(s: Settings) -> list[int]:
    """The levels computing on halved images."""
    return list(range(1, s.spatial + 1))


def _spatial_text(plan: "Plan", s: Settings) -> str:
    """The plan's line on spatial coarsening (conv networks)."""
    conv = plan.conv
    assert conv is not None
    if s.spatial == 0:
        return (f"spatial coarsening: none (searched 0..{plan.max_spatial}); every level "
                f"computes on {conv.height}x{conv.width} images")
    levels = "1" if s.spatial == 1 else f"1..{s.spatial}"
    h, w = conv.image(s.spatial)
    return (f"spatial coarsening: images halved on levels {levels} (spatial_coarsen "
            f"{s.spatial}: {conv.height}x{conv.width} -> {h}x{w} images; "
            + ("the coarse levels' states are the small images, spatial_states"
               if s.spatial_states else "full-size states, the coarse steps on the small "
               "images") + ")")


def recommend(depth: int, width: int | ConvShape, batch: int, ranks: int, platform: Platform,
              costs: CostTable, *, mode: str = "tolerance",
              iterations: tuple[int, int] | None = None, cycles: Sequence[int] | None = None,
              tol: float = 1e-6, min_coarse: int = 2, max_spatial: int | None = None,
              spatial_states: bool = False, log: Callable[[str], None] | None = None) -> Plan:
    """Predict every candidate setting and rank them by time per training step.

    width: the dense layers' width, or a :class:`ConvShape` for a conv network, whose
    candidates also try spatial coarsening 0..S (S: the halvings the image allows, at most
    MAX_SPATIAL, the cost table's ``spatial``, ``max_spatial`` if given, and levels - 1;
    full-size states, or low-resolution ones with ``spatial_states``).
    mode "tolerance": solves to ``tol`` from zero (the first cycle skips its down-cycle);
    iteration counts measured on one rank per setting (batch min(batch, 64); conv:
    min(batch, 4)) unless ``iterations`` gives them. mode "one-shot": warm-started solves of
    ``cycles`` MGRIT iterations each (default: 1, 2 and 3 searched).
    """
    if mode not in ("tolerance", "one-shot"):
        raise ValueError(f"mode={mode!r}: use tolerance or one-shot")
    conv = width if isinstance(width, ConvShape) else None
    features = conv.features if conv else width
    for name, v in (("depth", depth), ("width", features), ("batch", batch), ("ranks", ranks)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if ranks > depth + 1:
        raise ValueError(f"{ranks} ranks cannot share {depth} layers; use at most {depth + 1}")
    if ranks > platform.ranks:
        raise ValueError(f"{ranks} ranks do not fit platform {platform.name!r} "
                         f"({platform.ranks} cores)")
    if conv is None and (costs.network != "dense" or costs.width != width
                         or costs.batch != batch):
        raise ValueError(f"the cost table is for {_table_network(costs)}, batch "
                         f"{costs.batch}, not dense width {width}, batch {batch}; calibrate "
                         f"again (--calibrate)")
    if conv is not None and (costs.conv != conv or costs.batch != batch):
        raise ValueError(f"the cost table is for {_table_network(costs)}, batch "
                         f"{costs.batch}, not conv {conv}, batch {batch}; calibrate again "
                         f"(--calibrate)")
    if max_spatial is not None and max_spatial < 0:
        raise ValueError(f"max_spatial must be >= 0, got {max_spatial}")
    say = log or (lambda s: None)
    plan = Plan(depth, features, batch, ranks, platform, mode, costs,
                serial_time(depth, costs, platform.speed), conv=conv)
    if conv is not None:
        most = conv.max_spatial if max_spatial is None else min(max_spatial, conv.max_spatial)
        if costs.spatial < most:
            plan.notes.append(f"the cost table has the costs of {costs.spatial} halved "
                              f"resolution(s); spatial coarsening searched up to "
                              f"{costs.spatial}, not {most} (calibrate with more)")
        plan.max_spatial = min(most, costs.spatial)
    settings = candidate_settings(depth, min_coarse, max_spatial=plan.max_spatial,
                                  spatial_states=spatial_states)
    if mode == "one-shot":
        chosen = cycles[0] if cycles else 2
        for k in sorted({chosen, 1, 2, 3}):
            preds = sorted((predict(depth, ranks, s, (k, k), costs, platform, skip_first=False)
                            for s in settings), key=lambda p: p.total)
            plan.by_cycles[k] = preds[0]
            if k == chosen:
                plan.candidates = preds
        plan.notes.append(f"one-shot: warm-started solves of {chosen} MGRIT cycle(s) each (no "
                          f"skipped first cycle); fewer cycles give cheaper steps but less "
                          f"exact gradients")
        plan.notes.append("best per cycles per solve: " + ", ".join(
            f"{k}: {_describe(p.settings)}, {p.total * 1e3:.3g} ms ({p.speedup:.2f}x)"
            for k, p in sorted(plan.by_cycles.items())))
    else:
        b = min(batch, 4 if conv else 64)
        if iterations is None:
            plan.notes.append(f"iterations to abs tol {tol:g} measured on one rank, batch {b}")
        else:
            plan.notes.append(f"the given iterations ({iterations[0]}, {iterations[1]}) are "
                              f"used for every setting; F-relaxation and coarser grids"
                              + (" (and spatial coarsening)" if plan.max_spatial else "")
                              + " usually need more than FCF and finer ones (measure them: "
                              "leave out --iterations)")
        for s in settings:
            its = iterations
            if its is None:
                its = measure_iterations(depth, width, b, s, tol)
                say(f"  {_describe(s)}: {its[0]} + {its[1]} iterations")
            plan.candidates.append(predict(depth, ranks, s, its, costs, platform,
                                           skip_first=True))
    plan.candidates.sort(key=lambda p: p.total)
    best = plan.best
    if best is None or best.speedup <= 1.0:
        plan.verdict = "layer-serial is faster here: " + (_reason(best, plan) if best else "")
    else:
        plan.verdict = (f"layer-parallel: {_describe(best.settings)}"
                        + (f", {best.iterations[0]} cycles per solve" if mode == "one-shot"
                           else "")
                        + f", {best.total * 1e3:.3g} ms per step, {best.speedup:.2f}x "
                          f"layer-serial ({best.serial * 1e3:.3g} ms on one rank)")
    return plan


def _table_network(costs: CostTable) -> str:
    return f"conv {costs.conv}" if costs.conv else f"dense width {costs.width}"


def format_plan(plan: Plan, top: int = 5) -> str:
    pf = plan.platform
    conv = plan.conv
    net = (f"conv tanh ResNet, depth {plan.depth}, {conv.channels} channels, {conv.height}x"
           f"{conv.width} images, kernel {conv.kernel}" if conv else
           f"dense tanh ResNet, depth {plan.depth}, width {plan.width}")
    sp = "spatial | " if conv else ""
    lines = [
        f"layerbraid plan: {net}, batch "
        f"{plan.batch}; {plan.ranks} ranks on {pf.name} ({pf.hosts} hosts x "
        f"{pf.cores_per_host} cores, speed x{pf.speed:g}, link {pf.link_latency * 1e6:g} us, "
        f"loopback {pf.loopback_latency * 1e6:g} us)",
        f"costs ({plan.costs.host}): step forward {plan.costs['step_forward_fine'] * 1e6:.1f} us"
        f" (coarse {plan.costs['step_forward_coarse'] * 1e6:.1f}), adjoint "
        f"{plan.costs['step_adjoint_fine'] * 1e6:.1f} us (coarse "
        f"{plan.costs['step_adjoint_coarse'] * 1e6:.1f}), sum {plan.costs['sum'] * 1e6:.2f} us",
        f"layer-serial on one rank: {plan.serial * 1e3:.3f} ms per step",
        "",
        f"| levels | cf | relax | {sp}iterations fwd+adj | ms / step | speedup | relaxation "
        f"| coarsest | communication | norm |" + (" coarsening |" if conv else ""),
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if conv else ""),
    ]
    for p in plan.candidates[:top]:
        s = p.settings
        lines.append(f"| {p.levels} | {s.cfactor} | {s.relax} | "
                     + (f"{s.spatial}{' (states)' if s.spatial_states else ''} | " if conv
                        else "")
                     + f"{p.iterations[0]}+{p.iterations[1]} | {p.total * 1e3:.3f} | "
                     f"{p.speedup:.2f} | {p.relaxation * 1e3:.3f} | {p.coarsest * 1e3:.3f} | "
                     f"{p.communication * 1e3:.3f} | {p.norm * 1e3:.3f} |"
                     + (f" {p.coarsening * 1e3:.3f} |" if conv else ""))
    lines += ["", plan.verdict]
    if conv and plan.best is not None:
        lines.append(_spatial_text(plan, plan.best.settings))
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)

