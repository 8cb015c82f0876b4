"""Training a ResNet-ODE: layer-serial, layer-parallel and one-shot (simultaneous) training
through the one loss-and-gradient entry point, :meth:`layerbraid.Propagator.loss_and_gradient`.

- ``serial``: both solves on one level, i.e. exact backpropagation (layers pipelined over the
  ranks, one after the other).
- ``parallel``: MGRIT forward and adjoint solves to a tolerance each step (nearly exact
  gradients).
- ``one-shot``: ``mgrit_iters`` MGRIT cycles per solve per optimisation step, each solve
  warm-started from the previous step's solutions: inexact gradients, cheap steps.

``serial``, ``parallel`` and ``one-shot`` get their gradients by a forward and an adjoint
solve (``gradient_method="two-solve"``), or by one drive of the engine's piggy-back adjoint
iteration (``gradient_method="piggy-back"``: each forward cycle followed by an adjoint sweep,
``mgrit_iters`` of them per step for one-shot, state and adjoint warm-started together;
serial: one forward sweep and the exact backward one).
- ``predict-correct``: predict globally, correct locally (Parpas & Muir,
  :mod:`layerbraid.methods.predict_correct`): ``blocks`` layer blocks update their weights from
  local sweeps started at boundary states and co-states that a coarse network predicts, one
  parareal iteration (``sweeps``) per step.

With mini-batches, one-shot warm starts carry the states of the previous batch: a different
batch has different states, but the weights change little between steps, so the previous
solution's layer-to-layer structure (the part MGRIT converges slowly) is still a far better
guess than zero; only the initial condition is replaced.

Batch order is a function of (seed, epoch), so a run resumed from a checkpoint sees the same
batches. A checkpoint holds weights, optimiser state, epoch, the metrics so far and, for
one-shot training, the solvers' warm-start states (the C-points each solve keeps between
calls), so every method resumes onto the uninterrupted run's trajectory; predict-correct
keeps no states after a solve, so a resumed run starts again from the coarse prediction.

Nothing is lost and nothing hangs: with an output directory, a checkpoint is written every
``checkpoint_every`` epochs or ``checkpoint_minutes`` minutes, whichever comes first, and at
the end. After every epoch the ranks exchange how it went (:mod:`layerbraid.ranks`): an error
on any rank, rank 0's metrics log included, is raised on every rank; a SIGINT/SIGTERM stops
every rank after the last complete epoch (a solve in progress stops at its next step and its
epoch is discarded), writes a checkpoint of that epoch and raises
:class:`~layerbraid.train.stopping.TrainingInterrupted`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from mpi4py import MPI

from ..data import Dataset
from ..methods.predict_correct import COARSE_MAPS, PredictCorrect
from ..nn.network import ResNet
from ..propagate import GRADIENT_METHODS, SERIAL, Evaluation, Propagator
from .. import ranks
from . import vectors
from .checkpoint import load_checkpoint, save_checkpoint
from .metrics import EpochRecord, MetricsLog, plot_run
from .optimizers import Optimizer, make_optimizer
from .progress import Progress
from .schedules import make_schedule
from .stopping import StopRequests, TrainingInterrupted

__all__ = ["TrainConfig", "Trainer", "METHODS", "CHECKPOINT", "TrainingInterrupted"]

#: The checkpoint's file name in an output directory.
CHECKPOINT = "checkpoint.npz"

#: Training methods and what they solve.
METHODS = {
    "serial": "exact backpropagation: forward and adjoint layer by layer",
    "parallel": "MGRIT forward and adjoint solves to a tolerance every step",
    "one-shot": "a few warm-started MGRIT cycles per solve per step (inexact gradients)",
    "predict-correct": "block-local gradients from boundaries a coarse network predicts, one "
                       "parareal iteration per step (Parpas & Muir)",
}


@dataclass
class TrainConfig:
    """Everything a training run needs besides the network and the data.

    The MGRIT settings follow the reference Peaks run (coarsening factor 2, at most 10
    levels, coarse grids of at least 10 intervals) except that the finest level also uses
    FCF-relaxation: two one-shot cycles then leave a residual about 100x smaller.
    """

    method: str = "serial"
    optimizer: str = "lbfgs"
    lr: float | None = None            # None: the optimiser's default (L-BFGS: 1)
    schedule: str = "constant"
    epochs: int = 130
    batch_size: int | None = None      # None: full batch
    mgrit_iters: int = 2               # one-shot: cycles per solve per step
    tol: float = 1e-10                 # parallel: absolute tolerance of both solves
    cfactor: int = 2
    max_levels: int = 10
    min_coarse: int = 10              # stop coarsening above 10 intervals (reference setting)
    fine_relax: int = 1                # nrelax on the finest level: FCF (the reference used F,
                                       # which left one-shot Peaks 3-6 points less accurate)
    coarse_relax: int = 1              # nrelax below it (1 = FCF)
    lbfgs_memory: int = 30             # pairs; 10 left one-shot Peaks training 2-3 points
                                       # less accurate and far more sensitive to round-off
    seed: int = 0
    init: str = "random"
    init_scale: float = 1.0
    backend: str = "numpy"
    eval_every: int = 1
    blocks: int | None = None          # predict-correct: layer blocks (None: one per rank)
    coarse: str = "average"            # predict-correct: the coarse network (COARSE_MAPS)
    sweeps: int = 1                    # predict-correct: parareal iterations per step
    gradient_method: str = "two-solve"  # serial, parallel, one-shot: see GRADIENT_METHODS
    spatial_coarsen: int = 0           # conv + native backend: images halved on coarse levels

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is not supported; use one of "
                             f"{', '.join(map(repr, METHODS))}")
        for name in ("epochs", "mgrit_iters", "cfactor", "max_levels", "min_coarse",
                     "lbfgs_memory", "eval_every", "sweeps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be an int >= 1")
        if self.cfactor < 2:
            raise ValueError(f"cfactor={self.cfactor} must be >= 2")
        if isinstance(self.spatial_coarsen, bool) or not isinstance(self.spatial_coarsen, int) \
                or self.spatial_coarsen < 0:
            raise ValueError(f"spatial_coarsen={self.spatial_coarsen!r} must be an int >= 0")
        if self.batch_size is not None and (not isinstance(self.batch_size, int)
                                            or self.batch_size < 1):
            raise ValueError(f"batch_size={self.batch_size!r} must be an int >= 1 or None "
                             "(full batch)")
        if not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise ValueError(f"tol={self.tol!r} must be a float >= 0")
        if self.gradient_method not in GRADIENT_METHODS:
            raise ValueError(f"gradient_method={self.gradient_method!r} is not supported; use "
                             f"one of {', '.join(map(repr, GRADIENT_METHODS))}")
        if self.gradient_method == "piggy-back" and self.method == "predict-correct":
            raise ValueError("gradient_method='piggy-back' is an engine drive over all the "
                             "layers: it goes with method 'serial', 'parallel' or 'one-shot', "
                             "not 'predict-correct'")
        if self.coarse not in COARSE_MAPS:
            raise ValueError(f"coarse={self.coarse!r} is not supported; use one of "
                             f"{', '.join(map(repr, COARSE_MAPS))}")

    def solver_options(self) -> dict[str, Any]:
        """The solver options of the training solves for this method (predict-correct sets
        its own)."""
        if self.method in ("serial", "predict-correct"):
            return dict(SERIAL)
        options = {"max_levels": self.max_levels, "cfactor": self.cfactor,
                   "min_coarse": self.min_coarse,
                   "nrelax": {-1: self.coarse_relax, 0: self.fine_relax}}
        if self.method == "parallel":
            return {**options, "abs_tol": self.tol, "max_iter": 100}
        # one-shot: exactly mgrit_iters cycles; residuals still computed, for the metrics
        return {**options, "abs_tol": 0.0, "max_iter": self.mgrit_iters}

    def validation_options(self) -> dict[str, Any]:
        """Validation sees the model itself: exact forward propagation. Layer by layer is also
        the cheapest exact way at these rank counts (one sweep, against about 40 sweeps' work
        for MGRIT solved to 1e-10, which only pays off beyond about 40 ranks)."""
        return dict(SERIAL)


@dataclass
class _State:
    epoch: int = 0
    elapsed: float = 0.0
    history: list[EpochRecord] = field(default_factory=list)


class Trainer:
    """Trains ``net`` on ``data`` with ``config``, the layers distributed over ``comm``.

    Args:
        out_dir: where the metrics log (metrics.jsonl), plots and checkpoints go (rank 0
            writes); None writes nothing.
        progress: show a progress display on rank 0.
        checkpoint_every: save ``out_dir/checkpoint.npz`` every this many epochs (0: not by
            epoch count).
        checkpoint_minutes: ... and whenever this many minutes passed since the last one
            (0: not by time). A checkpoint is also written at the end and on SIGINT/SIGTERM.
        params: initial parameters (this rank's share, e.g. from
            :func:`layerbraid.methods.nested.interpolate_distributed`); default: the config's
            ``init`` and ``seed``.
    """

    def __init__(self, net: ResNet, data: Dataset, config: TrainConfig | None = None,
                 comm: MPI.Comm | None = None, out_dir: str | Path | None = None,
                 progress: bool = True, checkpoint_every: int = 10,
                 checkpoint_minutes: float = 5.0,
                 params: Mapping[str, Any] | None = None) -> None:
        self.net, self.data = net, data
        self.config = config = config or TrainConfig()
        self.comm = MPI.COMM_WORLD if comm is None else comm
        ranks.control_comm(self.comm)  # collective: every rank is here
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) \
                or checkpoint_every < 0:
            raise ValueError(f"checkpoint_every={checkpoint_every!r} must be an int >= 0")
        if not isinstance(checkpoint_minutes, (int, float)) or isinstance(
                checkpoint_minutes, bool) or not checkpoint_minutes >= 0:
            raise ValueError(f"checkpoint_minutes={checkpoint_minutes!r} must be a number >= 0")
        self._check_data()
        self.prop = self._make_propagator()
        self.val_prop = Propagator(net, self.comm, backend=config.backend,
                                   options=config.validation_options())
        self.xp = self.prop.ops.xp
        if params is None:
            self.params = self.prop.init_params(config.seed, weights=config.init,
                                                scale=config.init_scale)
        else:
            missing = [k for k in self.prop.local_names() if k not in params]
            if missing:
                raise ValueError(f"params lacks {', '.join(missing[:4])} on rank "
                                 f"{self.comm.Get_rank()} (this rank's share is needed)")
            self.params = {k: self.xp.array(params[k], dtype=net.np_dtype)
                           for k in self.prop.local_names()}
        self.optimizer = self._make_optimizer()
        self.root = self.comm.Get_rank() == 0
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.show_progress = progress
        self.checkpoint_every = checkpoint_every
        self.checkpoint_minutes = float(checkpoint_minutes)
        self.state = _State()

    def _make_propagator(self) -> Propagator:
        c = self.config
        if c.method == "predict-correct":
            return PredictCorrect(self.net, self.comm, blocks=c.blocks, coarse=c.coarse,
                                  sweeps=c.sweeps, backend=c.backend)
        return Propagator(self.net, self.comm, backend=c.backend, options=c.solver_options(),
                          warm_start=c.method == "one-shot", gradient_method=c.gradient_method,
                          spatial_coarsen=c.spatial_coarsen)

    def _check_data(self) -> None:
        want = self.net.opening.input_shape()
        if self.data.input_shape != want:
            raise ValueError(f"the dataset's examples have shape {self.data.input_shape}; the "
                             f"network takes {want}")
        if self.data.classes > self.net.classifier.classes:
            raise ValueError(f"the dataset has {self.data.classes} classes; the network's "
                             f"classifier only {self.net.classifier.classes}")

    def _make_optimizer(self) -> Optimizer:
        c = self.config
        kwargs: dict[str, Any] = {"memory": c.lbfgs_memory} if c.optimizer == "lbfgs" else {}
        lr = c.lr
        if c.schedule != "constant":
            default_lr = {"sgd": 0.1, "adam": 1e-3, "lbfgs": 1.0}.get(c.optimizer, 1.0)
            lr = make_schedule(c.schedule, lr if lr is not None else default_lr,
                               c.epochs * self._batches_per_epoch())
        return make_optimizer(c.optimizer, lr, self.comm, **kwargs)

    def _batches_per_epoch(self) -> int:
        n, b = len(self.data.y_train), self.config.batch_size
        return 1 if b is None or b >= n else math.ceil(n / b)

    def _batches(self, epoch: int) -> list[np.ndarray]:
        n, b = len(self.data.y_train), self.config.batch_size
        if b is None or b >= n:
            return [np.arange(n)]
        order = np.random.default_rng([self.config.seed, 7, epoch]).permutation(n)
        return [order[i:i + b] for i in range(0, n, b)]

    # ---- training ----

    def fit(self, epochs: int | None = None) -> list[EpochRecord]:
        """Train until ``epochs`` (default: the config's) epochs are done; the history.

        Raises:
            TrainingInterrupted: on SIGINT/SIGTERM, on every rank, after writing a checkpoint.
            layerbraid.ranks.CollectiveError: an error on any rank, on every rank.
        """
        total = self.config.epochs if epochs is None else epochs
        log_path = self.out_dir / "metrics.jsonl" if self.out_dir and self.root else None
        with ranks.together(self.comm):  # rank 0's log: a resumed run's history, no more
            log = MetricsLog(log_path, self.state.history)
        progress = Progress(total, enabled=self.show_progress and self.root)
        last_checkpoint = time.monotonic()
        with StopRequests() as stop:
            while self.state.epoch < total:
                before = self._capture()
                error: BaseException | None = None
                try:
                    record = self._epoch(self.state.epoch + 1)
                    self.state.epoch += 1
                    self.state.history.append(record)
                    log.write(record)
                    progress.update(self.state.epoch, record.summary())
                except (Exception, KeyboardInterrupt) as e:
                    error = e
                due = self.root and self._checkpoint_due(last_checkpoint)
                reports = ranks.exchange(self.comm, ranks.report_of(error, stop.signum, due))
                try:
                    ranks.verdict(reports)
                except ranks.CollectiveInterrupt as interrupt:
                    progress.interrupted()
                    if any(not r.done for r in reports):  # the epoch did not finish everywhere
                        self._restore(before)
                    raise self._stop(interrupt.signum) from None
                if reports[0].flag and self.out_dir:
                    self.save(self.out_dir / CHECKPOINT)
                    last_checkpoint = time.monotonic()
        if self.out_dir:
            self.save(self.out_dir / CHECKPOINT)
        return self.state.history

    def _checkpoint_due(self, last: float) -> bool:
        """Rank 0's call, which every rank follows: a periodic checkpoint after this epoch?"""
        if self.state.epoch >= (self.config.epochs if self.out_dir else 0):
            return False  # the final checkpoint follows anyway
        by_count = self.checkpoint_every and self.state.epoch % self.checkpoint_every == 0
        by_time = self.checkpoint_minutes and \
            time.monotonic() - last >= 60.0 * self.checkpoint_minutes
        return bool(by_count or by_time)

    def _stop(self, signum: int) -> TrainingInterrupted:
        """After an agreed SIGINT/SIGTERM: checkpoint the last complete epoch."""
        path = None
        if self.out_dir:
            path = self.out_dir / CHECKPOINT
            self.save(path)
        return TrainingInterrupted(signum, self.state.epoch, None if path is None else str(path))

    def _epoch(self, epoch: int) -> EpochRecord:
        xp, data = self.xp, self.data
        start = time.perf_counter()
        losses, correct, seen = [], 0.0, 0
        fwd_iters = adj_iters = evaluations = 0
        ev: Evaluation | None = None
        step_size = grad_norm = 0.0
        for rows in self._batches(epoch):
            x, y = xp.asarray(data.x_train[rows]), xp.asarray(data.y_train[rows])
            ev = self.prop.loss_and_gradient(self.params, x, y)
            if not math.isfinite(ev.loss):
                raise FloatingPointError(f"the loss became {ev.loss} in epoch {epoch}; lower "
                                         "the learning rate or use a smaller final time")
            assert ev.gradient is not None and ev.adjoint is not None
            grad_norm = vectors.norm(ev.gradient, self.comm)
            info = self.optimizer.step(
                self.params, ev.gradient, ev.loss,
                (lambda p, x=x, y=y: self.prop.loss(p, x, y).loss)
                if self.optimizer.needs_evaluate else None)
            losses.append(ev.loss * len(rows))
            correct += ev.accuracy * len(rows)
            seen += len(rows)
            fwd_iters += ev.forward.iterations
            adj_iters += ev.adjoint.iterations
            evaluations += info.evaluations
            step_size = info.step_size
        elapsed = time.perf_counter() - start
        self.state.elapsed += elapsed
        assert ev is not None and ev.adjoint is not None
        val_loss, val_acc = float("nan"), float("nan")
        if epoch % self.config.eval_every == 0 or epoch == self.config.epochs:
            val_loss, val_acc = self.evaluate(data.x_val, data.y_val)
        return EpochRecord(epoch=epoch, loss=math.fsum(losses) / seen,
                           train_accuracy=correct / seen, val_loss=val_loss,
                           val_accuracy=val_acc, gradient_norm=grad_norm, step_size=step_size,
                           forward_iterations=fwd_iters, adjoint_iterations=adj_iters,
                           forward_residual=ev.forward.residual,
                           adjoint_residual=ev.adjoint.residual,
                           loss_evaluations=evaluations, time=elapsed,
                           elapsed=self.state.elapsed)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Loss and accuracy of the current weights on (x, y), by exact (or tightly solved)
        forward propagation."""
        ev = self.val_prop.loss(self.params, self.xp.asarray(x), self.xp.asarray(y))
        return ev.loss, ev.accuracy

    # ---- checkpoints and output ----

    def _state(self) -> dict[str, Any]:
        """Everything a checkpoint holds, as references to the live objects."""
        return {"config": asdict(self.config), "net": self.net.config(),
                "params": self.params, "optimizer": self.optimizer.state_dict(),
                "warm": self.prop.warm_state(),
                "epoch": self.state.epoch, "elapsed": self.state.elapsed,
                "history": [asdict(r) for r in self.state.history]}

    def _capture(self) -> dict[str, Any]:
        """A copy of the training state before an epoch, to go back to if it is interrupted
        (the history is shared: an unfinished epoch only ever appends to it)."""
        copy = _deep_copy({"params": self.params, "optimizer": self.optimizer.state_dict(),
                           "warm": self.prop.warm_state()})
        return {**copy, "epoch": self.state.epoch, "elapsed": self.state.elapsed,
                "records": len(self.state.history)}

    def _restore(self, before: Mapping[str, Any]) -> None:
        self._adopt(before, self.state.history[:before["records"]])

    def _adopt(self, state: Mapping[str, Any], history: list[EpochRecord]) -> None:
        """Continue from ``state`` (params, optimizer, warm, epoch, elapsed) and ``history``."""
        self.params = state["params"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.prop.restore_warm_state(state.get("warm") or {})
        self.state = _State(epoch=int(state["epoch"]), elapsed=float(state["elapsed"]),
                            history=history)

    def save(self, path: str | Path) -> None:
        """Collective: write a checkpoint of the run (see the module docs for what it holds)."""
        save_checkpoint(path, self._state(), self.comm)

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint written by :meth:`save` (any number of ranks). The
        output directory's metrics log is cut back to the checkpoint's epoch when training
        continues."""
        state = load_checkpoint(path, lambda name: self.prop.owns_state(name)
                                if name.startswith("states.") else self.prop.layout.owns(name),
                                self.xp)
        if state["net"] != self.net.config():
            raise ValueError(f"checkpoint {str(path)!r} holds a different network")
        saved = TrainConfig(**state["config"])
        for f in fields(TrainConfig):
            if f.name not in ("epochs", "eval_every", "backend") and \
                    getattr(saved, f.name) != getattr(self.config, f.name):
                raise ValueError(f"checkpoint {str(path)!r} was trained with {f.name}="
                                 f"{getattr(saved, f.name)!r}, this run has "
                                 f"{getattr(self.config, f.name)!r}")
        missing = set(self.prop.local_names()) - set(state["params"])
        if missing:
            raise ValueError(f"checkpoint {str(path)!r} lacks {sorted(missing)[:3]}")
        self._adopt(state, [EpochRecord(**r) for r in state["history"]])

    def plot(self, directory: str | Path | None = None) -> list[Path]:
        """Write the run's plots (rank 0); their paths (empty on other ranks)."""
        target = directory or self.out_dir
        if not self.root or target is None or not self.state.history:
            return []
        title = f"{self.data.name}: {self.config.method}, {self.net.depth} layers, " \
                f"{self.comm.Get_size()} rank(s)"
        return plot_run(self.state.history, target, title)

    def save_network(self, path: str | Path) -> None:
        from ..nn.io import save

        save(path, self.net, self.params, self.comm)

    def summary(self) -> Mapping[str, Any]:
        last = self.state.history[-1] if self.state.history else None
        return {"epochs": self.state.epoch, "train_seconds": self.state.elapsed,
                "loss": last.loss if last else None,
                "val_accuracy": last.val_accuracy if last else None}


def _deep_copy(value: Any) -> Any:
    """``value`` with every array (NumPy or CuPy) copied; dicts, lists and tuples rebuilt,
    scalars shared."""
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_deep_copy(v) for v in value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value.copy()
    return value
