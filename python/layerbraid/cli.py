"""The ``layerbraid`` command: ``layerbraid train`` trains a ResNet-ODE on a dataset, serially
or layer-parallel; under ``mpiexec -n P`` the layers are distributed over P ranks.

    layerbraid train --dataset peaks --layers 30 --width 8 --method one-shot \\
        --mgrit-iters 2 --optimizer lbfgs --epochs 130 --out runs/peaks
    layerbraid train --config run.toml          # the same options from a file (TOML or JSON)
    layerbraid train --method predict-correct --optimizer sgd --lr 0.05   # Parpas & Muir
    layerbraid train --method iterations --optimizer sgd --lr 0.1 --epochs 256  # MGRIT over
                                                # the training steps (Schroder)
    layerbraid train --nested 3 --nested-epochs 60,30   # 4N/... layers first, then N
    layerbraid plan --depth 4096 --width 32 --batch 256 --ranks 256 --platform cluster \\
        --calibrate                             # MGRIT settings and time per step (layerbraid.plan)

Options in a config file use the long names, with dashes or underscores
(``mgrit_iters = 2``); options given on the command line win over the file.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

__all__ = ["main", "build_parser"]

DEFAULTS: dict[str, Any] = {
    "dataset": "peaks", "data": None, "layers": 30, "width": 8, "kernel_size": 3,
    "activation": "smoothrelu", "opening": "dense", "final_time": 2.5, "tikhonov": 1e-7,
    "classifier_reg": 1e-7, "smoothness": None, "method": "serial", "mgrit_iters": 2,
    "tol": 1e-10, "cfactor": 2, "max_levels": 10, "min_coarse": 10, "optimizer": "lbfgs",
    "lr": None, "schedule": "constant", "epochs": 130, "batch_size": None, "lbfgs_memory": 30,
    "gradient_method": "two-solve", "seed": 0, "init": "zero", "init_scale": 1.0,
    "fine_relax": 1, "coarse_relax": 1, "spatial_coarsen": 0,
    "blocks": None, "coarse": "average", "sweeps": 1, "coarse_lr_cap": "auto",
    "nested": 1, "nested_epochs": None, "nested_kind": "constant",
    "device": "cpu", "native": False, "dtype": "float64",
    "out": None, "checkpoint_every": 10, "checkpoint_minutes": 5.0, "resume": None,
    "force": False, "eval_every": 1, "progress": True, "plots": True, "debug": False,
}
# The smoothness term penalises gamma * |theta_n - theta_{n-1}|^2 / h^2 for each pair of layers.
# Its default keeps gamma / h^2 at the Peaks reference value (gamma 2.5e-4 at T = 5, N = 30),
# so a deeper network is not pulled N^2-times harder towards constant weights.
REFERENCE_SMOOTHNESS, REFERENCE_LAYERS, REFERENCE_FINAL_TIME = 2.5e-4, 30, 5.0


def default_smoothness(layers: int, final_time: float) -> float:
    """The smoothness weight gamma with the reference network's gamma / h^2 (9e-3)."""
    step_ratio = (final_time * REFERENCE_LAYERS) / (REFERENCE_FINAL_TIME * layers)
    return REFERENCE_SMOOTHNESS * step_ratio ** 2


# Every run-file a directory may hold: an --out that holds one is a run already.
RUN_FILES = ("metrics.jsonl", "checkpoint.npz", "checkpoint.pkl", "network.npz",
             "summary.json", "weights.npy", "curves.png", "mgrit.png")


class _Parser(argparse.ArgumentParser):
    """An argument parser for every rank: usage errors are raised (the ranks agree on them and
    rank 0 prints one line) and help is printed by rank 0 only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from mpi4py import MPI

        self.root = MPI.COMM_WORLD.Get_rank() == 0
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise UsageError(message)

    def _print_message(self, message: str, file: Any = None) -> None:
        if self.root:
            super()._print_message(message, file)


class UsageError(ValueError):
    """A command line or config file the CLI cannot run."""


def _choices() -> dict[str, tuple[str, ...]]:
    """The valid values of every option that has a fixed set of them."""
    from . import data, nn
    from .methods.nested import INTERPOLATIONS
    from .methods.predict_correct import COARSE_MAPS
    from .train.optimizers import OPTIMIZERS
    from .train.schedules import SCHEDULES
    from .propagate import GRADIENT_METHODS
    from .train.trainer import METHODS

    return {"dataset": (*data.BUILTIN, "npz", "mnist"), "activation": tuple(nn.ACTIVATIONS),
            "opening": ("dense", "expand_zero"), "init": tuple(nn.WEIGHT_INITS),
            "dtype": ("float64", "float32"), "method": (*METHODS, "iterations"),
            "coarse": tuple(COARSE_MAPS), "device": ("cpu", "gpu"),
            "optimizer": tuple(OPTIMIZERS), "schedule": tuple(SCHEDULES),
            "nested_kind": tuple(INTERPOLATIONS), "gradient_method": tuple(GRADIENT_METHODS)}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="layerbraid", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a ResNet-ODE classifier",
                       description="Train a ResNet-ODE classifier. Every option can also come "
                                   "from --config FILE (TOML or JSON).")
    from .plan import add_arguments as add_plan_arguments

    add_plan_arguments(sub.add_parser(
        "plan", help="recommend MGRIT settings and predict the time per training step",
        description="Recommend MGRIT settings for a layer-parallel run on P ranks of a "
                    "platform and predict its time per training step (forward + backward) "
                    "from a calibrated cost model; says when layer-serial is faster."))
    c = _choices()
    t.add_argument("--config", help="TOML or JSON file of options (long names)")
    g = t.add_argument_group("data")
    g.add_argument("--dataset", choices=c["dataset"], help="peaks (default), spirals, digits, "
                                                           "npz or mnist")
    g.add_argument("--data", help="path for --dataset npz (a file with x, y[, x_val, y_val]) or "
                                  "mnist (a directory of idx files)")
    g = t.add_argument_group("network")
    g.add_argument("--layers", type=int, help="residual layers N (30)")
    g.add_argument("--width", type=int, help="state width, or channels for images (8)")
    g.add_argument("--kernel-size", type=int, help="conv kernel size, odd (3)")
    g.add_argument("--activation", choices=c["activation"], help="smoothrelu (default)")
    g.add_argument("--opening", choices=c["opening"], help="dense (default) or expand_zero, for "
                                                           "vector data")
    g.add_argument("--final-time", type=float, help="T; the layer step is T/N (2.5)")
    g.add_argument("--tikhonov", type=float, help="Tikhonov weight of layers (1e-7)")
    g.add_argument("--classifier-reg", type=float, help="Tikhonov weight of the classifier")
    g.add_argument("--smoothness", type=float, help="smoothness-in-layer weight gamma (default: "
                   "9e-3 h^2, which is 6.25e-5 for 30 layers at T = 2.5)")
    g.add_argument("--dtype", choices=c["dtype"], help="float64 (default) or float32")
    g.add_argument("--init", choices=c["init"], help="zero (default), random or smooth residual "
                                                     "weights")
    g.add_argument("--init-scale", type=float, help="scale of the initial weights (1.0)")
    g = t.add_argument_group("method")
    g.add_argument("--method", choices=c["method"], help="serial (default), parallel, one-shot, "
                   "predict-correct, or iterations (MGRIT over the training steps)")
    g.add_argument("--mgrit-iters", type=int, help="one-shot: MGRIT cycles per solve (2)")
    g.add_argument("--gradient-method", choices=c["gradient_method"],
                   help="serial, parallel, one-shot: two-solve (default; a forward and an "
                        "adjoint solve) or piggy-back (one drive of the engine's adjoint "
                        "iteration)")
    g.add_argument("--tol", type=float, help="parallel: absolute tolerance (1e-10)")
    g.add_argument("--cfactor", type=int, help="MGRIT coarsening factor (2)")
    g.add_argument("--max-levels", type=int, help="MGRIT levels at most (10)")
    g.add_argument("--min-coarse", type=int, help="smallest coarse grid (10)")
    g.add_argument("--fine-relax", type=int, help="relaxation on the finest level: 0 F, 1 FCF "
                                                  "(default)")
    g.add_argument("--coarse-relax", type=int, help="relaxation below it: 0 F, 1 FCF (default)")
    g.add_argument("--spatial-coarsen", type=int, metavar="S",
                   help="conv layers with --native: coarse MGRIT levels compute on images "
                        "halved up to S times (0, off; see layerbraid plan)")
    g.add_argument("--blocks", type=int, help="predict-correct: layer blocks (one per rank)")
    g.add_argument("--coarse", choices=c["coarse"], help="predict-correct: coarse network, "
                                                         "average (default) or exact")
    g.add_argument("--sweeps", type=int, help="predict-correct: parareal iterations per step "
                                              "(1)")
    g.add_argument("--coarse-lr-cap", help="iterations: a coarse step's learning rate is at "
                                           "most this times --lr; auto (default) or a number")
    g.add_argument("--device", choices=c["device"], help="cpu (NumPy, default) or gpu (CuPy)")
    g.add_argument("--native", action="store_const", const=True,
                   help="cpu: run the layer solves in C++ (backend 'native', no Python "
                        "callbacks) instead of NumPy callbacks")
    g.add_argument("--nested", type=int, help="nested initialisation: train this many networks, "
                                              "each twice as deep as the last (1: off)")
    g.add_argument("--nested-epochs", help="epochs of the shallower networks, coarsest first, "
                                           "comma-separated (default: --epochs each)")
    g.add_argument("--nested-kind", choices=c["nested_kind"], help="weight interpolation: "
                                                                   "constant (default) or linear")
    g = t.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=c["optimizer"], help="lbfgs (default), adam or sgd")
    g.add_argument("--lr", type=float, help="learning rate / initial step (optimiser default)")
    g.add_argument("--schedule", choices=c["schedule"], help="constant (default), step or "
                                                             "cosine")
    g.add_argument("--epochs", type=int, help="epochs; full batch: optimisation steps (130)")
    g.add_argument("--batch-size", type=int, help="mini-batch size (default: full batch)")
    g.add_argument("--lbfgs-memory", type=int, help="L-BFGS pairs kept (30)")
    g.add_argument("--seed", type=int, help="seed of initial weights and batch order (0)")
    g = t.add_argument_group("output")
    g.add_argument("--out", help="directory for metrics.jsonl, plots, checkpoint, network "
                                 "(without it nothing is saved)")
    g.add_argument("--checkpoint-every", type=int, help="checkpoint every k epochs (10; 0: not "
                                                        "by count)")
    g.add_argument("--checkpoint-minutes", type=float, help="... and every m minutes (5; 0: not "
                                                            "by time); always at the end and "
                                                            "on SIGINT/SIGTERM")
    g.add_argument("--resume", help="continue from this checkpoint (or the checkpoint.npz of "
                                    "this directory)")
    g.add_argument("--force", action="store_const", const=True,
                   help="replace the run an existing --out holds")
    g.add_argument("--eval-every", type=int, help="validate every k epochs (1)")
    g.add_argument("--no-progress", dest="progress", action="store_const", const=False)
    g.add_argument("--no-plots", dest="plots", action="store_const", const=False)
    g.add_argument("--debug", action="store_const", const=True,
                   help="print tracebacks with errors")
    return parser


def _option_types(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The train command's options by name, for checking config files like the command line."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train"]
    return {a.dest: a for a in train._actions if a.dest in DEFAULTS}


def _check_option(name: str, value: Any, action: argparse.Action, source: str) -> Any:
    """A config file's value of ``name``, checked as the command line checks the flag."""
    flag = f"argument {action.option_strings[0]} (in {source})"
    if value is None and DEFAULTS[name] is None:
        return None
    if action.const is not None or action.nargs == 0:  # an on/off flag
        if not isinstance(value, bool):
            raise UsageError(f"{flag}: expected true or false, not {value!r}")
        return value
    kind = action.type or str
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str) or (name == "coarse_lr_cap" and isinstance(value, (int, float))
                                        and not isinstance(value, bool))
    if not ok:
        raise UsageError(f"{flag}: invalid {kind.__name__} value: {value!r}")
    if action.choices is not None and value not in action.choices:
        raise UsageError(f"{flag}: invalid choice: {value!r} (choose from "
                         f"{', '.join(map(repr, action.choices))})")
    return float(value) if kind is float else value


def _read_config(path: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise OSError(f"cannot read config file {path!r}: {e.strerror or e}") from e
    try:
        if path.endswith(".json"):
            loaded = json.loads(text)
        else:
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            loaded = tomllib.loads(text)
    except ValueError as e:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise UsageError(f"{path}: not valid {'JSON' if path.endswith('.json') else 'TOML'}: "
                         f"{e}") from e
    if not isinstance(loaded, dict):
        raise UsageError(f"{path}: a config file holds a table of options")
    options = {k.replace("-", "_"): v for k, v in loaded.items()}
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"{path}: unknown option(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(sorted(DEFAULTS))}")
    actions = _option_types(parser)
    return {k: _check_option(k, v, actions[k], path) for k, v in options.items()}


def _settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    settings = dict(DEFAULTS)
    if args.config:
        settings.update(_read_config(args.config, parser))
    settings.update({k: v for k, v in vars(args).items()
                     if k in DEFAULTS and v is not None})
    return settings


def _dataset(s: dict[str, Any]) -> Any:
    from . import data

    name = s["dataset"]
    if name in data.BUILTIN:
        return data.BUILTIN[name]()
    if not s["data"]:
        raise UsageError(f"--dataset {name} needs --data PATH")
    return data.load_npz(s["data"]) if name == "npz" else data.load_mnist_idx(s["data"])


def _network(s: dict[str, Any], dataset: Any) -> Any:
    from . import nn

    if s["layers"] is None or s["layers"] < 1:
        raise UsageError(f"--layers {s['layers']} is not supported; use a positive integer")
    smoothness = s["smoothness"]
    if smoothness is None:
        smoothness = default_smoothness(s["layers"], s["final_time"])
    reg = nn.Regularization(s["tikhonov"], s["classifier_reg"], smoothness)
    common = {"activation": s["activation"], "final_time": s["final_time"],
              "regularization": reg, "dtype": s["dtype"]}
    shape = dataset.input_shape
    if len(shape) == 3:
        return nn.ResNet.conv(shape[0], (shape[1], shape[2]), s["width"], dataset.classes,
                              s["layers"], kernel_size=s["kernel_size"], **common)
    return nn.ResNet.dense(shape[0], s["width"], dataset.classes, s["layers"],
                           opening=s["opening"], **common)


def _prepare_out(s: dict[str, Any], comm: Any) -> Path | None:
    """Collective: check --out and create it (rank 0). An --out that holds a run already is
    refused unless the run continues (--resume) or is replaced (--force)."""
    from . import ranks

    out = Path(s["out"]) if s["out"] else None
    with ranks.together(comm):
        if out is not None and comm.Get_rank() == 0:
            if out.exists() and not out.is_dir():
                raise UsageError(f"--out {out} is a file, not a directory")
            held = [name for name in RUN_FILES if (out / name).exists()]
            if held and not s["resume"]:
                if not s["force"]:
                    raise UsageError(
                        f"--out {out} already holds a run ({', '.join(held)}); continue it "
                        f"with --resume {out / 'checkpoint.npz'} or replace it with --force")
                for name in held:
                    target = out / name
                    shutil.rmtree(target) if target.is_dir() else target.unlink()
            out.mkdir(parents=True, exist_ok=True)
    return out


def _resume_path(value: str) -> Path:
    from .train.trainer import CHECKPOINT

    path = Path(value)
    return path / CHECKPOINT if path.is_dir() else path


def train(s: dict[str, Any]) -> int:
    from mpi4py import MPI

    from . import ranks
    from .train import TrainConfig, Trainer

    comm = MPI.COMM_WORLD
    root = comm.Get_rank() == 0
    if s["native"] and s["device"] != "cpu":
        raise UsageError("--native runs on the cpu; leave out --device gpu")
    backend = "cupy" if s["device"] == "gpu" else "native" if s["native"] else "numpy"
    with ranks.together(comm):
        dataset = _dataset(s)
        net = _network(s, dataset)
        config = TrainConfig(method=s["method"], optimizer=s["optimizer"], lr=s["lr"],
                             schedule=s["schedule"], epochs=s["epochs"],
                             batch_size=s["batch_size"], mgrit_iters=s["mgrit_iters"],
                             tol=s["tol"], cfactor=s["cfactor"], max_levels=s["max_levels"],
                             min_coarse=s["min_coarse"], fine_relax=s["fine_relax"],
                             coarse_relax=s["coarse_relax"], lbfgs_memory=s["lbfgs_memory"],
                             seed=s["seed"], init=s["init"], init_scale=s["init_scale"],
                             backend=backend, eval_every=s["eval_every"], blocks=s["blocks"],
                             coarse=s["coarse"], sweeps=s["sweeps"],
                             gradient_method=s["gradient_method"],
                             spatial_coarsen=s["spatial_coarsen"])
    out = _prepare_out(s, comm)
    if root:
        print(f"layerbraid train: {dataset}; ResNet {net.depth} layers of "
              f"{type(net.layer).__name__.lower()} width {s['width']}, {net.activation}, "
              f"smoothness {net.regularization.smoothness:.3g}; "
              f"method {config.method} on {comm.Get_size()} rank(s), optimizer "
              f"{config.optimizer}, backend {config.backend}", flush=True)
        if out is None:
            print("note: no --out, so nothing (metrics, checkpoints, network, plots) will be "
                  "saved", flush=True)
    if s["nested"] > 1:
        trainer, history = _train_nested(s, net, dataset, config, comm)
    else:
        with ranks.together(comm):
            trainer = Trainer(net, dataset, config, comm, out_dir=out, progress=s["progress"],
                              checkpoint_every=s["checkpoint_every"],
                              checkpoint_minutes=s["checkpoint_minutes"])
        if s["resume"]:
            with ranks.together(comm):
                trainer.resume(_resume_path(s["resume"]))
        history = trainer.fit()
    plots: list[Path] = []
    if s["plots"] and out:
        with ranks.together(comm):
            plots = trainer.plot()
    if out:
        trainer.save_network(out / "network.npz")
    if root and history:
        last = history[-1]
        accuracies = [r.val_accuracy for r in history if r.val_accuracy == r.val_accuracy]
        best = f" (best {100 * max(accuracies):.2f}%)" if accuracies else ""
        print(f"done: {trainer.state.epoch} epochs in {trainer.state.elapsed:.2f} s of "
              f"training; final loss {last.loss:.4f}, training accuracy "
              f"{100 * last.train_accuracy:.2f}%, validation accuracy "
              f"{100 * last.val_accuracy:.2f}%{best}")
        if out:
            print(f"metrics: {out / 'metrics.jsonl'}; network: {out / 'network.npz'}; "
                  f"checkpoint: {out / 'checkpoint.npz'}")
        else:
            print("nothing was saved (no --out)")
        for p in plots:
            print(f"plot: {p}")
    return 0


def _train_nested(s: dict[str, Any], net: Any, dataset: Any, config: Any,
                  comm: Any) -> tuple[Any, list[Any]]:
    """--nested K: train net / 2^(K-1) layers, then each doubled depth, up to net."""
    from . import ranks
    from .methods.nested import train_nested
    from .train.metrics import MetricsLog
    from .train.trainer import CHECKPOINT

    if s["resume"]:
        raise UsageError("--resume continues one network; it does not combine with --nested")
    levels = s["nested"]
    epochs = [s["epochs"]] * levels
    if s["nested_epochs"]:
        try:
            coarse = [int(e) for e in str(s["nested_epochs"]).split(",")]
        except ValueError:
            coarse = []
        if len(coarse) != levels - 1:
            raise UsageError(f"--nested-epochs {s['nested_epochs']} needs {levels - 1} integers "
                             f"(one per shallower network, coarsest first)")
        epochs = coarse + [s["epochs"]]
    result = train_nested(net, dataset, config, comm, levels=levels, epochs=epochs,
                          kind=s["nested_kind"], progress=s["progress"])
    if comm.Get_rank() == 0:
        for level in result.levels:
            last = level.history[-1]
            print(f"  {level.net.depth} layers: {len(level.history)} epochs, validation "
                  f"accuracy {100 * last.val_accuracy:.2f}% at {last.elapsed:.2f} s")
    trainer = result.trainer
    trainer.state.history = result.history
    trainer.state.elapsed = result.elapsed
    if s["out"]:
        trainer.out_dir = Path(s["out"])
        with ranks.together(comm):
            MetricsLog(trainer.out_dir / "metrics.jsonl" if comm.Get_rank() == 0 else None,
                       result.history)
        trainer.save(trainer.out_dir / CHECKPOINT)
    return trainer, result.history


def train_over_iterations(s: dict[str, Any]) -> int:
    """--method iterations: MGRIT over the training steps; every rank owns a range of steps."""
    from mpi4py import MPI

    from . import ranks
    from .methods.iterations import MGRITOverIterations, ResNetProblem
    from .propagate import Propagator

    comm = MPI.COMM_WORLD
    root = comm.Get_rank() == 0
    if s["optimizer"] != "sgd" or s["lr"] is None:
        raise UsageError("--method iterations solves plain gradient-descent steps: use "
                         "--optimizer sgd with a --lr")
    with ranks.together(comm):
        dataset = _dataset(s)
        net = _network(s, dataset)
    out = _prepare_out(s, comm)
    problem = ResNetProblem(net, dataset, s["batch_size"], s["seed"])
    w0 = problem.flatten(Propagator(net, MPI.COMM_SELF).init_params(
        s["seed"], weights=s["init"], scale=s["init_scale"]))
    cap = s["coarse_lr_cap"]
    run = MGRITOverIterations(problem, w0, s["epochs"], s["lr"], comm, cfactor=s["cfactor"],
                              max_levels=s["max_levels"], min_coarse=s["min_coarse"],
                              nrelax=s["fine_relax"], abs_tol=s["tol"],
                              coarse_lr_cap=cap if cap in (None, "auto") else float(cap))
    if root:
        print(f"layerbraid train: {dataset}; ResNet {net.depth} layers; MGRIT over "
              f"{s['epochs']} training steps on {comm.Get_size()} rank(s), learning rates per "
              f"level {', '.join(f'{lr:.3g}' for lr in run.coarse_lrs)}", flush=True)
    result = run.solve()
    # every rank validates the weights of its own steps, in parallel
    validator = Propagator(net, MPI.COMM_SELF)
    every = s["eval_every"]
    mine = [{"step": i, **dict(zip(("val_loss", "val_accuracy"), _validate(
        validator, problem.params(w), dataset)))} for i, w in sorted(result.trajectory.items())
        if i % every == 0 or i == s["epochs"]]
    records = sorted((r for part in comm.allgather(mine) for r in part),
                     key=lambda r: r["step"])
    with ranks.together(comm):
        if root:
            _report_iterations(s, result, records, out)
    return 0


def _report_iterations(s: dict[str, Any], result: Any, records: list[dict[str, Any]],
                       out: Path | None) -> None:
    """Rank 0: what MGRIT over the training steps did, and its files under --out."""
    import numpy as np

    final = records[-1]
    known = [r for r in result.residual_history if r is not None]
    solve = (f"{result.iterations} MGRIT iterations (residual {known[-1]:.2e})" if known
             else "one level, step after step")
    if known and not result.converged:
        solve += (f" WITHOUT reaching --tol {s['tol']:g}: the weights are not yet the serial "
                  "trajectory's (lower --lr, use fewer levels or full batches)")
    print(f"done: {solve} in {result.wall_time:.2f} s; step "
          f"{final['step']}: validation accuracy {100 * final['val_accuracy']:.2f}%; "
          f"work {result.total_work} step evaluations (the serial loop: {s['epochs']}); "
          f"critical path {result.cost.total} steps, ideal speedup "
          f"{result.cost.ideal_speedup:.2f}")
    if out is None:
        print("nothing was saved (no --out)")
        return
    with open(out / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    np.save(out / "weights.npy", result.final_weights)
    summary = {"steps": s["epochs"], "iterations": result.iterations,
               "converged": result.converged, "nlevels": result.nlevels,
               "residual_history": list(result.residual_history),
               "coarse_lrs": list(result.coarse_lrs), "work": list(result.work),
               "critical_path": result.cost.total, "ideal_speedup": result.cost.ideal_speedup,
               "wall_time": result.wall_time}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"metrics: {out / 'metrics.jsonl'}; summary: {out / 'summary.json'}; final "
          f"weights: {out / 'weights.npy'}")


def _validate(prop: Any, params: dict[str, Any], dataset: Any) -> tuple[float, float]:
    ev = prop.loss(params, dataset.x_val, dataset.y_val)
    return ev.loss, ev.accuracy


def _raise_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM outside training ends the run as Ctrl-C does (training handles both itself)."""
    error = KeyboardInterrupt()
    error.signum = signum  # type: ignore[attr-defined]
    raise error


def _resume_command(argv: Sequence[str], checkpoint: str) -> str:
    """The command line that continues an interrupted run."""
    keep: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--resume", "--force"):
            skip = arg == "--resume"
        elif not arg.startswith("--resume="):
            keep.append(arg)
    return shlex.join(["layerbraid", *keep, "--resume", checkpoint])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command on every rank; its exit code. Any failure, on any rank, ends every rank
    with one ``layerbraid <command>: error: ...`` line, printed once (tracebacks: --debug); a
    SIGINT/SIGTERM during training checkpoints and exits with 130/143."""
    from mpi4py import MPI

    from . import ranks

    argv = list(sys.argv[1:] if argv is None else argv)
    comm = MPI.COMM_WORLD
    ranks.control_comm(comm)
    ranks.DEBUG = "--debug" in argv
    command = next((a for a in argv if not a.startswith("-")), "")
    ranks.PROGRAM = f"layerbraid {command}" if command in ("train", "plan") else "layerbraid"
    root = comm.Get_rank() == 0
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            if args.command == "plan":
                from . import plan

                return plan.run(args)
            settings = _settings(args, parser)
            if settings["method"] == "iterations":
                return train_over_iterations(settings)
            return train(settings)
        except (ranks.CollectiveError, ranks.CollectiveInterrupt):
            raise
        except SystemExit as e:  # --help
            return int(e.code or 0)
        except (Exception, KeyboardInterrupt) as e:
            ranks.verdict(ranks.exchange(comm, ranks.report_of(e)))
            raise
    except ranks.CollectiveInterrupt as e:
        if root:
            line = f"{ranks.PROGRAM}: {e}"
            checkpoint = getattr(e, "checkpoint", None)
            if checkpoint:
                line += f"\ncontinue with: {_resume_command(argv, checkpoint)}"
            print(line, file=sys.stderr, flush=True)
        return 128 + e.signum
    except ranks.CollectiveError as e:
        if root:
            print(f"{ranks.PROGRAM}: error: {e}", file=sys.stderr, flush=True)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
