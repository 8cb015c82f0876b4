"""The ``layerbraid`` command: ``layerbraid train`` trains a ResNet-ODE on a dataset, serially
or layer-parallel; under ``mpiexec -n P`` the layers are distributed over P ranks.

    layerbraid train --dataset peaks --layers 30 --width 8 --method one-shot \\
        --mgrit-iters 2 --optimizer lbfgs --epochs 130 --out runs/peaks
    layerbraid train --config run.toml          # the same options from a file (TOML or JSON)
    layerbraid train --method predict-correct --optimizer sgd --lr 0.05   # Parpas & Muir
    layerbraid train --method iterations --optimizer sgd --lr 0.1 --epochs 256  # MGRIT over
                                                # the training steps (Schroder)
    layerbraid train --nested 3 --nested-epochs 60,30   # 4N/... layers first, then N

Options in a config file use the long names, with dashes or underscores
(``mgrit_iters = 2``); options given on the command line win over the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser"]

DEFAULTS: dict[str, Any] = {
    "dataset": "peaks", "data": None, "layers": 30, "width": 8, "kernel_size": 3,
    "activation": "smoothrelu", "opening": "dense", "final_time": 5.0, "tikhonov": 1e-7,
    "classifier_reg": 1e-7, "smoothness": None, "method": "serial", "mgrit_iters": 2,
    "tol": 1e-10, "cfactor": 2, "max_levels": 10, "min_coarse": 10, "optimizer": "lbfgs",
    "lr": None, "schedule": "constant", "epochs": 130, "batch_size": None, "lbfgs_memory": 10,
    "seed": 0, "init": "zero", "init_scale": 1.0, "fine_relax": 1, "coarse_relax": 1,
    "blocks": None, "coarse": "average", "sweeps": 1, "coarse_lr_cap": "auto",
    "nested": 1, "nested_epochs": None, "nested_kind": "constant",
    "device": "cpu", "native": False, "dtype": "float64",
    "out": None, "checkpoint_every": 0, "resume": None, "eval_every": 1, "progress": True,
    "plots": True,
}
# The smoothness term penalises gamma * |theta_n - theta_{n-1}|^2 / h^2 for each pair of layers.
# Its default keeps gamma / h^2 at the Peaks reference value (gamma 2.5e-4 at T = 5, N = 30),
# so a deeper network is not pulled N^2-times harder towards constant weights.
REFERENCE_SMOOTHNESS, REFERENCE_LAYERS, REFERENCE_FINAL_TIME = 2.5e-4, 30, 5.0


def default_smoothness(layers: int, final_time: float) -> float:
    """The smoothness weight gamma with the reference network's gamma / h^2 (9e-3)."""
    step_ratio = (final_time * REFERENCE_LAYERS) / (REFERENCE_FINAL_TIME * layers)
    return REFERENCE_SMOOTHNESS * step_ratio ** 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="layerbraid", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a ResNet-ODE classifier",
                       description="Train a ResNet-ODE classifier. Every option can also come "
                                   "from --config FILE (TOML or JSON).")
    t.add_argument("--config", help="TOML or JSON file of options (long names)")
    g = t.add_argument_group("data")
    g.add_argument("--dataset", help="peaks (default), spirals, digits, npz or mnist")
    g.add_argument("--data", help="path for --dataset npz (a file with x, y[, x_val, y_val]) or "
                                  "mnist (a directory of idx files)")
    g = t.add_argument_group("network")
    g.add_argument("--layers", type=int, help="residual layers N (30)")
    g.add_argument("--width", type=int, help="state width, or channels for images (8)")
    g.add_argument("--kernel-size", type=int, help="conv kernel size, odd (3)")
    g.add_argument("--activation", help="tanh, relu or smoothrelu (default)")
    g.add_argument("--opening", help="dense (default) or expand_zero, for vector data")
    g.add_argument("--final-time", type=float, help="T; the layer step is T/N (5.0)")
    g.add_argument("--tikhonov", type=float, help="Tikhonov weight of layers (1e-7)")
    g.add_argument("--classifier-reg", type=float, help="Tikhonov weight of the classifier")
    g.add_argument("--smoothness", type=float, help="smoothness-in-layer weight gamma (default: "
                   "9e-3 h^2, which is 2.5e-4 for 30 layers at T = 5)")
    g.add_argument("--dtype", help="float64 (default) or float32")
    g.add_argument("--init", help="zero (default), random or smooth residual weights")
    g.add_argument("--init-scale", type=float, help="scale of the initial weights (1.0)")
    g = t.add_argument_group("method")
    g.add_argument("--method", help="serial (default), parallel, one-shot, predict-correct, "
                                    "or iterations (MGRIT over the training steps)")
    g.add_argument("--mgrit-iters", type=int, help="one-shot: MGRIT cycles per solve (2)")
    g.add_argument("--tol", type=float, help="parallel: absolute tolerance (1e-10)")
    g.add_argument("--cfactor", type=int, help="MGRIT coarsening factor (2)")
    g.add_argument("--max-levels", type=int, help="MGRIT levels at most (10)")
    g.add_argument("--min-coarse", type=int, help="smallest coarse grid (10)")
    g.add_argument("--fine-relax", type=int, help="relaxation on the finest level: 0 F, 1 FCF "
                                                  "(default)")
    g.add_argument("--coarse-relax", type=int, help="relaxation below it: 0 F, 1 FCF (default)")
    g.add_argument("--blocks", type=int, help="predict-correct: layer blocks (one per rank)")
    g.add_argument("--coarse", help="predict-correct: coarse network, average (default) or "
                                    "exact")
    g.add_argument("--sweeps", type=int, help="predict-correct: parareal iterations per step "
                                              "(1)")
    g.add_argument("--coarse-lr-cap", help="iterations: a coarse step's learning rate is at "
                                           "most this times --lr; auto (default) or a number")
    g.add_argument("--device", help="cpu (NumPy, default) or gpu (CuPy)")
    g.add_argument("--native", action="store_const", const=True,
                   help="cpu: run the layer solves in C++ (backend 'native', no Python "
                        "callbacks) instead of NumPy callbacks")
    g.add_argument("--nested", type=int, help="nested initialisation: train this many networks, "
                                              "each twice as deep as the last (1: off)")
    g.add_argument("--nested-epochs", help="epochs of the shallower networks, coarsest first, "
                                           "comma-separated (default: --epochs each)")
    g.add_argument("--nested-kind", help="weight interpolation: constant (default) or linear")
    g = t.add_argument_group("optimisation")
    g.add_argument("--optimizer", help="lbfgs (default), adam or sgd")
    g.add_argument("--lr", type=float, help="learning rate / initial step (optimiser default)")
    g.add_argument("--schedule", help="constant (default), step or cosine")
    g.add_argument("--epochs", type=int, help="epochs; full batch: optimisation steps (130)")
    g.add_argument("--batch-size", type=int, help="mini-batch size (default: full batch)")
    g.add_argument("--lbfgs-memory", type=int, help="L-BFGS pairs kept (10)")
    g.add_argument("--seed", type=int, help="seed of initial weights and batch order (0)")
    g = t.add_argument_group("output")
    g.add_argument("--out", help="directory for metrics.jsonl, plots, checkpoint, network")
    g.add_argument("--checkpoint-every", type=int, help="checkpoint every k epochs (end only)")
    g.add_argument("--resume", help="checkpoint file to continue from")
    g.add_argument("--eval-every", type=int, help="validate every k epochs (1)")
    g.add_argument("--no-progress", dest="progress", action="store_const", const=False)
    g.add_argument("--no-plots", dest="plots", action="store_const", const=False)
    return parser


def _read_config(path: str) -> dict[str, Any]:
    text = Path(path).read_text()
    if path.endswith(".json"):
        loaded = json.loads(text)
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        loaded = tomllib.loads(text)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a config file holds a table of options")
    options = {k.replace("-", "_"): v for k, v in loaded.items()}
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(sorted(DEFAULTS))}")
    return options


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    settings = dict(DEFAULTS)
    if args.config:
        settings.update(_read_config(args.config))
    settings.update({k: v for k, v in vars(args).items()
                     if k in DEFAULTS and v is not None})
    return settings


def _dataset(s: dict[str, Any]) -> Any:
    from . import data

    name = s["dataset"]
    if name in data.BUILTIN:
        return data.BUILTIN[name]()
    if name in ("npz", "mnist"):
        if not s["data"]:
            raise ValueError(f"--dataset {name} needs --data PATH")
        return data.load_npz(s["data"]) if name == "npz" else data.load_mnist_idx(s["data"])
    raise ValueError(f"--dataset {name!r} is not supported; use one of "
                     f"{', '.join([*data.BUILTIN, 'npz', 'mnist'])}")


def _network(s: dict[str, Any], dataset: Any) -> Any:
    from . import nn

    if s["layers"] is None or s["layers"] < 1:
        raise ValueError(f"--layers {s['layers']} is not supported; use a positive integer")
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


def train(s: dict[str, Any]) -> int:
    from mpi4py import MPI

    from .train import TrainConfig, Trainer

    comm = MPI.COMM_WORLD
    root = comm.Get_rank() == 0
    if s["device"] not in ("cpu", "gpu"):
        raise ValueError(f"--device {s['device']!r} is not supported; use cpu or gpu")
    if s["native"] and s["device"] != "cpu":
        raise ValueError("--native runs on the cpu; leave out --device gpu")
    backend = "cupy" if s["device"] == "gpu" else "native" if s["native"] else "numpy"
    dataset = _dataset(s)
    net = _network(s, dataset)
    config = TrainConfig(method=s["method"], optimizer=s["optimizer"], lr=s["lr"],
                         schedule=s["schedule"], epochs=s["epochs"], batch_size=s["batch_size"],
                         mgrit_iters=s["mgrit_iters"], tol=s["tol"], cfactor=s["cfactor"],
                         max_levels=s["max_levels"], min_coarse=s["min_coarse"],
                         fine_relax=s["fine_relax"], coarse_relax=s["coarse_relax"],
                         lbfgs_memory=s["lbfgs_memory"], seed=s["seed"], init=s["init"],
                         init_scale=s["init_scale"],
                         backend=backend,
                         eval_every=s["eval_every"], blocks=s["blocks"], coarse=s["coarse"],
                         sweeps=s["sweeps"])
    out = Path(s["out"]) if s["out"] else None
    if root:
        print(f"layerbraid train: {dataset}; ResNet {net.depth} layers of "
              f"{type(net.layer).__name__.lower()} width {s['width']}, {net.activation}, "
              f"smoothness {net.regularization.smoothness:.3g}; "
              f"method {config.method} on {comm.Get_size()} rank(s), optimizer "
              f"{config.optimizer}, backend {config.backend}", flush=True)
    if s["nested"] > 1:
        trainer, history = _train_nested(s, net, dataset, config, comm)
    else:
        trainer = Trainer(net, dataset, config, comm, out_dir=out, progress=s["progress"],
                          checkpoint_every=s["checkpoint_every"])
        if s["resume"]:
            trainer.resume(s["resume"])
        history = trainer.fit()
    plots = trainer.plot() if s["plots"] and out else []
    if out:
        trainer.save_network(out / "network.npz")
    if root and history:
        last = history[-1]
        best = max(r.val_accuracy for r in history if r.val_accuracy == r.val_accuracy)
        print(f"done: {trainer.state.epoch} epochs in {trainer.state.elapsed:.2f} s of "
              f"training; final loss {last.loss:.4f}, training accuracy "
              f"{100 * last.train_accuracy:.2f}%, validation accuracy "
              f"{100 * last.val_accuracy:.2f}% (best {100 * best:.2f}%)")
        if out:
            print(f"metrics: {out / 'metrics.jsonl'}; network: {out / 'network.npz'}; "
                  f"checkpoint: {out / 'checkpoint.pkl'}")
        for p in plots:
            print(f"plot: {p}")
    return 0


def _train_nested(s: dict[str, Any], net: Any, dataset: Any, config: Any,
                  comm: Any) -> tuple[Any, list[Any]]:
    """--nested K: train net / 2^(K-1) layers, then each doubled depth, up to net."""
    from .methods.nested import train_nested
    from .train.metrics import MetricsLog

    if s["resume"]:
        raise ValueError("--resume continues one network; it does not combine with --nested")
    levels = s["nested"]
    epochs = [s["epochs"]] * levels
    if s["nested_epochs"]:
        coarse = [int(e) for e in str(s["nested_epochs"]).split(",")]
        if len(coarse) != levels - 1:
            raise ValueError(f"--nested-epochs {s['nested_epochs']} needs {levels - 1} numbers "
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
    if s["out"]:
        trainer.out_dir = Path(s["out"])
        log = MetricsLog(trainer.out_dir / "metrics.jsonl" if comm.Get_rank() == 0 else None)
        for record in result.history:
            log.write(record)
        trainer.save(trainer.out_dir / "checkpoint.pkl")
    trainer.state.history = result.history
    trainer.state.elapsed = result.elapsed
    return trainer, result.history


def train_over_iterations(s: dict[str, Any]) -> int:
    """--method iterations: MGRIT over the training steps; every rank owns a range of steps."""
    import numpy as np
    from mpi4py import MPI

    from .methods.iterations import MGRITOverIterations, ResNetProblem
    from .propagate import Propagator

    comm = MPI.COMM_WORLD
    root = comm.Get_rank() == 0
    if s["optimizer"] != "sgd" or s["lr"] is None:
        raise ValueError("--method iterations solves plain gradient-descent steps: use "
                         "--optimizer sgd with a --lr")
    dataset = _dataset(s)
    net = _network(s, dataset)
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
    if root:
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
        if s["out"]:
            out = Path(s["out"])
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "metrics.jsonl", "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in records)
            np.save(out / "weights.npy", result.final_weights)
            summary = {"steps": s["epochs"], "iterations": result.iterations,
                       "converged": result.converged, "nlevels": result.nlevels,
                       "residual_history": list(result.residual_history),
                       "coarse_lrs": list(result.coarse_lrs), "work": list(result.work),
                       "critical_path": result.cost.total,
                       "ideal_speedup": result.cost.ideal_speedup,
                       "wall_time": result.wall_time}
            (out / "summary.json").write_text(json.dumps(summary, indent=1))
            print(f"metrics: {out / 'metrics.jsonl'}; summary: {out / 'summary.json'}; final "
                  f"weights: {out / 'weights.npy'}")
    return 0


def _validate(prop: Any, params: dict[str, Any], dataset: Any) -> tuple[float, float]:
    ev = prop.loss(params, dataset.x_val, dataset.y_val)
    return ev.loss, ev.accuracy


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            settings = _settings(args)
            if settings["method"] == "iterations":
                return train_over_iterations(settings)
            return train(settings)
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"layerbraid {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
