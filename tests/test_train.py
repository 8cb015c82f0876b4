"""Training: optimisers, data loaders, checkpoints and resume, the CLI, rank independence."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import MPI_SCRIPTS, clean_env
from layerbraid import data, nn
from layerbraid.train import LBFGS, SGD, Adam, TrainConfig, Trainer
from layerbraid.train.checkpoint import load_checkpoint
from mpi4py import MPI

COMM = MPI.COMM_SELF


def quadratic(params: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
    """0.5 x^T A x - b^T x over two blocks, minimum at A^-1 b."""
    a = np.diag(np.arange(1.0, 7.0))
    x = np.concatenate([params["layers.0.weight"].ravel(), params["classifier.bias"]])
    g = a @ x - np.ones(6)
    loss = 0.5 * x @ a @ x - x.sum()
    return float(loss), {"layers.0.weight": g[:4].reshape(2, 2), "classifier.bias": g[4:]}


def start() -> dict[str, np.ndarray]:
    return {"layers.0.weight": np.full((2, 2), 3.0), "classifier.bias": np.array([-2.0, 5.0])}


@pytest.mark.parametrize("make,steps,tol", [
    (lambda: LBFGS(memory=6, comm=COMM), 40, 1e-10),
    (lambda: SGD(lr=0.15, momentum=0.5, comm=COMM), 200, 1e-8),
    (lambda: Adam(lr=0.05, comm=COMM), 2000, 1e-4),
])
def test_optimisers_minimise_a_quadratic(make, steps: int, tol: float) -> None:
    opt, params = make(), start()
    for _ in range(steps):
        loss, grad = quadratic(params)
        opt.step(params, grad, loss, lambda p: quadratic(p)[0])
    x = np.concatenate([params["layers.0.weight"].ravel(), params["classifier.bias"]])
    np.testing.assert_allclose(x, 1.0 / np.arange(1.0, 7.0), atol=tol)


@pytest.mark.parametrize("make", [lambda: LBFGS(comm=COMM),
                                  lambda: SGD(lr=0.1, momentum=0.9, comm=COMM),
                                  lambda: Adam(lr=0.1, comm=COMM)])
def test_optimiser_state_round_trip_continues_the_same_trajectory(make) -> None:
    a, pa = make(), start()
    for _ in range(3):
        loss, grad = quadratic(pa)
        a.step(pa, grad, loss, lambda p: quadratic(p)[0])
    b, pb = make(), {k: v.copy() for k, v in pa.items()}
    b.load_state_dict(a.state_dict())
    for _ in range(3):
        for opt, p in ((a, pa), (b, pb)):
            loss, grad = quadratic(p)
            opt.step(p, grad, loss, lambda q: quadratic(q)[0])
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])


def small_peaks_run(tmp_path, params=None, **config):
    dataset = data.peaks(400, 100)
    net = nn.ResNet.dense(2, 6, 5, 8, activation="smoothrelu",
                          regularization=nn.Regularization(1e-7, 1e-7, 1e-5))
    return Trainer(net, dataset, TrainConfig(**config), COMM, out_dir=tmp_path, progress=False,
                   params=params)


@pytest.mark.parametrize("config", [
    {"method": "serial", "optimizer": "lbfgs", "epochs": 6},
    {"method": "serial", "optimizer": "adam", "lr": 0.01, "batch_size": 128, "epochs": 4},
    {"method": "one-shot", "optimizer": "lbfgs", "epochs": 6, "min_coarse": 2},
    {"method": "one-shot", "optimizer": "adam", "lr": 0.01, "batch_size": 100, "epochs": 4,
     "min_coarse": 2},
    {"method": "one-shot", "optimizer": "lbfgs", "epochs": 6, "min_coarse": 2,
     "backend": "native"},
])
def test_resume_reproduces_the_uninterrupted_run(tmp_path, config) -> None:
    whole = small_peaks_run(tmp_path / "whole", **config).fit()
    half = config["epochs"] // 2
    first = small_peaks_run(tmp_path / "part", **config)
    first.fit(half)
    resumed = small_peaks_run(tmp_path / "part", **config)
    resumed.resume(tmp_path / "part" / "checkpoint.npz")
    again = resumed.fit()
    assert len(again) == len(whole)
    for a, b in zip(whole, again):
        assert b.loss == pytest.approx(a.loss, rel=1e-12, abs=1e-12)
        assert b.val_accuracy == a.val_accuracy


def test_resume_refuses_a_different_run(tmp_path) -> None:
    small_peaks_run(tmp_path, epochs=1).fit()
    other = small_peaks_run(tmp_path, epochs=1, optimizer="adam")
    with pytest.raises(ValueError, match="optimizer='lbfgs'"):
        other.resume(tmp_path / "checkpoint.npz")
    with pytest.raises(OSError, match="cannot read checkpoint"):
        other.resume(tmp_path / "missing.pkl")


def test_training_lowers_the_loss_for_every_method(tmp_path) -> None:
    for method in ("serial", "parallel", "one-shot", "predict-correct"):
        history = small_peaks_run(tmp_path / method, method=method, epochs=8,
                                  min_coarse=2, blocks=2).fit()
        assert history[-1].loss < 0.7 * history[0].loss, method
        if method != "serial":
            assert history[-1].forward_iterations > 0
    assert (tmp_path / "one-shot" / "metrics.jsonl").read_text().count("\n") == 8


def test_trainer_starts_from_given_parameters(tmp_path) -> None:
    first = small_peaks_run(tmp_path / "a", epochs=3)
    first.fit()
    second = small_peaks_run(tmp_path / "b", epochs=3, params=first.params)
    assert all(np.array_equal(second.params[k], first.params[k]) for k in first.params)
    assert second.params["classifier.weight"] is not first.params["classifier.weight"]
    with pytest.raises(ValueError, match="params lacks"):
        small_peaks_run(tmp_path / "c", params={})


def test_checkpoint_holds_every_parameter(tmp_path) -> None:
    trainer = small_peaks_run(tmp_path, epochs=2)
    trainer.fit()
    state = load_checkpoint(tmp_path / "checkpoint.npz", lambda name: True)
    assert set(state["params"]) == set(trainer.net.parameter_shapes())
    assert state["epoch"] == 2 and len(state["history"]) == 2


# ---- data ----

def test_builtin_datasets_are_deterministic_and_sized() -> None:
    a, b = data.peaks(), data.peaks()
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert (len(a.y_train), len(a.y_val), a.classes) == (5000, 200, 5)
    assert set(np.unique(a.y_train)) == set(range(5))
    s = data.spirals(arms=3)
    assert s.classes == 3 and s.input_shape == (2,)


def test_digits_are_images() -> None:
    pytest.importorskip("sklearn")
    d = data.digits()
    assert d.input_shape == (1, 8, 8) and d.classes == 10
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    assert len(d.y_train) + len(d.y_val) == 1797


def test_shapes_are_32x32_images_of_four_drawn_classes() -> None:
    d = data.shapes(400, 100, seed=5)
    assert d.input_shape == (1, 32, 32) and d.classes == 4 and d.name == "shapes32"
    assert (len(d.y_train), len(d.y_val)) == (400, 100)
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    assert set(np.unique(d.y_train)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(d.x_train, data.shapes(400, 100, seed=5).x_train)
    assert not np.array_equal(d.x_train, data.shapes(400, 100, seed=6).x_train)
    # the shape is drawn: without noise, each image is a bright shape on a darker background
    clean = data.shapes(40, 1, noise=0.0, seed=1)
    for img in clean.x_train[:, 0]:
        assert len(np.unique(img)) == 2 and 0.02 < np.mean(img == img.max()) < 0.5
    assert data.BUILTIN["shapes"] is data.shapes
    for bad in ({"n_train": 0}, {"size": 4}, {"size": 2000}, {"noise": -0.1},
                {"noise": float("nan")}, {"n_train": 2.5}):
        with pytest.raises(ValueError):
            data.shapes(**bad)


def test_npz_and_idx_loaders(tmp_path) -> None:
    x, y = np.random.default_rng(0).standard_normal((50, 3)), np.arange(50) % 4
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    d = data.load_npz(tmp_path / "mine.npz", validation_fraction=0.2)
    assert (len(d.y_train), len(d.y_val), d.classes) == (40, 10, 4)
    images = (np.arange(3 * 28 * 28) % 256).astype(np.uint8).reshape(3, 28, 28)
    labels = np.array([7, 1, 0], dtype=np.uint8)

    def write_idx(path, array, code):
        header = bytes([0, 0, code, array.ndim]) + b"".join(
            int(n).to_bytes(4, "big") for n in array.shape)
        with gzip.open(path, "wb") as f:
            f.write(header + array.tobytes())

    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images, 0x08)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels, 0x08)
    m = data.load_mnist_idx(tmp_path)
    assert m.input_shape == (1, 28, 28) and list(m.y_val) == [7, 1, 0]
    np.testing.assert_allclose(m.x_train[1, 0], images[1] / 255.0)


@pytest.mark.parametrize("x,y,match", [
    (np.zeros((4, 2)), np.zeros(3), r"y has shape \(3,\)"),
    (np.zeros(4), np.zeros(4), r"x has shape \(4,\)"),
    (np.zeros((4, 2)), np.array([0, 1, -1, 0]), "negative label -1"),
    (np.full((4, 2), np.nan), np.zeros(4), "NaN"),
    (np.zeros((4, 2)), np.array([0.5, 1, 1, 0]), "integer class labels"),
])
def test_bad_arrays_are_named(x, y, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        data.from_arrays(x, y)


def test_bad_training_configs_are_named() -> None:
    with pytest.raises(ValueError, match="method='two-shot'"):
        TrainConfig(method="two-shot")
    with pytest.raises(ValueError, match="epochs=0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="batch_size=0"):
        TrainConfig(batch_size=0)


# ---- the CLI and ranks ----

def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "layerbraid.cli", *args], capture_output=True,
                          text=True, env=clean_env(), timeout=300, cwd=cwd)


def test_cli_trains_and_writes_its_outputs(tmp_path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('layers = 6\nwidth = 6\nepochs = 3\nmethod = "one-shot"\nmin-coarse = 2\n')
    out = tmp_path / "out"
    proc = run_cli("train", "--config", str(config), "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "validation accuracy" in proc.stdout and "plot:" in proc.stdout
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    for name in ("checkpoint.npz", "network.npz", "curves.png", "mgrit.png"):
        assert (out / name).is_file(), name
    net, params = nn.load(out / "network.npz")
    assert net.depth == 6 and len(params) == len(net.parameter_shapes())


@pytest.mark.parametrize("args,match", [
    (["--method", "sideways"], "argument --method: invalid choice: 'sideways' (choose from "
                               "'serial', 'parallel', 'one-shot', 'predict-correct', "
                               "'iterations')"),
    (["--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar' (choose from 'peaks', "
                             "'spirals', 'digits', 'shapes', 'npz', 'mnist')"),
    (["--dataset", "npz"], "needs --data PATH"),
    (["--width", "1", "--opening", "expand_zero"], "in_features=2 exceeds width=1"),
    (["--layers", "0"], "--layers 0 is not supported"),
])
def test_cli_names_bad_options(args, match: str) -> None:
    proc = run_cli("train", "--epochs", "1", "--no-progress", *args)
    assert proc.returncode == 2
    assert match in proc.stderr


def test_cli_smoothness_keeps_the_reference_weight_per_layer_step() -> None:
    from layerbraid.cli import default_smoothness

    assert default_smoothness(30, 5.0) == 2.5e-4          # the Peaks reference, exactly
    h = 5.0 / 1024
    assert default_smoothness(1024, 5.0) / h ** 2 == pytest.approx(2.5e-4 / (5.0 / 30) ** 2)
    assert default_smoothness(60, 10.0) == 2.5e-4         # same step, same weight


def test_cli_prints_the_smoothness_it_used() -> None:
    proc = run_cli("train", "--epochs", "1", "--layers", "60", "--final-time", "5",
                   "--no-progress", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert "smoothness 6.25e-05" in proc.stdout
    proc = run_cli("train", "--epochs", "1", "--layers", "4", "--smoothness", "0.5",
                   "--no-progress", "--no-plots")
    assert "smoothness 0.5" in proc.stdout


def test_cli_runs_the_companion_methods(tmp_path) -> None:
    small = ["--layers", "8", "--width", "4", "--no-progress", "--no-plots"]
    proc = run_cli("train", "--method", "predict-correct", "--blocks", "2", "--epochs", "2",
                   "--optimizer", "sgd", "--lr", "0.05", *small)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "nested"
    proc = run_cli("train", "--nested", "2", "--nested-epochs", "3", "--epochs", "2",
                   "--out", str(out), *small)
    assert proc.returncode == 0, proc.stderr
    assert "4 layers: 3 epochs" in proc.stdout and "8 layers: 2 epochs" in proc.stdout
    assert (out / "metrics.jsonl").read_text().count("\n") == 5
    out = tmp_path / "iterations"
    proc = run_cli("train", "--method", "iterations", "--optimizer", "sgd", "--lr", "0.04",
                   "--epochs", "16", "--batch-size", "50", "--cfactor", "4", "--max-levels", "2",
                   "--min-coarse", "2", "--init", "random", "--eval-every", "4",
                   "--out", str(out), *small)
    assert proc.returncode == 0, proc.stderr
    assert "MGRIT iterations" in proc.stdout and "ideal speedup" in proc.stdout
    assert json.loads((out / "summary.json").read_text())["converged"]
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 4, 8, 12, 16]
    proc = run_cli("train", "--method", "iterations", *small)
    assert proc.returncode == 2 and "--optimizer sgd with a --lr" in proc.stderr
    proc = run_cli("train", "--nested", "2", "--nested-epochs", "3,4", *small)
    assert proc.returncode == 2 and "needs 1 integers" in proc.stderr


def test_cli_rejects_unknown_config_keys(tmp_path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"layer": 3}))
    proc = run_cli("train", "--config", str(config))
    assert proc.returncode == 2 and "unknown option(s) layer" in proc.stderr


def test_layer_serial_training_is_the_same_on_one_and_two_ranks(run_mpi, python_exe) -> None:
    losses = {}
    for nprocs in (1, 2):
        code, text = run_mpi(nprocs, [python_exe, MPI_SCRIPTS / "train_ranks.py"], timeout=240)
        assert code == 0, text
        losses[nprocs] = json.loads(text.strip().splitlines()[-1])
    assert losses[1]["serial"] == losses[2]["serial"]
    assert len(losses[1]["serial"]) == 5
    # one-shot is rank independent too, as MGRIT is
    assert losses[1]["one-shot"] == losses[2]["one-shot"]
