"""The cost model of ``layerbraid plan``: the engine's work per rank (:func:`rank_levels`,
:func:`step_counts`) and the critical-path time of a forward + adjoint solve pair, one
function per term (:func:`predict`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .costs import MAX_SPATIAL, CostTable
from .platforms import Platform

RELAXATIONS = {"F": 0, "FCF": 1}


# ------------------------------------------------------------------------------------------
# the engine's work per rank
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """MGRIT settings of both solves (the native backend's options)."""

    max_levels: int
    cfactor: int
    relax: str = "FCF"          # "F" (nrelax 0) or "FCF" (nrelax 1), every level
    min_coarse: int = 2
    spatial: int = 0            # conv: images halved on levels 1..spatial (spatial_coarsen)
    spatial_states: bool = False  # conv: the coarse levels' states are the small images too

    def __post_init__(self) -> None:
        if self.max_levels < 1 or self.cfactor < 2 or self.min_coarse < 1 \
                or not 0 <= self.spatial <= MAX_SPATIAL:
            raise ValueError(f"bad settings {self}: max_levels >= 1, cfactor >= 2, "
                             f"min_coarse >= 1, 0 <= spatial <= {MAX_SPATIAL}")
        if self.spatial_states and self.spatial > 0 and self.relax == "F":
            raise ValueError(f"bad settings {self}: spatial_states with F-relaxation never "
                             f"corrects the C-points' fine detail (the library refuses it); "
                             f"use FCF")
        if self.relax not in RELAXATIONS:
            raise ValueError(f"relax={self.relax!r}: use F or FCF")

    @property
    def nrelax(self) -> int:
        return RELAXATIONS[self.relax]


def level_sizes(depth: int, settings: Settings) -> list[int]:
    """The last index (gupper) of every level the engine builds for depth layers."""
    g = [depth]
    while len(g) < min(settings.max_levels, 30) and g[-1] // settings.cfactor >= \
            settings.min_coarse:
        g.append(g[-1] // settings.cfactor)
    return g


@dataclass(frozen=True)
class RankLevel:
    """One level's points on every rank (arrays over ranks, in rank order)."""

    gupper: int
    cfactor: int          # the level's C-point spacing (gupper + 1 on the coarsest)
    lo: np.ndarray
    hi: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return np.maximum(self.hi - self.lo + 1, 0)

    @property
    def has_first(self) -> np.ndarray:
        """1 on the rank holding point 0 (the initial condition: never stepped)."""
        return ((self.lo == 0) & (self.n > 0)).astype(np.int64)

    @property
    def stepped(self) -> np.ndarray:
        """Steps of a sweep that also steps the C-points (relaxation, restriction)."""
        return self.n - self.has_first

    @property
    def cpoints(self) -> np.ndarray:
        c = self.cfactor
        k = np.floor_divide(self.hi, c) - (-np.floor_divide(-self.lo, c)) + 1
        return np.where(self.n > 0, np.maximum(k, 0), 0)

    @property
    def fpoints(self) -> np.ndarray:
        return self.n - self.cpoints

    def holders(self) -> np.ndarray:
        """The ranks with points on this level, in time order."""
        order = np.argsort(self.lo, kind="stable")
        return order[self.n[order] > 0]


def rank_levels(depth: int, ranks: int, settings: Settings, reverted: bool = False
                ) -> list[RankLevel]:
    """Every level's block of points on each rank: the fine grid's depth + 1 points blocked
    (the first (depth + 1) % ranks ranks one more), mirrored for the adjoint (reverted ranks),
    coarse blocks the C-points of the finer block."""
    if ranks < 1 or ranks > depth + 1:
        raise ValueError(f"{ranks} ranks cannot share {depth} layers ({depth + 1} points); use "
                         f"1 to {depth + 1} ranks")
    npts = depth + 1
    r = np.arange(ranks, dtype=np.int64)
    quo, rem = divmod(npts, ranks)
    lo = r * quo + np.minimum(r, rem)
    hi = lo + quo + (r < rem) - 1
    if reverted:
        lo, hi = depth - hi, depth - lo
    sizes = level_sizes(depth, settings)
    out = []
    for l, g in enumerate(sizes):
        cf = settings.cfactor if l < len(sizes) - 1 else g + 1
        out.append(RankLevel(g, cf, lo, hi))
        lo = -np.floor_divide(-lo, settings.cfactor)
        hi = np.floor_divide(hi, settings.cfactor)
    return out


def _vcycle_steps(lv: Sequence[RankLevel], nrelax: int) -> tuple[np.ndarray, np.ndarray]:
    L = len(lv)
    total = np.zeros_like(lv[0].n)
    for l in range(L - 1):
        total += (nrelax + 1) * lv[l].stepped + lv[l + 1].stepped
    for l in range(1, L - 1):
        total += lv[l].fpoints
    coarsest = lv[-1].stepped * 2 if L > 1 else np.zeros_like(total)
    total += lv[-1].stepped
    return total, coarsest


def step_counts(depth: int, ranks: int, settings: Settings, iterations: int, *,
                skip_first: bool = True, adjoint: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per rank: (steps, steps on the coarsest level) of one solve of ``iterations`` MGRIT
    iterations (the engine's count, the skipped first cycle included), the final access sweep
    included: what the native solve infos report as ``steps`` / ``steps_coarsest``."""
    lv = rank_levels(depth, ranks, settings, reverted=adjoint)
    if len(lv) == 1:
        return lv[0].stepped.copy(), lv[0].stepped.copy()
    v, vc = _vcycle_steps(lv, settings.nrelax)
    steps = np.zeros_like(v)
    coarsest = np.zeros_like(v)
    if iterations > 0:
        if skip_first:
            steps += lv[-1].stepped + sum((lv[l].fpoints for l in range(1, len(lv) - 1)),
                                          np.zeros_like(v))
            coarsest += lv[-1].stepped
            steps += (iterations - 1) * v
            coarsest += (iterations - 1) * vc
        else:
            steps += iterations * v
            coarsest += iterations * vc
    steps += lv[0].fpoints   # the final access sweep
    return steps, coarsest


# ------------------------------------------------------------------------------------------
# the time model: one function per term
# ------------------------------------------------------------------------------------------

@dataclass
class Breakdown:
    """Seconds on the critical path by kind (one solve or a sum of solves)."""

    relaxation: float = 0.0      # sweeps on every level but the coarsest: slowest rank's work
    coarsest: float = 0.0        # the sequential coarsest-grid solve, its messages included
    communication: float = 0.0   # one neighbour message per sweep of the other levels
    norm: float = 0.0            # residual-norm reductions and the final success vote
    coarsening: float = 0.0      # spatial coarsening outside the sweeps (spatial_setup,
    #                              the skipped cycle's coarsened initial guess)

    @property
    def total(self) -> float:
        return self.relaxation + self.coarsest + self.communication + self.norm \
            + self.coarsening

    def __iadd__(self, other: "Breakdown") -> "Breakdown":
        for k in ("relaxation", "coarsest", "communication", "norm", "coarsening"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self


@dataclass(frozen=True)
class _Ctx:
    costs: CostTable
    platform: Platform
    adjoint: bool
    spatial: int = 0         # coarse steps on images halved min(level, spatial) times
    low_states: bool = False  # spatial_states: the coarse levels' vectors are the small images

    def step_res(self, level: int) -> int:
        """The resolution (halvings) level `level` steps on."""
        return min(level, self.spatial)

    def res(self, level: int) -> int:
        """The resolution of the vectors of level `level` (full size unless low_states)."""
        return self.step_res(level) if self.low_states else 0

    def step(self, level: int) -> float:
        """A step on `level`. Coarse levels step on images halved s = min(level, spatial)
        times; with full-size states (not low_states) such a step also moves the state there
        and back: s poolings, a copy (pack) of the small image, the step, a subtraction (sum)
        at s and s refinements of the update (the library's low-resolution update)."""
        d = "adjoint" if self.adjoint else "forward"
        if level == 0:
            return self.costs[f"step_{d}_fine"] / self.platform.speed
        s = self.step_res(level)
        t = self.costs[self.costs.key(f"step_{d}_coarse", s)]
        if s > 0 and not self.low_states:
            t += sum(self.costs[f"coarsen_s{k}"] + self.costs[f"refine_s{k}"]
                     for k in range(1, s + 1))
            t += self.costs[f"pack_s{s}"] + self.costs[f"sum_s{s}"]
        return t / self.platform.speed

    def op(self, name: str, level: int = 0) -> float:
        """A vector operation on a vector of level `level`."""
        return self.costs[self.costs.key(name, self.res(level))] / self.platform.speed

    def message_bytes(self, level: int) -> float:
        """Low-resolution states: the state at the level's resolution and its 16-byte header;
        otherwise the bare full-size state (as dense messages)."""
        return self.costs.message_bytes_at(self.res(level), header=self.low_states)

    def coarsen(self, level: int) -> float:
        """One vector from level to level + 1 (_braid_CoarsenInto): without the engine's
        spatial coarsening (spatial 0, or full-size states) a copy into the coarse vector (a
        sum); with low-resolution states the user's coarsen, a 2x2 pooling while level <
        spatial, a copy into a new vector (a clone) after."""
        if self.spatial == 0 or not self.low_states:
            return self.op("sum", level)
        if level < self.spatial:
            return self.op(f"coarsen_s{level + 1}")
        return self.op("clone", level)

    def refine(self, level: int) -> float:
        """One correction from level to level - 1 (_braid_RefineNew): nothing without the
        engine's spatial coarsening (the coarse vector is added directly); with
        low-resolution states the 2x2 copy while level <= spatial, else a clone."""
        if self.spatial == 0 or not self.low_states:
            return 0.0
        if level <= self.spatial:
            return self.op(f"refine_s{level}")
        return self.op("clone", level)


def sweep_work(ctx: _Ctx, level: int, lv: RankLevel, steps: np.ndarray, *, clones: np.ndarray,
               sums: np.ndarray, norms: np.ndarray | int = 0) -> float:
    """The slowest rank's computation in a sweep without chains (the FAS coarse step): its
    steps, clones, sums and norms, and pack + unpack of its one neighbour message."""
    work = (steps * ctx.step(level) + clones * ctx.op("clone", level)
            + sums * ctx.op("sum", level) + np.asarray(norms) * ctx.op("norm", level))
    if len(lv.holders()) > 1:
        work = work + (lv.n > 0) * (ctx.op("pack", level) + ctx.op("unpack", level))
    return float(work.max()) if work.size else 0.0


def message_times(platform: Platform, a: np.ndarray, b: np.ndarray, nbytes: float
                  ) -> np.ndarray:
    """Seconds of one message from each rank of a to the rank of b (vectorised
    :meth:`Platform.message_time`)."""
    ha, hb = a // platform.cores_per_host, b // platform.cores_per_host
    hops = np.where(ha == hb, 0, 2)
    if platform.hosts_per_leaf:
        leaf = platform.hosts_per_leaf
        hops = np.where((hops > 0) & (ha // leaf != hb // leaf), 4, hops)
    return np.where(hops == 0, platform.loopback_latency + nbytes / platform.loopback_bandwidth,
                    hops * platform.link_latency + nbytes / platform.link_bandwidth)


def neighbour_message(ctx: _Ctx, level: int, lv: RankLevel) -> float:
    """One message between consecutive ranks holding points of the level (the slowest pair)."""
    h = lv.holders()
    if len(h) < 2:
        return 0.0
    return float(message_times(ctx.platform, h[:-1], h[1:], ctx.message_bytes(level)).max())


def sweep_path(ctx: _Ctx, level: int, lv: RankLevel, *, cprop: bool, step_extra: float = 0.0,
               point_extra: float = 0.0, cpoint_extra: float = 0.0) -> tuple[float, float]:
    """(slowest rank's work, critical path) of one sweep of relax.c's _braid_Sweep.

    Each rank first steps its trailing F-points (right of its last C-point) and sends the
    result right, then its other intervals; its leftmost interval waits for the left
    neighbour's value. A rank without a C-point of its own (an interval spanning ranks; on
    the coarsest level every rank but the first) waits for its left neighbour before it can
    start: such ranks form a chain. cprop: the sweep also steps to the C-points (relaxation,
    restriction) rather than only the F-points (interpolation, access, coarsest solve).
    Extras (seconds): per step (the FAS sum), per point (corrections), per C-point
    (restriction's copies and residual norm).
    """
    h = lv.holders()
    if len(h) == 0:
        return 0.0, 0.0
    lo, hi, n = lv.lo[h], lv.hi[h], lv.n[h]
    cf = lv.cfactor
    cl = -np.floor_divide(-lo, cf) * cf
    cu = np.floor_divide(hi, cf) * cf
    hasc = cl <= cu
    ncp = np.where(hasc, (cu - cl) // cf + 1, 0)
    step = ctx.step(level) + step_extra
    clone = ctx.op("clone", level)
    steps = n - (lo == 0) if cprop else n - ncp
    msg_ops = ctx.op("pack", level) + ctx.op("unpack", level) if len(h) > 1 else 0.0
    work = steps * step + n * point_extra + ncp * (cpoint_extra + clone) + msg_ops
    trail = np.where(hasc, (hi - cu) * (step + point_extra) + (hi > cu) * clone, work)
    first_c = (step if cprop else 0.0) + point_extra + cpoint_extra
    first = np.where(hasc & (cl > 0), (cl - lo) * (step + point_extra) + first_c, 0.0)
    msg = message_times(ctx.platform, h[:-1], h[1:], ctx.message_bytes(level))
    msg_in = np.concatenate(([0.0], msg))
    # t_send: when each rank's value for its right neighbour is ready
    cs = np.cumsum(np.where(hasc, 0.0, msg_in + work))
    last_c = np.maximum.accumulate(np.where(hasc, np.arange(len(h)), 0))
    t_send = cs + (trail - cs)[last_c]
    arrive = np.concatenate(([0.0], t_send[:-1] + msg))
    finish = np.where(hasc, np.maximum(work - first, arrive) + first, t_send)
    return float(work.max()), float(finish.max())


def _add_sweep(b: Breakdown, path: tuple[float, float], times: int = 1) -> None:
    """A sweep's work under relaxation, the rest of its critical path (messages and waits
    along chains) under communication."""
    b.relaxation += times * path[0]
    b.communication += times * (path[1] - path[0])


def relaxation_sweep(ctx: _Ctx, level: int, lv: RankLevel) -> tuple[float, float]:
    """One FC sweep of FCRelax (FAS sum per step on coarse levels)."""
    return sweep_path(ctx, level, lv, cprop=True,
                      step_extra=ctx.op("sum", level) if level > 0 else 0.0)


def restriction_sweep(ctx: _Ctx, level: int, lv: RankLevel) -> tuple[float, float]:
    """FRestrict's sweep: F-relaxation and the step to each C-point, whose value is moved to
    level + 1 (the restricted value and the FAS term: :meth:`_Ctx.coarsen` each, the user's
    coarsen with spatial coarsening, else copies; the coarse point: a copy at the coarse
    resolution) and on level 0 gives the residual (a sum and a norm)."""
    extra = 2 * ctx.coarsen(level) + ctx.op("sum", level + 1) \
        + (ctx.op("sum") + ctx.op("norm") if level == 0 else 0.0)
    return sweep_path(ctx, level, lv, cprop=True,
                      step_extra=ctx.op("sum", level) if level > 0 else 0.0,
                      cpoint_extra=extra)


def coarse_rhs(ctx: _Ctx, level: int, lv: RankLevel) -> float:
    """The FAS right-hand side on coarse level `level`: a clone, a step and a sum per point;
    no chain (each point needs only the restricted value before it)."""
    return sweep_work(ctx, level, lv, lv.stepped, clones=lv.stepped, sums=lv.stepped) \
        + neighbour_message(ctx, level, lv)


def _correction(ctx: _Ctx, level: int) -> float:
    """FInterp's correction at a point of `level`: e = u - v (a sum on this level), e on the
    finer level (:meth:`_Ctx.refine`; nothing without spatial coarsening) added to its C-point
    (a sum there)."""
    return ctx.op("sum", level) + ctx.refine(level) + ctx.op("sum", level - 1)


def interpolation(ctx: _Ctx, level: int, lv: RankLevel) -> tuple[float, float]:
    """FInterp on a level between the finest and the coarsest: F-relaxation (with the FAS
    sum) and the correction of the finer level at every point."""
    return sweep_path(ctx, level, lv, cprop=False, step_extra=ctx.op("sum", level),
                      point_extra=_correction(ctx, level))


def coarsest_solve(ctx: _Ctx, level: int, lv: RankLevel) -> float:
    """The sequential solve on the coarsest level (FInterp there: one interval over the whole
    level, so a chain through every rank holding its points, with the FAS sum per step and
    the correction per point); on one level, the plain serial sweep."""
    if level == 0:
        return sweep_path(ctx, 0, lv, cprop=False)[1]
    return sweep_path(ctx, level, lv, cprop=False, step_extra=ctx.op("sum", level),
                      point_extra=_correction(ctx, level))[1]


def reduction(ctx: _Ctx, ranks: int, nbytes: float = 64.0) -> float:
    """A binomial-tree reduction to rank 0 and the broadcast back (reduce.c): at each round
    the message between ranks `mask` apart, up then down."""
    t, mask = 0.0, 1
    while mask < ranks:
        t += 2 * ctx.platform.message_time(0, mask, nbytes)
        mask <<= 1
    return t


def vcycle_time(ctx: _Ctx, lv: Sequence[RankLevel], nrelax: int, ranks: int) -> Breakdown:
    """One V-cycle from the finest level: per level relaxation, restriction (with the residual
    norm on level 0), the FAS coarse step, the coarsest solve, interpolation."""
    b = Breakdown()
    L = len(lv)
    for l in range(L - 1):
        _add_sweep(b, relaxation_sweep(ctx, l, lv[l]), nrelax)
        _add_sweep(b, restriction_sweep(ctx, l, lv[l]))
        rhs = coarse_rhs(ctx, l + 1, lv[l + 1])
        if l + 1 == L - 1:
            b.coarsest += rhs
        else:
            b.relaxation += rhs
        if l == 0:
            b.norm += reduction(ctx, ranks)
    b.coarsest += coarsest_solve(ctx, L - 1, lv[-1])
    for l in range(1, L - 1):
        _add_sweep(b, interpolation(ctx, l, lv[l]))
    return b


def inject_initial_guess(ctx: _Ctx, lv: Sequence[RankLevel]) -> float:
    """The skipped cycle's start with low-resolution states: every coarse point of every level
    takes the finer level's value through the user's coarsen (and its C-points a copy); the
    slowest rank's work, no messages. Otherwise these are copies the model leaves out (0)."""
    if ctx.spatial == 0 or not ctx.low_states:
        return 0.0
    work = np.zeros(len(lv[0].n))
    for l in range(1, len(lv)):
        work = work + lv[l].n * ctx.coarsen(l - 1) + lv[l].cpoints * ctx.op("sum", l)
    return float(work.max()) if work.size else 0.0


def skip_cycle_time(ctx: _Ctx, lv: Sequence[RankLevel]) -> Breakdown:
    """The first cycle with skip: the coarsest solve and interpolation up, no relaxation
    (with spatial coarsening, the initial guess coarsened to every level first)."""
    b = Breakdown()
    b.coarsening += inject_initial_guess(ctx, lv)
    b.coarsest += coarsest_solve(ctx, len(lv) - 1, lv[-1])
    for l in range(len(lv) - 2, 0, -1):
        _add_sweep(b, interpolation(ctx, l, lv[l]))
    return b


def final_time(ctx: _Ctx, lv: Sequence[RankLevel], ranks: int) -> Breakdown:
    """After the last cycle: the access sweep on the finest level (its F-points stepped) and
    the success vote (a reduction)."""
    b = Breakdown()
    _add_sweep(b, sweep_path(ctx, 0, lv[0], cprop=False))
    b.norm += reduction(ctx, ranks)
    return b


def spatial_setup(ctx: _Ctx, lv0: RankLevel) -> float:
    """Before a solve with spatial coarsening, each rank's layers (those stepping to its
    points) on the coarse images: S coarse kernels per layer (kernel_coarsen), and before the
    adjoint also the layer's sigma'(z) pooled to each resolution s = 1..S (coarsen_s<s>). The
    slowest rank's work (no messages)."""
    S = ctx.spatial
    if S == 0:
        return 0.0
    per_layer = S * ctx.op("kernel_coarsen")
    if ctx.adjoint:
        per_layer += sum(ctx.op(f"coarsen_s{s}") for s in range(1, S + 1))
    layers = lv0.stepped
    return float(layers.max() * per_layer) if layers.size else 0.0


def solve_time(ctx: _Ctx, depth: int, ranks: int, settings: Settings, iterations: int,
               skip_first: bool) -> Breakdown:
    """One solve: the spatial setup, its cycles (the first skipped when skip_first), the
    final access sweep."""
    lv = rank_levels(depth, ranks, settings, reverted=ctx.adjoint)
    b = Breakdown()
    b.coarsening += spatial_setup(ctx, lv[0])
    if len(lv) == 1:
        b.coarsest = coarsest_solve(ctx, 0, lv[0])
        b.norm = reduction(ctx, ranks)
        return b
    v = vcycle_time(ctx, lv, settings.nrelax, ranks)
    for k in range(iterations):
        if k == 0 and skip_first:
            b += skip_cycle_time(ctx, lv)
        else:
            b += v
    b += final_time(ctx, lv, ranks)
    return b


def serial_time(depth: int, costs: CostTable, speed: float = 1.0) -> float:
    """Layer-serial forward + backward on one rank: depth fine steps each way, plus the clone
    and init of each solve."""
    c = costs
    return (depth * (c["step_forward_fine"] + c["step_adjoint_fine"])
            + 2 * (c["clone"] + c["init"])) / speed


@dataclass(frozen=True)
class Prediction:
    """Predicted seconds of one training step (forward + adjoint solve) on ``ranks`` ranks."""

    settings: Settings
    ranks: int
    levels: int
    iterations: tuple[int, int]     # forward, adjoint
    skip_first: bool
    forward: float
    adjoint: float
    relaxation: float
    coarsest: float
    communication: float
    norm: float
    serial: float                   # layer-serial on one rank
    coarsening: float = 0.0         # spatial setup and the coarsened initial guess

    @property
    def total(self) -> float:
        return self.forward + self.adjoint

    @property
    def speedup(self) -> float:
        return self.serial / self.total if self.total > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"] = asdict(self.settings)
        d["iterations"] = list(self.iterations)
        d["total"] = self.total
        d["speedup"] = self.speedup
        return d


def predict(depth: int, ranks: int, settings: Settings, iterations: tuple[int, int],
            costs: CostTable, platform: Platform, *, skip_first: bool = True) -> Prediction:
    """Predict a forward + adjoint solve pair on ``ranks`` ranks of ``platform``.

    iterations: the engine's MGRIT iteration counts (forward, adjoint); skip_first: the first
    cycle skips its down-cycle (solves that start from zero: tolerance mode; warm-started
    one-shot solves do not).
    """
    if ranks > platform.ranks:
        raise ValueError(f"{ranks} ranks do not fit platform {platform.name!r} "
                         f"({platform.hosts} hosts x {platform.cores_per_host} cores = "
                         f"{platform.ranks} ranks)")
    if any(i < 0 for i in iterations):
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if settings.spatial > costs.spatial:
        raise ValueError(f"spatial coarsening {settings.spatial} needs a conv cost table with "
                         f"the costs of {settings.spatial} halved resolutions; this "
                         + (f"one has {costs.spatial}" if costs.network == "conv"
                            else "one is for a dense network"))
    parts = []
    for k, adjoint in enumerate((False, True)):
        ctx = _Ctx(costs, platform, adjoint, settings.spatial,
                   settings.spatial_states and settings.spatial > 0)
        parts.append(solve_time(ctx, depth, ranks, settings, iterations[k], skip_first))
    total = Breakdown()
    for p in parts:
        total += p
    return Prediction(settings=settings, ranks=ranks,
                      levels=len(level_sizes(depth, settings)),
                      iterations=(int(iterations[0]), int(iterations[1])),
                      skip_first=skip_first, forward=parts[0].total, adjoint=parts[1].total,
                      relaxation=total.relaxation, coarsest=total.coarsest,
                      communication=total.communication, norm=total.norm,
                      serial=serial_time(depth, costs, platform.speed),
                      coarsening=total.coarsening)
