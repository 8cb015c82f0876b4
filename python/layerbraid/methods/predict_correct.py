"""Predict globally, correct locally (Parpas & Muir): layer blocks that update their weights
from local sweeps, started from boundary states and co-states that a cheap coarse network
predicts for the whole depth.

The N layers are split into P blocks of M = N / P layers. One iteration is one evaluation of
:class:`PredictCorrect` (the same ``loss_and_gradient`` entry point as every trainer uses):

- *correct locally*: every block runs its M fine layers forward from its predicted input state
  X_j, and backward from its predicted output co-state Lambda_{j+1}; the block's weight
  gradients come from these local sweeps only, so all blocks work at once;
- *predict globally*: a parareal update of the block-boundary states and co-states with the
  coarse network G (one residual layer per block, step M h, the block's averaged weights),
  ``X_{j+1} <- G(X_j^new) + F(X_j^old) - G(X_j^old)``, one coarse layer after another.

Both halves are one iteration of the MGRIT engine on two levels with F-relaxation and
coarsening factor M (parareal), warm-started from the previous iteration: the engine's
F-relaxation is the local fine sweep and its coarse solve is the global prediction. The
solves skip the engine's final F-sweep (``access_level=0``): the fine states of the local
sweep are what the gradients use. The very first iteration starts from a coarse sweep alone
(the engine's skipped first down-cycle), for the states and for the co-states.

With exact boundary data the block gradients are exact backpropagation; the weights change
between iterations, so the prediction chases a moving target and gradients are inexact by
about the interface residual, which the evaluations report.

Critical path of one iteration, in layer steps with one block per rank: M fine steps and
P + 1 coarse steps (P in the sequential coarse solve, one for the residual) forward, the same
backward: ``2 (M + P + 1)`` against ``2 N`` for backpropagation (:meth:`PredictCorrect.cost`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from mpi4py import MPI

from ..braid import SolveResult, Solver
from ..nn.network import ResNet
from ..propagate import BackpropApp, ForwardApp, Propagator

__all__ = ["PredictCorrect", "CostModel", "COARSE_MAPS"]

Array = Any

#: The coarse networks G a block can be predicted with.
COARSE_MAPS = {
    "average": "one residual layer per block with the block's mean weights and step M h "
               "(Parpas & Muir's coarse network)",
    "exact": "the block's own M fine layers (G = F: the prediction is exact; for checks)",
}


@dataclass(frozen=True)
class CostModel:
    """Layer steps of one iteration on the critical path (one block per rank, no waiting).

    Attributes:
        fine: fine layer steps per solve (the local sweep of a block, M).
        coarse: coarse layer steps per solve on the critical path (P sequential + 1).
        coarse_cost: a coarse step's cost in layer steps (1 for ``average``, M for ``exact``).
        per_iteration: forward plus backward, ``2 (fine + coarse * coarse_cost)``.
        prediction: the first iteration's extra coarse sweeps (forward and backward).
        serial_per_iteration: backpropagation's ``2 N``.
    """

    fine: int
    coarse: int
    coarse_cost: int
    per_iteration: int
    prediction: int
    serial_per_iteration: int

    def sequential_steps(self, iterations: int) -> int:
        """Layer steps on the critical path of ``iterations`` iterations, prediction included."""
        return self.prediction + iterations * self.per_iteration


class _BlockForwardApp(ForwardApp):
    """Fine steps as in layer-parallel propagation; the coarse step over block j is G_j."""

    def __init__(self, net: ResNet, ops: Any, batch: int, layers: range, block: int,
                 coarse: str) -> None:
        super().__init__(net, ops, batch, layers)
        self.block, self.coarse = block, coarse
        self.coarse_params: dict[int, dict[str, Array]] = {}   # block j -> mean weights
        self.interfaces: dict[int, Array] = {}   # j -> X_j that the last local sweep began at
        self.steps = [0, 0]                      # fine and coarse steps on this rank
        self._fine_final = self.xp.empty(self.shape, dtype=self.dtype)

    def step(self, u: Array, ustop: Array, status: Any) -> None:
        target = self._target_point(status.tstop)
        if status.level == 0:
            start = target - 1
            if start % self.block == 0:
                _keep(self.interfaces, start // self.block, u)
            super().step(u, ustop, status)
            if target == self.ntime:   # u_N of the local sweep, for the classifier
                self.final = self._fine_final
                self.xp.copyto(self.final, u)
            self.steps[0] += 1
            return
        j = target // self.block - 1
        layer, act = self.net.layer, self.net.activation
        if self.coarse == "average":
            layer.forward(self.ops, u, self.coarse_params[j], status.tstop - status.tstart, act,
                          self.work)
        else:
            h = self.net.step
            for n in range(target - self.block, target):
                layer.forward(self.ops, u, self.params[n], h, act, self.work)
        self.steps[1] += 1


class _BlockBackpropApp(BackpropApp):
    """Fine adjoint steps write the block's gradients; the coarse step is G_j's adjoint,
    linearised at the block's input state X_j of the last local sweep."""

    def __init__(self, net: ResNet, ops: Any, batch: int, layers: range, block: int,
                 coarse: str) -> None:
        super().__init__(net, ops, batch, layers)
        self.block, self.coarse = block, coarse
        self.coarse_params: dict[int, dict[str, Array]] = {}
        self.interfaces: dict[int, Array] = {}   # j -> Lambda_{j+1} the local sweep began at
        self.steps = [0, 0]
        self._fine_final = self.xp.empty(self.shape, dtype=self.dtype)
        self._state = self.xp.empty(self.shape, dtype=self.dtype)
        self._deriv = self.xp.empty(self.shape, dtype=self.dtype)

    def step(self, lam: Array, ustop: Array, status: Any) -> None:
        target = self._target_point(status.tstop)
        n = self.ntime - target                   # this step ends at lambda_n
        if status.level == 0:
            if (n + 1) % self.block == 0:
                _keep(self.interfaces, n // self.block, lam)
            super().step(lam, ustop, status)
            if target == self.ntime:   # lambda_0, for the opening layer
                self.final = self._fine_final
                self.xp.copyto(self.final, lam)
            self.steps[0] += 1
            return
        j = n // self.block
        layer = self.net.layer
        if self.coarse == "average":
            # sigma'(z) of the coarse layer at X_j, the block's input in the last local sweep
            self.xp.copyto(self._state, self.saved[n][0])
            layer.forward(self.ops, self._state, self.coarse_params[j],
                          status.tstop - status.tstart, self.net.activation, self.work,
                          cache_deriv=self._deriv)
            layer.adjoint(self.ops, lam, self.coarse_params[j], status.tstop - status.tstart,
                          self._deriv, self.work)
        else:
            for m in range(n + self.block - 1, n - 1, -1):
                layer.adjoint(self.ops, lam, self.params[m], self.net.step, self.saved[m][1],
                              self.work)
        self.steps[1] += 1


def _keep(store: dict[Any, Array], key: Any, u: Array) -> None:
    """store[key] <- a copy of u, reusing the array already there."""
    kept = store.get(key)
    if kept is None:
        store[key] = u.copy()
    else:
        kept[...] = u


class PredictCorrect(Propagator):
    """Loss and gradient by predict-globally/correct-locally iterations (one per call).

    Args:
        net: the model; its depth must be a multiple of ``blocks``, with at least 2 layers per
            block.
        comm: the ranks (default COMM_WORLD); one block per rank is the intended layout.
        blocks: P, the number of layer blocks (default: the number of ranks).
        coarse: the coarse network G, a key of :data:`COARSE_MAPS`.
        backend: "numpy" or "cupy" ("native" has no coarse-network steps).

    Each :meth:`loss_and_gradient` call is one iteration: gradients of every block from its
    local sweeps, and the next prediction of the block boundaries. The call's
    ``forward.residual`` and ``adjoint.residual`` are the interface residuals (how far the
    prediction was from the fine sweeps). Use a :class:`~layerbraid.Propagator` for
    prediction and validation.
    """

    def __init__(self, net: ResNet, comm: MPI.Comm | None = None, *, blocks: int | None = None,
                 coarse: str = "average", sweeps: int = 1, backend: str = "numpy") -> None:
        comm = MPI.COMM_WORLD if comm is None else comm
        blocks = comm.Get_size() if blocks is None else blocks
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
            raise ValueError(f"blocks={blocks!r} must be an int >= 1")
        if net.depth % blocks or net.depth // blocks < 2:
            raise ValueError(f"blocks={blocks} must divide the depth {net.depth} into blocks "
                             f"of at least 2 layers; possible: "
                             f"{[p for p in range(1, net.depth // 2 + 1) if net.depth % p == 0]}")
        if coarse not in COARSE_MAPS:
            raise ValueError(f"coarse={coarse!r} is not supported; use one of "
                             f"{', '.join(map(repr, COARSE_MAPS))}")
        if isinstance(sweeps, bool) or not isinstance(sweeps, int) or sweeps < 1:
            raise ValueError(f"sweeps={sweeps!r} must be an int >= 1")
        if backend == "native":
            raise ValueError("backend='native' is not supported by PredictCorrect: its coarse "
                             "network steps are Python callbacks; use backend='numpy'")
        self.blocks, self.block_layers = blocks, net.depth // blocks
        self.coarse, self.sweeps = coarse, sweeps
        options = {"max_levels": 2, "cfactor": self.block_layers, "min_coarse": 1,
                   "nrelax": 0, "max_iter": sweeps, "abs_tol": 0.0, "access_level": 0,
                   "skip": True}
        super().__init__(net, comm, backend=backend, options=options, warm_start=True)
        if coarse == "exact":
            self._check_blocks_unsplit()
        self._predicted: set[int] = set()

    def _check_blocks_unsplit(self) -> None:
        lay, m = self.layout, self.block_layers
        for j in range(self.blocks):
            if len({lay.adjoint_owner(n) for n in range(j * m, (j + 1) * m)}) > 1:
                raise ValueError(f"coarse='exact' needs every block on one rank; block {j} "
                                 f"(layers {j * m}..{(j + 1) * m - 1}) is split over ranks with "
                                 f"{lay.size} ranks: use blocks = a multiple of the ranks")

    # ---- the cost model ----

    def cost(self) -> CostModel:
        """Layer steps on the critical path per iteration (:class:`CostModel`)."""
        m, p = self.block_layers, self.blocks
        g = 1 if self.coarse == "average" else m
        return CostModel(fine=m, coarse=p + 1, coarse_cost=g,
                         per_iteration=2 * (m + (p + 1) * g), prediction=2 * p * g,
                         serial_per_iteration=2 * self.net.depth)

    def work(self) -> dict[str, int]:
        """Layer steps done so far on this rank: forward and adjoint, fine and coarse."""
        out = {"forward_fine": 0, "forward_coarse": 0, "adjoint_fine": 0, "adjoint_coarse": 0}
        if self._forward is not None and self._adjoint is not None:
            f, a = self._forward[0].steps, self._adjoint[0].steps
            out.update(forward_fine=f[0], forward_coarse=f[1], adjoint_fine=a[0],
                       adjoint_coarse=a[1])
        return out

    # ---- the block boundaries ----

    def interface_states(self) -> dict[int, Array]:
        """X_j, j = block: the input states the last local sweeps started from (this rank)."""
        return dict(self._forward[0].interfaces) if self._forward else {}

    def interface_costates(self) -> dict[int, Array]:
        """Lambda_{j+1}, keyed by block j: the co-states the last local backward sweeps
        started from (this rank)."""
        return dict(self._adjoint[0].interfaces) if self._adjoint else {}

    # ---- hooks of Propagator ----

    def predict(self, params: Mapping[str, Array], x: Array) -> Any:
        raise NotImplementedError("PredictCorrect iterates towards the solution; predict with "
                                  "a layerbraid.Propagator (exact propagation)")

    def forward_states(self, params: Mapping[str, Array], x: Array) -> dict[int, Array]:
        raise NotImplementedError("PredictCorrect keeps no states after a solve; use "
                                  "interface_states(), or a layerbraid.Propagator")

    def _make_apps(self, batch: int) -> tuple[ForwardApp, BackpropApp]:
        lay = self.layout
        return (_BlockForwardApp(self.net, self.ops, batch, lay.owned_layers, self.block_layers,
                                 self.coarse),
                _BlockBackpropApp(self.net, self.ops, batch, lay.adjoint_layers,
                                 self.block_layers, self.coarse))

    def _coarse_owners(self, j: int) -> set[int]:
        """Ranks that step over block j on the coarse grid: forward and adjoint."""
        m, lay = self.block_layers, self.layout
        return {lay.forward_owner((j + 1) * m), lay.adjoint_owner(j * m)}

    def _needed_layers(self, gradient: bool) -> set[int]:
        m = self.block_layers
        mine = [j for j in range(self.blocks) if self.layout.rank in self._coarse_owners(j)]
        return super()._needed_layers(gradient) | {n for j in mine
                                                   for n in range(j * m, (j + 1) * m)}

    def _needers(self, n: int) -> set[int]:
        return super()._needers(n) | self._coarse_owners(n // self.block_layers)

    def _run_forward(self, params: Mapping[str, Array], layer_params: dict[int, Any],
                     x: Array, keep_cache: bool) -> SolveResult:
        if self.coarse == "average":
            m = self.block_layers
            means: dict[int, dict[str, Array]] = {}
            for j in range(self.blocks):
                if self.layout.rank in self._coarse_owners(j):
                    block = [layer_params[n] for n in range(j * m, (j + 1) * m)]
                    # summed in layer order on the rank that needs them: rank independent
                    means[j] = {k: sum(p[k] for p in block) / m for k in block[0]}
            for app in (self._forward[0], self._adjoint[0]):  # type: ignore[index]
                app.coarse_params = means
        return super()._run_forward(params, layer_params, x, keep_cache)

    def _drive(self, solver: Solver) -> SolveResult:
        if id(solver) not in self._predicted:
            solver.drive()   # the first drive skips its down-cycle: a coarse sweep only
            self._predicted.add(id(solver))
        return solver.drive()

    def close(self) -> None:
        super().close()
        self._predicted = set()
