"""Nested (multilevel) initialisation: train a shallow ResNet-ODE, interpolate its weights in
time to a network with more layers, continue training there, level by level.

A ResNet with N layers and final time T is forward Euler with step h = T / N on
``du/dt = sigma(W(t) u + b(t))``; layer n applies the weights theta(t_n), t_n = n h. A network
with M < N layers on the same [0, T] discretises the same ODE with step H = T / M, so once it
is trained its weights, read as a function of time and sampled at the deeper network's layer
times (:func:`interpolate_params`), give a deep network that computes nearly the same function:
with piecewise-constant weights the deep network takes N / M Euler steps of size h where the
shallow one took one of size H, an O(h) change of the output. Training the deep network then
starts from a good point instead of from scratch, and most of the optimisation steps are
taken on the cheap shallow networks (:func:`train_nested`).

Parameters are distributed over the ranks by layer (:class:`layerbraid.layout.LayerLayout`);
:func:`interpolate_distributed` moves each coarse layer to the ranks whose fine layers take
their values from it, so no rank ever holds the whole network.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from mpi4py import MPI

from ..data import Dataset
from ..layout import LayerLayout, route
from ..nn.network import ResNet, layer_key
from ..train.metrics import EpochRecord
from ..train.trainer import TrainConfig, Trainer

__all__ = ["INTERPOLATIONS", "Level", "NestedResult", "coarse_network", "interpolate_params",
           "interpolate_distributed", "nested_depths", "train_nested"]

Array = Any
Params = dict[str, Array]

#: How :func:`interpolate_params` reads the coarse layers as weights theta(t) over [0, T].
INTERPOLATIONS = {
    "constant": "piecewise constant: coarse layer m holds on [m H, (m + 1) H), so the fine "
                "network takes the coarse network's Euler steps in smaller steps",
    "linear": "piecewise linear between the coarse layers' times m H, constant after the last "
              "one: second order for smooth weights",
}


# ---- interpolation ----

def _check_compatible(coarse_net: ResNet, fine_net: ResNet) -> None:
    """Both networks must discretise the same ODE with the same input and output layers."""
    coarse, fine = coarse_net.config(), fine_net.config()
    for key in ("layer", "activation", "final_time", "opening", "classifier", "dtype"):
        if coarse[key] != fine[key]:
            raise ValueError(f"the networks differ in {key}: {coarse[key]!r} (coarse) against "
                             f"{fine[key]!r} (fine); only their depths may differ")
    if fine_net.depth < coarse_net.depth:
        raise ValueError(f"the fine network has {fine_net.depth} layers, fewer than the coarse "
                         f"network's {coarse_net.depth}; interpolation only adds layers")


def _check_kind(kind: str) -> None:
    if kind not in INTERPOLATIONS:
        raise ValueError(f"kind={kind!r} is not supported; use one of "
                         f"{', '.join(map(repr, INTERPOLATIONS))}")


def _sources(n: int, coarse_depth: int, fine_depth: int, kind: str) -> list[tuple[int, float]]:
    """Fine layer n's weights as ``sum(w * coarse layer m)``: the pairs (m, w), w > 0.

    In units of the coarse step, fine layer n sits at s = n M / N (exact integer arithmetic
    for the whole part, so a layer on a coarse time takes that layer's weights exactly).
    """
    m, rest = divmod(n * coarse_depth, fine_depth)
    if kind == "constant" or rest == 0 or m + 1 >= coarse_depth:
        return [(m, 1.0)]
    w = rest / fine_depth
    return [(m, 1.0 - w), (m + 1, w)]


def interpolate_params(params: Mapping[str, Array], coarse_net: ResNet, fine_net: ResNet,
                       kind: str = "constant", *, layers: Iterable[int] | None = None,
                       opening: bool = True, classifier: bool = True) -> Params:
    """The fine network's parameters from the coarse network's, by interpolation in time.

    Layer n of ``fine_net`` (at time t_n = n h) takes the coarse weights at t_n: those of
    coarse layer floor(t_n / H) for ``kind="constant"``, the linear interpolation between the
    two coarse layers around t_n for ``kind="linear"`` (the last coarse layer's weights after
    its time (M - 1) H). The opening and classifier are copied. See :data:`INTERPOLATIONS`.

    Args:
        params: coarse parameters by name; all of them by default, else at least the opening
            or classifier when asked for and the coarse layers the asked fine layers use.
        coarse_net, fine_net: networks that differ only in depth (and regularisation), the
            fine one at least as deep.
        layers, opening, classifier: the fine parts to compute (default: all), as in
            :meth:`ResNet.init_params`.

    Returns:
        New arrays (never views of ``params``), of the arrays' own kind (NumPy or CuPy).
    """
    _check_compatible(coarse_net, fine_net)
    _check_kind(kind)
    fine_layers = range(fine_net.depth) if layers is None else list(layers)
    bad = [n for n in fine_layers if not 0 <= n < fine_net.depth]
    if bad:
        raise ValueError(f"layers {bad[:4]} do not exist in the fine network; it has layers "
                         f"0 .. {fine_net.depth - 1}")
    sources = {n: _sources(n, coarse_net.depth, fine_net.depth, kind) for n in fine_layers}
    needed = coarse_net.parameter_shapes(sorted({m for pairs in sources.values()
                                                 for m, _ in pairs}), opening, classifier)
    missing = [name for name in needed if name not in params]
    if missing:
        raise ValueError(f"params lacks {', '.join(missing[:4])}"
                         f"{' ...' if len(missing) > 4 else ''} of the coarse network")
    for name, shape in needed.items():
        if tuple(params[name].shape) != shape:
            raise ValueError(f"params[{name!r}] has shape {tuple(params[name].shape)}; the "
                             f"coarse network's {name} has shape {shape}")

    result: Params = {}
    if opening:
        result.update({k: params[k].copy() for k in needed if k.startswith("opening.")})
    for n, pairs in sources.items():
        for part in coarse_net.layer.param_shapes():
            if len(pairs) == 1:
                result[layer_key(n, part)] = params[layer_key(pairs[0][0], part)].copy()
            else:
                (m0, w0), (m1, w1) = pairs
                result[layer_key(n, part)] = (w0 * params[layer_key(m0, part)]
                                              + w1 * params[layer_key(m1, part)])
    if classifier:
        result.update({k: params[k].copy() for k in needed if k.startswith("classifier.")})
    return result


def interpolate_distributed(params: Mapping[str, Array], coarse_net: ResNet, fine_net: ResNet,
                            kind: str = "constant", comm: MPI.Comm | None = None) -> Params:
    """Collective :func:`interpolate_params` for parameters distributed over ``comm``.

    Each rank passes the coarse parameters it holds (the layout of ``Propagator(coarse_net,
    comm)``) and gets the fine parameters it holds in ``fine_net``'s layout. Each coarse layer
    goes only to the ranks whose fine layers use it (one all-to-all); the opening stays on
    rank 0 and the classifier on the last rank, as both layouts place them.
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    _check_compatible(coarse_net, fine_net)
    _check_kind(kind)
    for net in (coarse_net, fine_net):
        if comm.Get_size() > net.depth + 1:
            raise ValueError(f"{comm.Get_size()} ranks cannot share a network of {net.depth} "
                             f"layers ({net.depth + 1} points); use at most {net.depth + 1}")
    coarse_layout = LayerLayout(coarse_net.depth, comm)
    fine_layout = LayerLayout(fine_net.depth, comm)
    parts = tuple(coarse_net.layer.param_shapes())
    outgoing: dict[int, dict[str, Array]] = {}
    for n in range(fine_net.depth):
        dest = fine_layout.layer_owner(n)
        for m, _ in _sources(n, coarse_net.depth, fine_net.depth, kind):
            if m in coarse_layout.owned_layers:
                outgoing.setdefault(dest, {}).update(
                    {layer_key(m, p): params[layer_key(m, p)] for p in parts})
    own = {k: v for k, v in params.items() if not k.startswith("layers.")}
    received = route(comm, outgoing)
    return interpolate_params({**own, **received}, coarse_net, fine_net, kind,
                              layers=fine_layout.owned_layers,
                              opening=fine_layout.has_opening,
                              classifier=fine_layout.has_classifier)


# ---- nested training ----

def coarse_network(net: ResNet, depth: int) -> ResNet:
    """``net`` with ``depth`` layers on the same time interval [0, T]: step T / depth, the
    same opening, layer kind, classifier, activation, regularisation weights and dtype."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth={depth!r} must be an int >= 1")
    return dataclasses.replace(net, depth=depth)


def nested_depths(depth: int, levels: int, factor: int = 2) -> list[int]:
    """The depths of nested training's levels, coarsest first: depth / factor^(levels - 1),
    ..., depth / factor, depth."""
    for name, value, least in (("levels", levels, 1), ("factor", factor, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}={value!r} must be an int >= {least}")
    ratio = factor ** (levels - 1)
    if depth % ratio:
        raise ValueError(f"levels={levels} with factor={factor} need a depth divisible by "
                         f"{factor}^{levels - 1} = {ratio}; the network has {depth} layers")
    return [depth // factor ** k for k in reversed(range(levels))]


@dataclass(frozen=True)
class Level:
    """One level of nested training.

    Attributes:
        net: the network trained on this level.
        history: its epochs; ``elapsed`` counts from the start of nested training (every
            coarser level's training and every interpolation included), ``epoch`` from the
            start of this level.
        interpolation_time: seconds spent interpolating the previous level's weights to this
            level (0 on the coarsest level), included in ``elapsed``.
    """

    net: ResNet
    history: list[EpochRecord]
    interpolation_time: float


@dataclass(frozen=True)
class NestedResult:
    """What :func:`train_nested` did: its levels, coarsest first, and the finest level's
    trainer, which holds the trained parameters (``trainer.params``, this rank's share)."""

    levels: list[Level]
    trainer: Trainer

    @property
    def params(self) -> Params:
        """The trained network's parameters that this rank holds."""
        return self.trainer.params

    @property
    def history(self) -> list[EpochRecord]:
        """Every level's epochs in order, ``elapsed`` cumulative over the levels."""
        return [r for level in self.levels for r in level.history]

    @property
    def elapsed(self) -> float:
        """Training seconds of all levels together, interpolations included."""
        return self.levels[-1].history[-1].elapsed


def train_nested(net: ResNet, dataset: Dataset, config: TrainConfig | None = None,
                 comm: MPI.Comm | None = None, *, levels: int = 2,
                 epochs: Sequence[int] | None = None, kind: str = "constant",
                 factor: int = 2, progress: bool = False) -> NestedResult:
    """Train ``net`` by nested initialisation: train a network with depth / factor^(levels-1)
    layers, interpolate its weights to factor times as many layers, train that, ..., up to
    ``net`` itself.

    Every level trains with ``config`` (any method: serial, parallel, one-shot) for its own
    number of epochs, with a fresh optimiser; the coarsest level starts from ``config.init``,
    every other one from the previous level's trained weights interpolated by ``kind`` (see
    :data:`INTERPOLATIONS`). The layers of every level are distributed over ``comm``.

    Args:
        net: the network to train (the finest level).
        epochs: epochs per level, coarsest first (default: ``config.epochs`` on each level).
        levels: the number of networks trained, ``net`` included (1: plain training).
        factor: the depth ratio of consecutive levels.
        progress: show each level's progress display on rank 0.

    Raises:
        ValueError: for levels, factor or epochs that do not fit, or when ``comm`` has more
            ranks than the coarsest network has points (depth + 1).
    """
    config = config or TrainConfig()
    comm = MPI.COMM_WORLD if comm is None else comm
    _check_kind(kind)
    depths = nested_depths(net.depth, levels, factor)
    if comm.Get_size() > depths[0] + 1:
        raise ValueError(f"the coarsest level has {depths[0]} layers ({depths[0] + 1} points), "
                         f"too few for {comm.Get_size()} ranks; use fewer levels (levels="
                         f"{levels}) or at most {depths[0] + 1} ranks")
    epochs = [config.epochs] * levels if epochs is None else list(epochs)
    if len(epochs) != levels or any(isinstance(e, bool) or not isinstance(e, int) or e < 1
                                    for e in epochs):
        raise ValueError(f"epochs={epochs!r} must be {levels} ints >= 1, one per level "
                         "(coarsest first)")

    done: list[Level] = []
    trainer: Trainer | None = None
    clock = 0.0     # training (and interpolation) seconds of the levels so far
    for depth, level_epochs in zip(depths, epochs):
        level_net = net if depth == net.depth else coarse_network(net, depth)
        level_config = dataclasses.replace(config, epochs=level_epochs)
        interpolation_time, start_params = 0.0, None
        if trainer is not None:
            start = time.perf_counter()
            start_params = interpolate_distributed(trainer.params, trainer.net, level_net,
                                                   kind, comm)
            interpolation_time = _slowest(time.perf_counter() - start, comm)
        trainer = Trainer(level_net, dataset, level_config, comm, progress=progress,
                          params=start_params)
        clock += interpolation_time
        history = [dataclasses.replace(r, elapsed=clock + r.elapsed) for r in trainer.fit()]
        clock = history[-1].elapsed
        done.append(Level(level_net, history, interpolation_time))
    assert trainer is not None
    return NestedResult(done, trainer)


def _slowest(seconds: float, comm: MPI.Comm) -> float:
    """The longest of the ranks' times: what a collective step costs."""
    return comm.allreduce(seconds, op=MPI.MAX) if comm.Get_size() > 1 else seconds

