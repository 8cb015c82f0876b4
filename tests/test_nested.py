"""Nested initialisation (layerbraid.methods.nested): interpolation of weights in time, the
interpolated network's function, nested training against training from scratch, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import MPI_SCRIPTS
from layerbraid import Propagator, data, nn
from layerbraid.methods.nested import (coarse_network, interpolate_distributed,
                                       interpolate_params, nested_depths, train_nested)
from layerbraid.train import TrainConfig, Trainer
from mpi4py import MPI

COMM = MPI.COMM_SELF
PARTS = ("weight", "bias")


def dense(depth: int, **kwargs) -> nn.ResNet:
    return nn.ResNet.dense(2, 4, 3, depth, **kwargs)


def layer_error(a: dict, b: dict, layers) -> float:
    return max(float(np.abs(a[nn.layer_key(n, p)] - b[nn.layer_key(n, p)]).max())
               for n in layers for p in PARTS)


# ---- interpolation of the weights ----

@pytest.mark.parametrize("kind,order", [("linear", 2), ("constant", 1)])
def test_interpolating_smooth_weights_converges_with_the_interpolation_order(kind: str,
                                                                              order: int) -> None:
    """'smooth' weights sample one theta(t) = A cos(pi t/T) + B sin(pi t/T) at any depth: the
    interpolated coarse samples approach the fine samples like H^order over the coarse
    layers' time span (after it, linear interpolation holds the last coarse layer)."""
    errors = []
    for coarse_depth in (8, 16, 32):
        coarse, fine = dense(coarse_depth), dense(4 * coarse_depth)
        got = interpolate_params(coarse.init_params(3, weights="smooth"), coarse, fine, kind)
        want = fine.init_params(3, weights="smooth")
        inside = [n for n in range(fine.depth) if n * fine.step <= (coarse_depth - 1) * coarse.step]
        errors.append(layer_error(got, want, inside))
    ratios = [errors[i] / errors[i + 1] for i in range(len(errors) - 1)]
    assert all(2 ** order - 0.3 < r < 2 ** order + 0.3 for r in ratios), (errors, ratios)


def test_linear_interpolation_takes_coarse_layers_at_their_times_and_holds_the_last() -> None:
    coarse, fine = dense(5), dense(15)
    params = coarse.init_params(0)
    got = interpolate_params(params, coarse, fine, "linear")
    for m in range(coarse.depth):
        for p in PARTS:
            np.testing.assert_array_equal(got[nn.layer_key(3 * m, p)], params[nn.layer_key(m, p)])
    for n in (13, 14):  # after the last coarse time 4 H: held constant
        for p in PARTS:
            np.testing.assert_array_equal(got[nn.layer_key(n, p)], params[nn.layer_key(4, p)])
    # in between: the weighted mean of the two neighbours
    np.testing.assert_allclose(got["layers.4.weight"], (2 * params["layers.1.weight"]
                                                        + params["layers.2.weight"]) / 3,
                               rtol=1e-14)


@pytest.mark.parametrize("fine_depth", [12, 16, 24])
def test_constant_interpolation_is_exact_for_constant_weights(fine_depth: int) -> None:
    coarse, fine = dense(8), dense(fine_depth)
    params = coarse.init_params(1)
    for n in range(1, coarse.depth):
        for p in PARTS:
            params[nn.layer_key(n, p)] = params[nn.layer_key(0, p)].copy()
    for kind in ("constant", "linear"):
        got = interpolate_params(params, coarse, fine, kind)
        assert set(got) == set(fine.parameter_shapes())
        for n in range(fine.depth):
            for p in PARTS:
                if kind == "constant":
                    np.testing.assert_array_equal(got[nn.layer_key(n, p)], params[f"layers.0.{p}"])
                else:   # (1 - w) a + w a: a up to rounding
                    np.testing.assert_allclose(got[nn.layer_key(n, p)], params[f"layers.0.{p}"],
                                               rtol=1e-15, atol=1e-17)


def test_constant_interpolation_repeats_each_coarse_layer_and_copies_the_ends() -> None:
    coarse, fine = dense(6), dense(9)   # not a multiple: layer n takes floor(6 n / 9)
    params = coarse.init_params(2)
    got = interpolate_params(params, coarse, fine)
    for n in range(fine.depth):
        np.testing.assert_array_equal(got[nn.layer_key(n, "weight")],
                                      params[nn.layer_key(6 * n // 9, "weight")])
    for name in ("opening.weight", "opening.bias", "classifier.weight", "classifier.bias"):
        np.testing.assert_array_equal(got[name], params[name])
        assert not np.shares_memory(got[name], params[name])
    assert not np.shares_memory(got["layers.0.weight"], params["layers.0.weight"])
    single = dense(6, dtype="float32"), dense(9, dtype="float32")
    got = interpolate_params(single[0].init_params(2), *single, "linear")
    assert {v.dtype for v in got.values()} == {np.dtype(np.float32)}


def test_interpolating_parts_needs_only_the_coarse_layers_they_use() -> None:
    coarse, fine = dense(4), dense(16)
    full = coarse.init_params(0)
    part = {k: v for k, v in full.items() if k.startswith("layers.2.") or k.startswith("layers.3.")}
    got = interpolate_params(part, coarse, fine, "linear", layers=range(8, 16), opening=False,
                             classifier=False)
    want = interpolate_params(full, coarse, fine, "linear")
    assert set(got) == set(fine.parameter_shapes(range(8, 16), False, False))
    assert layer_error(got, want, range(8, 16)) == 0.0
    assert interpolate_distributed(full, coarse, fine, "linear", COMM).keys() == want.keys()


@pytest.mark.parametrize("kind", ["constant", "linear"])
def test_the_interpolated_network_computes_nearly_the_coarse_networks_function(kind) -> None:
    """What nested training relies on: doubling the layers of a network with interpolated
    weights changes its output by O(h) (forward Euler with half the step)."""
    points = data.peaks(100, 10)
    x, labels = points.x_train, points.y_train % 3
    changes = []
    for depth in (16, 32, 64):
        coarse, fine = dense(depth, final_time=2.0), dense(2 * depth, final_time=2.0)
        params = coarse.init_params(1, weights="smooth", scale=2.0)
        fine_params = interpolate_params(params, coarse, fine, kind)
        before = Propagator(coarse, COMM).predict(params, x)
        after = Propagator(fine, COMM).predict(fine_params, x)
        changes.append(np.abs(after - before).max() / np.abs(before).max())
    ratios = [changes[i] / changes[i + 1] for i in range(len(changes) - 1)]
    assert all(1.6 < r < 2.4 for r in ratios), (changes, ratios)
    assert changes[-1] < 0.03
    loss_change = (Propagator(fine, COMM).loss(fine_params, x, labels).data_loss
                   - Propagator(coarse, COMM).loss(params, x, labels).data_loss)
    assert abs(loss_change) < 1e-3


# ---- nested training ----

def test_nested_training_beats_training_from_scratch_at_equal_cost() -> None:
    """Peaks, 16 layers, T = 2: nested training over 4, 8, 16 layers (40, 20, 20 epochs: as
    many layer-epochs as 40 epochs at 16 layers) against 40 epochs from scratch. Over seeds
    0-19 nested training ended with 0.41-0.92 times the scratch run's loss (0.27-0.78 times
    the loss of 20 scratch epochs) and 3.4-14 points more training accuracy."""
    dataset = data.peaks(500, 200, seed=0)
    net = nn.ResNet.dense(2, 8, 5, 16, activation="smoothrelu", final_time=2.0,
                          regularization=nn.Regularization(1e-7, 1e-7, 1e-5))
    config = TrainConfig(epochs=40, init="zero")
    scratch = Trainer(net, dataset, config, COMM, progress=False).fit()
    result = train_nested(net, dataset, config, COMM, levels=3, epochs=(40, 20, 20))

    assert [level.net.depth for level in result.levels] == [4, 8, 16]
    assert result.trainer.net is net and set(result.params) == set(net.parameter_shapes())
    nested = result.history
    assert len(nested) == 80 and [r.epoch for r in result.levels[1].history] == list(range(1, 21))
    final = nested[-1]
    assert final.loss < 0.95 * scratch[-1].loss
    assert final.loss < 0.85 * scratch[19].loss          # the same 20 epochs of 16 layers
    assert final.train_accuracy > scratch[-1].train_accuracy
    assert result.trainer.evaluate(dataset.x_train, dataset.y_train)[1] > \
        scratch[-1].train_accuracy
    # each fine level starts near where the coarser one ended, far below a fresh start
    for coarser, finer in zip(result.levels, result.levels[1:]):
        assert finer.history[0].loss < 0.6 * result.levels[0].history[0].loss
        assert finer.history[0].loss < 2 * coarser.history[-1].loss

    # elapsed is cumulative over the levels, interpolations included
    elapsed = [r.elapsed for r in nested]
    assert all(b > a for a, b in zip(elapsed, elapsed[1:]))
    clock = 0.0
    for level in result.levels:
        clock += level.interpolation_time
        for record in level.history:
            clock += record.time
            assert record.elapsed == pytest.approx(clock, rel=1e-12)
    assert result.elapsed == pytest.approx(clock, rel=1e-12)
    assert result.levels[0].interpolation_time == 0.0 < result.levels[1].interpolation_time


def test_one_level_is_plain_training() -> None:
    dataset = data.peaks(200, 50)
    net = nn.ResNet.dense(2, 6, 5, 8, activation="smoothrelu")
    config = TrainConfig(epochs=4, init="random", seed=3)
    plain = Trainer(net, dataset, config, COMM, progress=False).fit()
    nested = train_nested(net, dataset, config, COMM, levels=1).history
    assert [r.loss for r in nested] == [r.loss for r in plain]


def test_nested_depths_and_coarse_networks() -> None:
    assert nested_depths(64, 3) == [16, 32, 64]
    assert nested_depths(64, 2, factor=4) == [16, 64]
    assert nested_depths(7, 1) == [7]
    net = nn.ResNet.dense(2, 4, 3, 64, final_time=3.0,
                          regularization=nn.Regularization(smoothness=1e-3))
    coarse = coarse_network(net, 16)
    assert coarse.depth == 16 and coarse.step == pytest.approx(4 * net.step)
    assert {**coarse.config(), "depth": 64} == net.config()


# ---- errors ----

class _Ranks:
    """A stand-in communicator of ``size`` ranks (only its size is asked for)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def Get_size(self) -> int:
        return self.size


def test_incompatible_networks_and_bad_arguments_are_refused() -> None:
    coarse = dense(4)
    params = coarse.init_params(0)
    for other, what in ((nn.ResNet.dense(2, 5, 3, 8), "layer"),
                        (dense(8, activation="relu"), "activation"),
                        (dense(8, final_time=2.0), "final_time"),
                        (nn.ResNet.dense(2, 4, 4, 8), "classifier"),
                        (dense(8, opening="expand_zero"), "opening"),
                        (dense(8, dtype="float32"), "dtype")):
        with pytest.raises(ValueError, match=f"differ in {what}"):
            interpolate_params(params, coarse, other)
    with pytest.raises(ValueError, match="fewer than the coarse network's 4"):
        interpolate_params(params, coarse, dense(2))
    with pytest.raises(ValueError, match="kind='cubic' is not supported; use one of "
                                         "'constant', 'linear'"):
        interpolate_params(params, coarse, dense(8), "cubic")
    with pytest.raises(ValueError, match=r"lacks layers.3.weight, layers.3.bias"):
        interpolate_params({k: v for k, v in params.items() if not k.startswith("layers.3")},
                           coarse, dense(8))
    with pytest.raises(ValueError, match=r"params\['layers.1.bias'\] has shape \(3,\)"):
        interpolate_params({**params, "layers.1.bias": np.zeros(3)}, coarse, dense(8))
    with pytest.raises(ValueError, match=r"layers \[8\] do not exist"):
        interpolate_params(params, coarse, dense(8), layers=[7, 8])
    with pytest.raises(ValueError, match="3 ranks cannot share a network of 1 layers"):
        interpolate_distributed(dense(1).init_params(0), dense(1), dense(2), comm=_Ranks(3))


def test_nested_training_refuses_levels_that_do_not_fit() -> None:
    dataset = data.peaks(50, 10)
    net = nn.ResNet.dense(2, 4, 5, 12)
    config = TrainConfig(epochs=1)
    with pytest.raises(ValueError, match=r"divisible by 2\^3 = 8; the network has 12 layers"):
        train_nested(net, dataset, config, COMM, levels=4)
    with pytest.raises(ValueError, match="levels=0 must be an int >= 1"):
        train_nested(net, dataset, config, COMM, levels=0)
    with pytest.raises(ValueError, match="factor=1 must be an int >= 2"):
        train_nested(net, dataset, config, COMM, factor=1)
    with pytest.raises(ValueError, match=r"epochs=\[5\] must be 2 ints >= 1, one per level"):
        train_nested(net, dataset, config, COMM, epochs=[5])
    with pytest.raises(ValueError, match="kind='spline' is not supported"):
        train_nested(net, dataset, config, COMM, kind="spline")
    with pytest.raises(ValueError, match=r"the coarsest level has 3 layers \(4 points\), too "
                                         "few for 5 ranks"):
        train_nested(net, dataset, config, _Ranks(5), levels=3)


# ---- ranks ----

def test_nested_training_is_the_same_on_one_and_two_ranks(run_mpi, python_exe) -> None:
    results = {}
    for nprocs in (1, 2):
        code, text = run_mpi(nprocs, [python_exe, MPI_SCRIPTS / "nested_ranks.py"], timeout=240)
        assert code == 0, text
        results[nprocs] = json.loads(text.strip().splitlines()[-1])
    for nprocs, result in results.items():
        assert result["interpolation_error"] == 0.0, nprocs
    for method in ("serial", "one-shot"):
        assert len(results[1][method]) == 6
        assert results[1][method] == results[2][method], method
