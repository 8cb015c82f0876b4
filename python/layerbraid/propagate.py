"""Forward and backward propagation through a ResNet-ODE, serial or layer-parallel with MGRIT.

The forward solve is an engine solve over the layers: its step is one residual layer. The
backward solve (backpropagation) is a second engine solve over the same points in reverse
order, whose step is the layer's adjoint. With ``max_levels=1`` both are plain sequential
sweeps, i.e. exact backpropagation; with more levels they are MGRIT solves, to a tolerance or
for a fixed number of cycles.

What the adjoint keeps from the forward solve. Backpropagation through layer n needs the
layer's input u_n and sigma'(z_n), z_n = W_n u_n + b_n. Every fine-grid forward step stores
both into a per-layer cache (overwritten by later fine steps, so after the solve it holds the
values of the last cycle), which costs 2 states per layer: for N layers, batch B and
width W that is 2 N B W numbers, split over the ranks, the same memory as PyTorch's saved
activations. Coarse-grid steps store nothing. The adjoint's coarse steps reuse the fine
sigma'(z_n) at their target point, and weight gradients are computed by fine-grid adjoint steps
only (the last one for each layer wins).

The piggy-back way (``gradient_method="piggy-back"``): one engine drive with the adjoint
(``Solver(adjoint=True)``, XBraid_Adjoint's iteration) computes loss and gradient. Each MGRIT
cycle of the forward solve is followed by a sweep of its adjoint over the recorded steps
(``step_diff``: the layer's adjoint at the step's recorded input); the objective is the loss
of u_N (classifier and cross-entropy). Every step, fine and coarse, adds the derivative of its
layer's parameters; at convergence the coarse steps' parts cancel (in exact arithmetic) and
the gradient is the exact one. The engine hands back dJ/du_0, which the opening layer takes
on rank 0. Nothing is cached between the solves (the engine keeps each step's input), and
there is no second solve: capped at a few cycles and warm-started (the engine keeps state and
adjoint between drives), it is a one-shot method whose state and adjoint iterate together.

Bit-identical on any number of ranks: a layer's gradient sums the contributions of the steps
that use it, the fine step and the coarse steps of every level whose target is point n + 1.
All of them run on the layer's owner (a step runs on the owner of its target point), each
(level, layer) pair gets its terms in the same order on any number of ranks (the engine's
tape guarantees it), and the pairs are added per layer in level order.

One entry point serves every trainer: :meth:`Propagator.loss_and_gradient`. With
``backend="native"`` the two layer solves run in C++ (:mod:`layerbraid.native`): the same
algorithm, steps and exchanges, without Python callbacks (two-solve only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np
from mpi4py import MPI

from .app import App
from .backends import BACKENDS as ARRAY_BACKENDS, ArrayOps, get_ops
from .braid import SolveResult, Solver, check_options
from .layout import LayerLayout, route
from .native import NativeLayers, native_options
from .nn.layers import Conv, Workspace
from .nn.network import ResNet, layer_key

__all__ = ["Propagator", "Evaluation", "SERIAL", "LAYER_PARALLEL", "GRADIENT_METHODS"]

Array = Any
Params = dict[str, Array]

#: Solver options for exact, layer-by-layer propagation.
SERIAL: dict[str, Any] = {"max_levels": 1}

#: The backends :class:`Propagator` accepts: the array backends and "native" (C++ solves).
PROPAGATOR_BACKENDS: tuple[str, ...] = (*ARRAY_BACKENDS, "native")

#: How :class:`Propagator` computes loss and gradient.
GRADIENT_METHODS: dict[str, str] = {
    "two-solve": "a forward solve over the layers, then an adjoint solve over them in reverse",
    "piggy-back": "one drive of the engine's adjoint iteration: every forward MGRIT cycle is "
                  "followed by an adjoint sweep over its recorded steps (XBraid_Adjoint)",
}

#: Default solver options for layer-parallel propagation solved to a tight tolerance.
LAYER_PARALLEL: dict[str, Any] = {"max_levels": 10, "cfactor": 4, "min_coarse": 2,
                                  "nrelax": 1, "abs_tol": 1e-10, "max_iter": 50}


@dataclass(frozen=True)
class Evaluation:
    """What one :meth:`Propagator.loss_and_gradient` call computed.

    Attributes:
        loss: the objective: data loss plus every regularisation term (the same on every rank).
        data_loss: the mean softmax cross-entropy of the batch.
        accuracy: the fraction of the batch classified correctly.
        gradient: dLoss/dtheta for the parameters this rank holds (None for ``loss`` calls).
        forward, adjoint: what the two solves did (adjoint None when not run). With the
            piggy-back method both describe the one drive; ``adjoint.residual_history`` is
            then the adjoint's residual history.
    """

    loss: float
    data_loss: float
    accuracy: float
    gradient: Params | None
    forward: SolveResult
    adjoint: SolveResult | None


class _LayerApp(App):
    """What the forward and adjoint apps share: the network, the backend and the scratch."""

    def __init__(self, net: ResNet, ops: ArrayOps, batch: int) -> None:
        super().__init__(ops.name)
        self.net, self.ops = net, ops
        self.shape = net.layer.state_shape(batch)
        self.dtype = net.np_dtype
        self.work = Workspace(ops.xp, self.shape, self.dtype, net.layer)
        self.params: dict[int, Params] = {}   # layer n -> {"weight", "bias"}, set before a solve
        self.initial: Array | None = None     # the state at tstart, where this rank holds it
        self.final: Array | None = None       # the state at tstop after the solve
        self.recorded: dict[int, Array] | None = None  # every point's state, when asked for
        # Warm starts across checkpoints: the C-points (index % cstride == 0) the engine keeps
        # between solves, copied after each solve, and states to start a new solver from.
        self.cstride = 0
        self.cpoints: dict[int, Array] = {}
        self.restore: dict[int, Array] = {}

    def _target_point(self, t: float) -> int:
        """The fine point index of time t (times are exact multiples of the step)."""
        return int(round((t - self.tstart) / (self.tstop - self.tstart) * self.ntime))

    def init(self, t: float) -> Array:
        if t == self.tstart and self.initial is not None:
            return self.initial.copy()
        saved = self.restore.pop(self._target_point(t), None)
        if saved is not None:
            return self.xp.array(saved, dtype=self.dtype)
        return self.xp.zeros(self.shape, dtype=self.dtype)

    def access(self, u: Array, status: Any) -> None:
        if not status.done:
            return
        if status.tindex == self.ntime:
            self.final = u.copy()
        if self.recorded is not None:
            self.recorded[status.tindex] = u.copy()
        if self.cstride and status.tindex % self.cstride == 0:
            kept = self.cpoints.get(status.tindex)
            if kept is None:
                self.cpoints[status.tindex] = u.copy()
            else:
                self.xp.copyto(kept, u)  # reuse the copy of the previous solve


class ForwardApp(_LayerApp):
    """Steps u_p from u_{p-1} with layer p - 1; fine steps also fill the adjoint's caches
    (without ``cache``, as for the piggy-back gradient, there are none)."""

    def __init__(self, net: ResNet, ops: ArrayOps, batch: int, layers: range,
                 cache: bool = True) -> None:
        super().__init__(net, ops, batch)
        self.first_layer = layers.start
        self.cache_u = self.xp.empty((len(layers), *self.shape), dtype=self.dtype) if cache \
            else None
        self.cache_deriv = self.xp.empty_like(self.cache_u) if cache else None
        self.keep_cache = cache

    def step(self, u: Array, ustop: Array, status: Any) -> None:
        n = self._target_point(status.tstop) - 1
        dt = status.tstop - status.tstart
        if status.level == 0 and self.keep_cache:
            i = n - self.first_layer
            self.net.layer.forward(self.ops, u, self.params[n], dt, self.net.activation,
                                   self.work, self.cache_u[i], self.cache_deriv[i])
        else:
            self.net.layer.forward(self.ops, u, self.params[n], dt, self.net.activation,
                                   self.work)

    def cached(self, n: int) -> tuple[Array, Array]:
        i = n - self.first_layer
        return self.cache_u[i], self.cache_deriv[i]


class BackpropApp(_LayerApp):
    """Steps lambda_n from lambda_{n+1} (time index N - n) with layer n's transposed Jacobian;
    fine steps write layer n's gradient."""

    def __init__(self, net: ResNet, ops: ArrayOps, batch: int, layers: range) -> None:
        super().__init__(net, ops, batch)
        self.saved: dict[int, tuple[Array, Array]] = {}   # n -> (u_n, sigma'(z_n))
        self.grads = {n: {p: self.xp.zeros(s, dtype=self.dtype)
                          for p, s in net.layer.param_shapes().items()} for n in layers}

    def step(self, lam: Array, ustop: Array, status: Any) -> None:
        n = self.ntime - self._target_point(status.tstop)
        dt = status.tstop - status.tstart
        u_n, deriv = self.saved[n]
        fine = status.level == 0
        self.net.layer.adjoint(self.ops, lam, self.params[n], dt, deriv, self.work,
                               u_n if fine else None, self.grads[n] if fine else None)


class PiggyBackApp(_LayerApp):
    """The forward step, its adjoint (``step_diff``) and the loss of u_N (the objective) for
    the engine's piggy-back iteration. Each sweep's parameter derivatives are summed per
    (level, layer) in :attr:`contributions`; :meth:`layer_gradients` adds a layer's levels."""

    def __init__(self, net: ResNet, ops: ArrayOps, batch: int, layers: range) -> None:
        super().__init__(net, ops, batch)
        self.layers = layers
        self.labels: Array | None = None
        self.classifier: Params = {}                 # the classifier's parameters (last rank)
        self.classifier_grads: Params | None = None  # and their gradient, written per sweep
        self.data_loss, self.correct = 0.0, 0        # of the last objective call
        shapes = net.layer.param_shapes()
        self.contributions: dict[tuple[int, int], Params] = {}
        self._step_grads = {p: self.xp.empty(s, dtype=self.dtype) for p, s in shapes.items()}
        self._u = self.xp.empty(self.shape, dtype=self.dtype)
        self._deriv = self.xp.empty(self.shape, dtype=self.dtype)

    def step(self, u: Array, ustop: Array, status: Any) -> None:
        n = self._target_point(status.tstop) - 1
        self.net.layer.forward(self.ops, u, self.params[n], status.tstop - status.tstart,
                               self.net.activation, self.work)

    def step_diff(self, ustop: Array, u: Array, ustop_bar: Array, u_bar: Array,
                  status: Any) -> None:
        """u_bar <- the step's transposed Jacobian times u_bar, at the recorded input u; the
        layer's parameter derivative into the step's (level, layer) sum."""
        n = self._target_point(status.tstop) - 1
        dt = status.tstop - status.tstart
        params = self.params[n]
        # sigma'(z) again: the tape keeps the step's input, not its pre-activation
        self.xp.copyto(self._u, u)
        self.net.layer.forward(self.ops, self._u, params, dt, self.net.activation, self.work,
                               cache_deriv=self._deriv)
        self.net.layer.adjoint(self.ops, u_bar, params, dt, self._deriv, self.work, u,
                               self._step_grads)
        key = (status.level, n)
        total = self.contributions.get(key)
        if total is None:
            self.contributions[key] = {p: g.copy() for p, g in self._step_grads.items()}
        else:
            for p, g in self._step_grads.items():
                total[p] += g

    def objective(self, u: Array, status: Any) -> float:
        """The mean cross-entropy of u_N (the objective window holds point N only)."""
        self.data_loss, self.correct, _ = self.net.classifier.loss_and_adjoint(
            self.xp, u, self.labels, self.classifier, None)
        return self.data_loss

    def objective_diff(self, u: Array, u_bar: Array, f_bar: float, status: Any) -> None:
        """u_bar <- f_bar dLoss/du_N; f_bar times the classifier's gradient into its own."""
        assert self.classifier_grads is not None
        grads = {p: self.xp.empty_like(g) for p, g in self.classifier_grads.items()}
        _, _, lam = self.net.classifier.loss_and_adjoint(self.xp, u, self.labels,
                                                          self.classifier, grads)
        self.xp.multiply(lam, f_bar, out=u_bar)
        for p, g in grads.items():
            self.classifier_grads[p] += f_bar * g

    def reset_gradient(self) -> None:
        """Before each adjoint sweep: the sweep's derivatives start from zero."""
        self.contributions.clear()
        if self.classifier_grads is not None:
            for g in self.classifier_grads.values():
                g.fill(0)

    def layer_gradients(self, stacks: Params) -> None:
        """This rank's layers' gradients into ``stacks`` (row i: layer ``layers.start + i``):
        each layer's (level, layer) sums added in level order, the same on any number of
        ranks."""
        for stack in stacks.values():
            stack.fill(0)
        for key in sorted(self.contributions):      # (level, layer): level order per layer
            row = key[1] - self.layers.start
            for p, g in self.contributions[key].items():
                stacks[p][row] += g


def _checked_spatial_coarsen(net: ResNet, backend: str, value: Any) -> int:
    """Propagator's spatial_coarsen, checked: an int >= 0; > 0 only for conv layers on the
    native backend, with images that halve that often."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"spatial_coarsen={value!r} must be an int >= 0 (0 = off)")
    value = int(value)
    if value == 0:
        return 0
    layer = net.layer
    if not isinstance(layer, Conv):
        raise ValueError(f"spatial_coarsen={value} needs conv layers; the network's layers are "
                         f"{type(layer).__name__}, which have no image to coarsen")
    if backend != "native":
        raise ValueError(f"spatial_coarsen={value} runs in the native backend's C++ layer "
                         f"solves; use backend='native' (not {backend!r})")
    if value > 30 or layer.height % (1 << value) or layer.width % (1 << value):
        raise ValueError(f"spatial_coarsen={value} halves {layer.height} x {layer.width} "
                         f"images {value} times; height and width must be divisible by "
                         f"2^{value}")
    return value


class Propagator:
    """Loss and gradient of a ResNet-ODE for a batch, by forward and adjoint solves over the
    layers distributed over the ranks of ``comm``.

    Args:
        net: the model.
        comm: the ranks that share the layers (default COMM_WORLD).
        backend: "numpy" (layer steps as NumPy callbacks), "native" (the layer solves in C++
            on OpenBLAS, see :mod:`layerbraid.native`; NumPy arrays in and out) or "cupy".
        options: solver options of both solves (see :data:`layerbraid.braid.OPTIONS`);
            default :data:`SERIAL`, exact backpropagation. ``print_level`` defaults to 0.
        adjoint_options: overrides of ``options`` for the adjoint solve. With the piggy-back
            method only the adjoint's tolerance (``abs_tol`` or ``rel_tol``; default: that of
            ``options``, else the engine's relative 1e-6).
        warm_start: reuse each solve's last solution as the next call's initial guess (for
            one-shot training); otherwise every call starts from zero.
        gradient_method: how :meth:`loss_and_gradient` gets the gradient (see
            :data:`GRADIENT_METHODS`): "two-solve" (default), a forward then an adjoint
            solve; or "piggy-back", one drive of the engine's adjoint iteration, which stops
            when the state's residual meets ``options``' tolerance and the adjoint's its own.
            Solved to tolerance both give the exact gradient (with ``max_levels=1`` both are
            exact backpropagation, bit for bit the same); capped at ``max_iter`` cycles and
            warm-started, piggy-back is a one-shot method. Its gradient comes from the
            drive's last adjoint sweep, which starts from the adjoint of the sweep before:
            capped, it needs a cycle more than two-solve for gradients as good. Not with
            ``backend="native"``. :meth:`loss`, :meth:`predict` and :meth:`forward_states`
            are forward solves either way.
        spatial_coarsen: conv networks with ``backend="native"``: coarse MGRIT level l
            computes the layers on images halved min(l, S) times (2x2 means, Galerkin coarse
            kernels; the states stay full size), so coarse steps cost up to 4^S times less.
            The converged result is the same; ``layerbraid plan`` says which S pays off.
            Height and width must be divisible by 2^S. Default 0 (off).

    Every rank passes the same batch. Gradients come back for the parameters the rank holds
    (:attr:`layout`); the loss and accuracy are the same on every rank.

    Example (piggy-back, two MGRIT levels, solved to 1e-12)::

        prop = Propagator(net, options={"max_levels": 2, "cfactor": 4, "abs_tol": 1e-12},
                          gradient_method="piggy-back")
        ev = prop.loss_and_gradient(prop.init_params(), x, labels)
    """

    def __init__(self, net: ResNet, comm: MPI.Comm | None = None, *, backend: str = "numpy",
                 options: Mapping[str, Any] | None = None,
                 adjoint_options: Mapping[str, Any] | None = None,
                 warm_start: bool = False, gradient_method: str = "two-solve",
                 spatial_coarsen: int = 0) -> None:
        self.net = net
        self.comm = MPI.COMM_WORLD if comm is None else comm
        if self.comm.Get_size() > net.depth + 1:
            raise ValueError(f"{self.comm.Get_size()} ranks cannot share {net.depth} layers "
                             f"({net.depth + 1} points); use at most {net.depth + 1} ranks")
        if backend not in PROPAGATOR_BACKENDS:
            raise ValueError(f"backend={backend!r} is not supported; use one of "
                             f"{', '.join(map(repr, PROPAGATOR_BACKENDS))}")
        if gradient_method not in GRADIENT_METHODS:
            raise ValueError(f"gradient_method={gradient_method!r} is not supported; use one "
                             f"of {', '.join(map(repr, GRADIENT_METHODS))}")
        self.gradient_method = gradient_method
        self.piggy_back = gradient_method == "piggy-back"
        if self.piggy_back and backend == "native":
            raise ValueError("gradient_method='piggy-back' is not available with "
                             "backend='native' (the C++ layer solves have no piggy-back "
                             "adjoint); use backend='numpy' or 'cupy', or "
                             "gradient_method='two-solve'")
        self.layout = LayerLayout(net.depth, self.comm)
        self.native = backend == "native"
        # the opening, classifier and regularisers of the native backend are NumPy code
        self.ops = get_ops("numpy" if self.native else backend)
        self.backend = backend
        for given in (options or {}), (adjoint_options or {}):
            if "reverted_ranks" in given:
                raise ValueError("reverted_ranks is chosen by the propagator (the adjoint runs "
                                 "with reverted ranks); leave it out of the options")
        base = {"print_level": 0, **SERIAL, **(options or {})}
        self.forward_options = base
        self.adjoint_options = {**base, **(adjoint_options or {})}
        check_options(self.forward_options)   # a bad option fails here, not at the first batch
        check_options(self.adjoint_options)
        self.piggy_back_options = (self._piggy_back_options(base, adjoint_options or {})
                                   if self.piggy_back else None)
        self.warm_start = bool(warm_start)
        self.spatial_coarsen = _checked_spatial_coarsen(net, backend, spatial_coarsen)
        self._native_options = ((native_options(self.forward_options, self.warm_start,
                                                self.spatial_coarsen),
                                 native_options(self.adjoint_options, self.warm_start,
                                                self.spatial_coarsen))
                                if self.native else None)
        self._native: NativeLayers | None = None
        self._final: Array | None = None   # u_N of the last forward solve (last rank)
        # Names built once: formatting 2N keys per evaluation was a visible cost at small widths.
        lay = self.layout
        self._local_names = tuple(net.parameter_shapes(lay.owned_layers, lay.has_opening,
                                                       lay.has_classifier))
        self._layer_keys = [{p: layer_key(n, p) for p in net.layer.param_shapes()}
                            for n in range(net.depth)]
        self._end_keys = {part: {p: f"{part}.{p}" for p in getattr(net, part).param_shapes()}
                          for part in ("opening", "classifier")}
        self._send_plan: dict[int, list[int]] | None = None   # dest rank -> layers it needs
        self._batch: int | None = None
        self._forward: tuple[ForwardApp, Solver] | None = None
        self._adjoint: tuple[BackpropApp, Solver] | None = None
        self._piggy: tuple[PiggyBackApp, Solver] | None = None
        self._restore: dict[str, Array] = {}
        self._adjoint_record: dict[int, Array] | None = None   # for adjoint_states

    # ---- parameters ----

    def init_params(self, seed: int = 0, **kwargs: Any) -> Params:
        """This rank's share of :meth:`ResNet.init_params` (the same values on any layout)."""
        lay = self.layout
        params = self.net.init_params(seed, layers=lay.owned_layers, opening=lay.has_opening,
                                      classifier=lay.has_classifier, **kwargs)
        return {k: self.ops.xp.asarray(v) for k, v in params.items()}

    def local_names(self) -> list[str]:
        """Names of the parameters this rank holds."""
        return list(self._local_names)

    # ---- the entry point ----

    def loss_and_gradient(self, params: Mapping[str, Array], x: Array, labels: Array) -> Evaluation:
        """Objective and gradient for the batch (x, labels): forward solve, classifier,
        adjoint solve, regularisers."""
        return self._evaluate(params, x, labels, gradient=True)

    def loss(self, params: Mapping[str, Array], x: Array, labels: Array) -> Evaluation:
        """The objective only (a forward solve; for line searches and validation)."""
        return self._evaluate(params, x, labels, gradient=False)

    def predict(self, params: Mapping[str, Array], x: Array) -> np.ndarray:
        """Class scores of the batch, on every rank (a NumPy array)."""
        x = self._check_inputs(x, None)
        self._prepare(x.shape[0])
        layer_params = self._layer_params(params, self.layout.owned_layers)
        self._run_forward(params, layer_params, x, keep_cache=False)
        scores = None
        if self.layout.has_classifier:
            scores = self.net.classifier.scores(self.ops.xp, self._final,
                                                self._part(params, "classifier"))
            scores = _to_numpy(scores)
        return self.comm.bcast(scores, root=self.comm.Get_size() - 1)

    def forward_states(self, params: Mapping[str, Array], x: Array) -> dict[int, Array]:
        """The forward solve's states u_p (p = 0 .. N) at the points this rank holds."""
        x = self._check_inputs(x, None)
        self._prepare(x.shape[0])
        layer_params = self._layer_params(params, self.layout.owned_layers)
        if self._native is not None:
            self._native.record("forward", True)
            try:
                self._run_forward(params, layer_params, x, keep_cache=False)
                return self._native.recorded_states("forward")
            finally:
                self._native.record("forward", False)
        fwd_app = self._forward[0]  # type: ignore[index]
        fwd_app.recorded = {}
        try:
            self._run_forward(params, layer_params, x, keep_cache=False)
            return fwd_app.recorded
        finally:
            fwd_app.recorded = None

    def adjoint_states(self, params: Mapping[str, Array], x: Array,
                       labels: Array) -> dict[int, Array]:
        """The adjoint solve's co-states lambda_n = dLoss/du_n (n = 0 .. N) of the data loss
        at the points this rank holds in the adjoint's distribution (two-solve only)."""
        if self.piggy_back:
            raise ValueError("adjoint_states needs gradient_method='two-solve': the piggy-back "
                             "drive keeps no co-states but dJ/du_0")
        if self.native:
            self._prepare(self._check_inputs(x, None).shape[0])
            assert self._native is not None
            self._native.record("adjoint", True)
            try:
                self._evaluate(params, x, labels, gradient=True)
                recorded = self._native.recorded_states("adjoint")
            finally:
                self._native.record("adjoint", False)
        else:
            self._adjoint_record = {}
            try:
                self._evaluate(params, x, labels, gradient=True)
                recorded = self._adjoint_record
            finally:
                self._adjoint_record = None
        return {self.net.depth - i: lam for i, lam in recorded.items()}

    # ---- warm starts across checkpoints ----

    def warm_state(self) -> dict[str, Array]:
        """What the warm-started solvers keep between calls, on this rank: the C-points of
        the last forward and adjoint solves, as ``states.forward.<i>`` and
        ``states.adjoint.<i>`` (i: the solve's time index). Empty without ``warm_start``.
        The piggy-back drive's state and adjoint stay in the engine and are not part of it
        (a resumed run starts them from zero)."""
        if self._native is not None:
            return self._native.warm_state()
        state: dict[str, Array] = {}
        for name, pair in (("forward", self._forward), ("adjoint", self._adjoint)):
            if pair is not None:
                state.update({f"states.{name}.{i}": u for i, u in pair[0].cpoints.items()})
        return state

    def restore_warm_state(self, state: Mapping[str, Array]) -> None:
        """Start the next solves from ``state`` (from :meth:`warm_state`, of this rank's
        points), as the solvers that wrote it would have: a resumed one-shot run then follows
        the uninterrupted one."""
        self.close()
        self._restore = dict(state)

    def owns_state(self, name: str) -> bool:
        """Whether the state ``states.<solve>.<i>`` of :meth:`warm_state` lives on this rank."""
        _, solve, index = name.split(".")
        point = int(index) if solve == "forward" else self.net.depth - int(index)
        owner = (self.layout.forward_owner(point) if solve == "forward"
                 else self.layout.adjoint_owner(point))
        return owner == self.layout.rank

    def _fine_cfactor(self, options: Mapping[str, Any]) -> int:
        cf = options.get("cfactor", 2)
        return int(cf.get(0, cf.get(-1, 2))) if isinstance(cf, Mapping) else int(cf)

    # ---- the steps of one evaluation ----

    def _evaluate(self, params: Mapping[str, Array], x: Array, labels: Array,
                  gradient: bool) -> Evaluation:
        xp, lay, net = self.ops.xp, self.layout, self.net
        x, labels = self._check_inputs(x, labels)
        self._prepare(x.shape[0])
        layer_params = self._layer_params(params, sorted(self._needed_layers(gradient)))

        grads: Params | None = None
        if gradient:  # the opening's and classifier's; the layers' come from the adjoint
            grads = {k: xp.zeros_like(params[k]) for part in self._end_keys.values()
                     for k in part.values() if k in params}
        if gradient and self.piggy_back:
            forward, adjoint, data_loss, correct, lam_first, layer_grads = \
                self._run_piggy_back(params, layer_params, x, labels, grads)
        else:
            forward = self._run_forward(params, layer_params, x, keep_cache=gradient)
            data_loss, correct = 0.0, 0
            lam_last = None
            if lay.has_classifier:
                data_loss, correct, lam_last = net.classifier.loss_and_adjoint(
                    xp, self._final, labels, self._part(params, "classifier"),
                    self._part(grads, "classifier") if grads is not None else None)
            adjoint = None
            if gradient:
                adjoint, lam_first, layer_grads = self._run_adjoint(layer_params, lam_last)
        if gradient and lay.has_opening:
            net.opening.adjoint(self.ops, lam_first, x, self._opening_deriv,
                                self._part(params, "opening"), self._part(grads, "opening"))

        flat_params = dict(params)
        for n, p in layer_params.items():
            if n not in lay.owned_layers:  # received from a neighbour, for the smoothness term
                flat_params.update({self._layer_keys[n][k]: v for k, v in p.items()})
        terms = net.regularization_terms(flat_params, lay.owned_layers, lay.has_opening,
                                         lay.has_classifier, grads,
                                         layer_grads if gradient else None, xp)
        if gradient:
            assert grads is not None
            # by name (views of the stacks), in the order of params; zeros for entries this
            # rank computes nothing for
            keys = self._layer_keys
            for i, n in enumerate(lay.owned_layers):
                grads.update({keys[n][k]: stack[i] for k, stack in layer_grads.items()})
            grads = {k: grads[k] if k in grads else xp.zeros_like(v) for k, v in params.items()}
        if lay.has_classifier:
            terms.append(data_loss)
        # fsum of every term, gathered: the same value on every rank for any number of ranks
        everything = [t for ts in self.comm.allgather(terms) for t in ts]
        last = self.comm.Get_size() - 1
        data_loss, correct = self.comm.bcast((data_loss, correct), root=last)
        return Evaluation(loss=math.fsum(everything), data_loss=data_loss,
                          accuracy=correct / x.shape[0], gradient=grads, forward=forward,
                          adjoint=adjoint)

    def _run_forward(self, params: Mapping[str, Array], layer_params: dict[int, Params],
                     x: Array, keep_cache: bool) -> SolveResult:
        """The opening and the forward solve; u_N lands in self._final (last rank)."""
        u0 = self._open(params, x)
        if self._native is not None:
            # the C++ app always keeps its caches: they are its own buffers, written in place
            result, self._final = self._native.forward(layer_params, u0)
            return result
        fwd_app, fwd_solver = self._forward  # type: ignore[misc]
        fwd_app.keep_cache = keep_cache
        fwd_app.initial = u0
        fwd_app.params = layer_params
        result = self._drive(fwd_solver)
        self._final = fwd_app.final
        return result

    def _open(self, params: Mapping[str, Array], x: Array) -> Array | None:
        """u_0 by the opening layer (rank 0; None elsewhere), keeping sigma' for its adjoint."""
        if not self.layout.has_opening:
            return None
        u0, self._opening_deriv = self.net.opening.forward(
            self.ops, x, self._part(params, "opening"), self.net.activation)
        return u0

    def _run_piggy_back(self, params: Mapping[str, Array], layer_params: dict[int, Params],
                        x: Array, labels: Array, grads: Params
                        ) -> tuple[SolveResult, SolveResult, float, int, Array | None, Params]:
        """The opening and one adjoint drive: the drive's result (and its adjoint view), the
        data loss and correct count (last rank), dJ/du_0 (rank 0), the gradients of this
        rank's layers stacked as :meth:`_run_adjoint`'s; the classifier's into ``grads``."""
        app, solver = self._piggy  # type: ignore[misc]
        app.initial = self._open(params, x)
        app.params, app.labels = layer_params, labels
        if self.layout.has_classifier:
            app.classifier = self._part(params, "classifier")
            app.classifier_grads = self._part(grads, "classifier")
        result = self._drive(solver)
        own, xp = self.layout.owned_layers, self.ops.xp
        stacks = {k: xp.empty((len(own), *shape), dtype=self.net.np_dtype)
                  for k, shape in self.net.layer.param_shapes().items()}
        app.layer_gradients(stacks)
        adjoint = replace(result, residual_history=result.rnorms_adjoint)
        return result, adjoint, app.data_loss, app.correct, result.initial_adjoint, stacks

    def _piggy_back_options(self, base: Mapping[str, Any],
                            adjoint_options: Mapping[str, Any]) -> dict[str, Any]:
        """The piggy-back drive's solver options: ``base`` with the adjoint, its tolerance
        and the objective window, which holds point N only."""
        extra = sorted(set(adjoint_options) - {"abs_tol", "rel_tol"})
        if extra:
            raise ValueError(f"gradient_method='piggy-back' runs one drive: adjoint_options "
                             f"may set only the adjoint's abs_tol or rel_tol, not "
                             f"{', '.join(extra)}")
        tol = adjoint_options if adjoint_options else base
        T, h = self.net.final_time, self.net.step
        options = {**base, "adjoint": True, "tstart_objective": T - h / 2, "tstop_objective": T}
        for name in ("abs_tol", "rel_tol"):
            if tol.get(name) is not None:
                options[f"{name}_adjoint"] = tol[name]
        check_options(options)
        return options

    def _run_adjoint(self, layer_params: dict[int, Params], lam_last: Array | None
                     ) -> tuple[SolveResult, Array | None, Params]:
        """The adjoint solve of the last forward one from lambda_N (last rank): its result,
        lambda_0 (rank 0) and the gradients of this rank's layers, stacked in new arrays
        {"weight": (layers, ...), "bias": (layers, ...)}."""
        if self._native is not None:
            return self._native.adjoint(lam_last)
        (fwd_app, _), (adj_app, adj_solver) = self._forward, self._adjoint  # type: ignore[misc]
        adj_app.initial = lam_last
        adj_app.params = layer_params
        adj_app.saved = self._saved_states(fwd_app)
        adj_app.recorded = self._adjoint_record
        result = self._drive(adj_solver)
        return result, adj_app.final, self._collect_layer_grads(adj_app)

    def _prepare(self, batch: int) -> None:
        """The solvers for a batch size: the Python apps' (:meth:`_solvers`), or the C++
        solves, which are kept while the batch size holds (their buffers are reused; the C++
        app itself restarts each solve from zero unless warm-started)."""
        if not self.native:
            self._solvers(batch)
        elif self._native is None or batch != self._batch:
            self.close()
            assert self._native_options is not None
            self._native = NativeLayers(self.net, self.comm, batch, *self._native_options)
            self._native.restore_warm_state(self._restore)
            self._restore = {}
            self._batch = batch

    def _part(self, params: Mapping[str, Array] | None, part: str) -> Params:
        """The entries ``<part>.<name>`` of params (part: opening or classifier), keyed by
        ``<name>``."""
        assert params is not None
        return {p: params[k] for p, k in self._end_keys[part].items()}

    def _drive(self, solver: Solver) -> SolveResult:
        """One solve (a hook for methods that drive differently)."""
        return solver.drive()

    def _needed_layers(self, gradient: bool) -> set[int]:
        """The layers whose parameters this rank's steps (and regularisers) use."""
        lay, depth = self.layout, self.net.depth
        needed = set(lay.owned_layers)
        # the C++ app routes its adjoint's layers itself; piggy-back steps only own layers
        if gradient and not self.native and not self.piggy_back:
            needed |= set(lay.adjoint_layers)
        if self.net.regularization.smoothness:
            needed |= {n + d for n in lay.owned_layers for d in (-1, 1) if 0 <= n + d < depth}
        return needed

    def _layer_params(self, params: Mapping[str, Array], needed: Any) -> dict[int, Params]:
        """Layer n -> its parameters, for every layer in ``needed``: this rank's own, and the
        others received from their owners."""
        lay = self.layout
        missing = [k for k in self.local_names() if k not in params]
        if missing:
            raise KeyError(f"params lacks {', '.join(missing[:4])}"
                           f"{' ...' if len(missing) > 4 else ''} on rank {lay.rank}; "
                           "use Propagator.init_params or load the parameters for this layout")
        # Looked up by name, not with _part: scanning every key for every layer was O(N^2)
        # (about half the time of a serial N = 1024 evaluation).
        keys = self._layer_keys
        own = {n: {p: params[k] for p, k in keys[n].items()} for n in lay.owned_layers}
        # What every rank needs from this one: the same rule evaluated for all ranks, once.
        if self._send_plan is None:
            self._send_plan = {}
            for n in lay.owned_layers:
                for dest in self._needers(n):
                    if dest != lay.rank:
                        self._send_plan.setdefault(dest, []).append(n)
        outgoing = {dest: {n: own[n] for n in layers} for dest, layers in self._send_plan.items()}
        received = route(self.comm, outgoing)
        wanted = set(needed)
        result = dict(own)
        result.update({n: {k: self.ops.xp.asarray(v) for k, v in p.items()}
                       for n, p in received.items() if n in wanted})
        return result

    def _needers(self, n: int) -> set[int]:
        """Ranks that use layer n: its adjoint owner (two-solve), and for the smoothness term
        the owners of layers n - 1 and n + 1."""
        lay = self.layout
        ranks = set() if self.native or self.piggy_back else {lay.adjoint_owner(n)}
        if self.net.regularization.smoothness:
            ranks |= {lay.layer_owner(m) for m in (n - 1, n + 1) if 0 <= m < self.net.depth}
        return ranks

    def _saved_states(self, fwd_app: ForwardApp) -> dict[int, tuple[Array, Array]]:
        """(u_n, sigma'(z_n)) of every layer this rank's adjoint steps through."""
        lay = self.layout
        outgoing: dict[int, dict[int, tuple[Array, Array]]] = {}
        saved: dict[int, tuple[Array, Array]] = {}
        for n in lay.owned_layers:
            dest = lay.adjoint_owner(n)
            if dest == lay.rank:
                saved[n] = fwd_app.cached(n)
            else:
                outgoing.setdefault(dest, {})[n] = tuple(a.copy() for a in fwd_app.cached(n))
        saved.update(route(self.comm, outgoing))
        return saved

    def _collect_layer_grads(self, adj_app: BackpropApp) -> Params:
        """Layer gradients to the layers' owners: this rank's layers', stacked in new arrays
        (the app's arrays are reused by the next solve)."""
        lay, xp = self.layout, self.ops.xp
        own = lay.owned_layers
        stacks = {k: xp.empty((len(own), *shape), dtype=self.net.np_dtype)
                  for k, shape in self.net.layer.param_shapes().items()}
        outgoing: dict[int, dict[int, Params]] = {}
        for n, g in adj_app.grads.items():
            owner = lay.layer_owner(n)
            if owner == lay.rank:
                for k, v in g.items():
                    stacks[k][n - own.start] = v
            else:
                outgoing.setdefault(owner, {})[n] = g
        for n, g in route(self.comm, outgoing).items():
            for k, v in g.items():
                stacks[k][n - own.start] = xp.asarray(v)
        return stacks

    def _solvers(self, batch: int) -> None:
        """The forward solver and the adjoint (or piggy-back) one, kept across calls for warm
        starts while the batch size holds."""
        if self._forward is None or batch != self._batch or not self.warm_start:
            self.close()
            net, T = self.net, self.net.final_time
            fwd_options, adj_options = dict(self.forward_options), dict(self.adjoint_options)
            # the piggy-back drive needs neither the backpropagation app nor its caches
            if self.piggy_back:
                fwd_app = ForwardApp(net, self.ops, batch, self.layout.owned_layers, cache=False)
                apps = [("forward", fwd_app, fwd_options)]
            else:
                fwd_app, adj_app = self._make_apps(batch)
                apps = [("forward", fwd_app, fwd_options), ("adjoint", adj_app, adj_options)]
            restore, self._restore = self._restore, {}
            for name, app, options in apps:
                if self.warm_start:
                    app.cstride = self._fine_cfactor(options)
                prefix = f"states.{name}."
                app.restore = {int(k[len(prefix):]): v for k, v in restore.items()
                               if k.startswith(prefix) and tuple(v.shape) == app.shape}
                if app.restore:
                    # a warm restart never skips its first down-cycle; neither may this start
                    options["skip"] = False
            self._forward = (fwd_app, Solver(fwd_app, 0.0, T, net.depth, self.comm,
                                             **fwd_options))
            if self.piggy_back:
                piggy = PiggyBackApp(net, self.ops, batch, self.layout.owned_layers)
                self._piggy = (piggy, Solver(piggy, 0.0, T, net.depth, self.comm,
                                             **self.piggy_back_options))  # type: ignore[arg-type]
            else:
                self._adjoint = (adj_app, Solver(adj_app, 0.0, T, net.depth, self.comm,
                                                 reverted_ranks=True, **adj_options))
            self._batch = batch

    def _make_apps(self, batch: int) -> tuple[ForwardApp, BackpropApp]:
        """The forward and adjoint apps for a batch size (a hook for other coarse steps)."""
        lay = self.layout
        return (ForwardApp(self.net, self.ops, batch, lay.owned_layers),
                BackpropApp(self.net, self.ops, batch, lay.adjoint_layers))

    def _check_inputs(self, x: Array, labels: Array | None) -> Any:
        xp, net = self.ops.xp, self.net
        x = xp.ascontiguousarray(xp.asarray(x, dtype=net.np_dtype))
        want = net.opening.input_shape()
        if x.ndim != 1 + len(want) or tuple(x.shape[1:]) != want or x.shape[0] < 1:
            raise ValueError(f"x has shape {tuple(x.shape)}; this network takes "
                             f"(batch, {', '.join(map(str, want))}) with batch >= 1")
        if labels is None:
            return x
        labels = xp.asarray(labels)
        if labels.shape != (x.shape[0],) or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be {x.shape[0]} integers (one per example), got "
                             f"shape {tuple(labels.shape)} of {labels.dtype}")
        classes = net.classifier.classes
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= classes):
            raise ValueError(f"labels must lie in [0, {classes - 1}], got values in "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        return x, labels

    def close(self) -> None:
        """Free the solvers (and the states they store)."""
        for pair in (self._forward, self._adjoint, self._piggy):
            if pair is not None:
                pair[1].close()
        self._forward = self._adjoint = self._piggy = None
        self._native = None

    def __enter__(self) -> "Propagator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



def _to_numpy(a: Array) -> np.ndarray:
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)
