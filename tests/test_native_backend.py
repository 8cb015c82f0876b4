"""backend="native": the layer solves in C++ (layerbraid._native) against the NumPy backend.

What users rely on: the same loss and gradients as the NumPy backend (to 1e-12, float64) for
every layer kind, activation and solver mode; the same results on 1-4 ranks; the GIL free
during a solve; clear errors for what the native backend does not do.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from conftest import run_propagate_ranks
from layerbraid import nn
from layerbraid.native import blas_description
from layerbraid.propagate import LAYER_PARALLEL, SERIAL, Propagator
from layerbraid.train import TrainConfig, Trainer
from layerbraid.data import peaks
from resnet_cases import batch, conv_net, dense_net, rough_params

MODES = {
    "serial": SERIAL,
    "mgrit": {**LAYER_PARALLEL, "abs_tol": 1e-10, "max_iter": 60},
    # one-shot style: two cycles, F-relaxation on the finest level, FCF below
    "two-cycles": {"max_levels": 3, "cfactor": 4, "min_coarse": 2, "nrelax": {-1: 1, 0: 0},
                   "abs_tol": 0.0, "max_iter": 2},
}


def both(net: nn.ResNet, options: dict, params: dict, x: np.ndarray, labels: np.ndarray,
         **kwargs):
    out = []
    for backend in ("numpy", "native"):
        with Propagator(net, options=options, backend=backend, **kwargs) as prop:
            out.append(prop.loss_and_gradient(params, x, labels))
    return out


def assert_close(reference, native, rtol: float) -> None:
    assert native.loss == pytest.approx(reference.loss, rel=rtol, abs=0)
    assert native.accuracy == reference.accuracy
    assert sorted(native.gradient) == sorted(reference.gradient)
    for key, value in reference.gradient.items():
        scale = max(float(np.max(np.abs(value))), 1e-300)
        err = float(np.max(np.abs(native.gradient[key] - value))) / scale
        assert err <= rtol, f"{key}: relative difference {err:.2e}"


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("activation", ["tanh", "relu", "smoothrelu"])
def test_dense_equals_numpy_backend(mode: str, activation: str) -> None:
    net = dense_net(activation, depth=24, width=6, reg="all")
    x, labels = batch(net, size=11)
    reference, native = both(net, MODES[mode], rough_params(net), x, labels)
    assert_close(reference, native, 1e-12)
    for solve in ("forward", "adjoint"):
        ref, nat = getattr(reference, solve), getattr(native, solve)
        assert (nat.iterations, nat.nlevels, nat.converged) == \
            (ref.iterations, ref.nlevels, ref.converged)
        assert len(nat.residual_history) == len(ref.residual_history)
        for r, n in zip(ref.residual_history, nat.residual_history):
            assert (r is None) == (n is None)
            if r is not None:
                assert n == pytest.approx(r, rel=1e-9, abs=1e-13)


@pytest.mark.parametrize("mode", ["serial", "two-cycles"])
def test_conv_equals_numpy_backend(mode: str) -> None:
    net = conv_net("smoothrelu", depth=12, reg="all")
    x, labels = batch(net, size=5)
    reference, native = both(net, MODES[mode], rough_params(net), x, labels)
    assert_close(reference, native, 1e-12)


@pytest.mark.parametrize("relax", [0, 1])
@pytest.mark.parametrize("spatial", [1, 2])
def test_spatial_coarsening_converges_to_the_serial_gradient(spatial: int, relax: int) -> None:
    """Coarse levels on halved images (the C++ layer solves): solved to tolerance, the same
    loss and gradient as exact backpropagation, in about as many iterations as without."""
    net = nn.ResNet.conv(2, (8, 4), 3, 3, 32, activation="tanh", final_time=1.5)
    x, labels = batch(net, size=3)
    params = rough_params(net)
    options = {"max_levels": 4, "cfactor": 2, "min_coarse": 2, "nrelax": relax,
               "abs_tol": 1e-11, "max_iter": 40}
    with Propagator(net, options=SERIAL, backend="native") as prop:
        serial = prop.loss_and_gradient(params, x, labels)
    with Propagator(net, options=options, backend="native") as prop:
        plain = prop.loss_and_gradient(params, x, labels)
    with Propagator(net, options=options, backend="native", spatial_coarsen=spatial) as prop:
        coarsened = prop.loss_and_gradient(params, x, labels)
    assert_close(serial, coarsened, 1e-8)
    assert coarsened.forward.converged and coarsened.adjoint.converged
    # far fewer than the 16 iterations that would make any MGRIT iteration exact here
    assert coarsened.forward.iterations <= plain.forward.iterations + 2 < 16


def test_spatial_coarsening_needs_native_conv_layers_that_halve() -> None:
    conv = nn.ResNet.conv(2, (6, 4), 3, 3, 8)
    with pytest.raises(ValueError, match="use backend='native'"):
        Propagator(conv, options=LAYER_PARALLEL, backend="numpy", spatial_coarsen=1)
    with pytest.raises(ValueError, match="needs conv layers"):
        Propagator(dense_net("tanh", depth=8, width=4), backend="native", spatial_coarsen=1)
    with pytest.raises(ValueError, match="divisible by 2\\^2"):
        Propagator(conv, backend="native", spatial_coarsen=2)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="spatial_coarsen="):
            Propagator(conv, backend="native", spatial_coarsen=bad)
    with pytest.raises(ValueError, match="spatial_coarsen"):
        TrainConfig(spatial_coarsen=-1)


def test_float32_equals_numpy_backend_to_single_precision() -> None:
    net = nn.ResNet.dense(3, 6, 4, 16, final_time=2.0, dtype="float32")
    params = {k: v.astype(np.float32) for k, v in rough_params(net).items()}
    x, labels = batch(net, size=9)
    reference, native = both(net, MODES["serial"], params, x, labels)
    assert native.gradient["layers.3.weight"].dtype == np.float32
    assert_close(reference, native, 1e-5)


def test_warm_started_solves_follow_the_numpy_backend_over_steps() -> None:
    """One-shot training's solver use: warm starts carried over changing weights."""
    net = dense_net("tanh", depth=32, width=5, reg="all")
    x, labels = batch(net, size=8)
    props = [Propagator(net, options=MODES["two-cycles"], backend=b, warm_start=True)
             for b in ("numpy", "native")]
    params = rough_params(net)
    for _ in range(4):
        reference, native = (p.loss_and_gradient(params, x, labels) for p in props)
        assert_close(reference, native, 1e-12)
        params = {k: v - 0.1 * reference.gradient[k] for k, v in params.items()}
    for p in props:
        p.close()


def test_predict_and_a_changed_batch_size() -> None:
    net = dense_net("relu", depth=10, width=4)
    params = rough_params(net)
    numpy_prop, native_prop = Propagator(net), Propagator(net, backend="native")
    for size in (7, 3, 7):
        x, labels = batch(net, size=size, seed=size)
        np.testing.assert_allclose(native_prop.predict(params, x), numpy_prop.predict(params, x),
                                   rtol=1e-12, atol=1e-14)
        assert_close(numpy_prop.loss_and_gradient(params, x, labels),
                     native_prop.loss_and_gradient(params, x, labels), 1e-12)


def test_training_steps_equal_the_numpy_backend() -> None:
    data = peaks(400, 100, seed=3)
    net = nn.ResNet.dense(2, 6, 5, 12, final_time=5.0, activation="tanh")
    losses = {}
    for backend in ("numpy", "native"):
        config = TrainConfig(method="one-shot", optimizer="adam", lr=0.01, epochs=3,
                             batch_size=100, min_coarse=2, backend=backend)
        trainer = Trainer(net, data, config, progress=False)
        losses[backend] = [r.loss for r in trainer.fit()]
    np.testing.assert_allclose(losses["native"], losses["numpy"], rtol=1e-11)


def test_the_gil_is_free_during_a_solve() -> None:
    """A Python thread keeps running while the C++ solves do: held, the GIL would stop it for
    a whole solve."""
    net = nn.ResNet.dense(2, 32, 5, 512, final_time=5.0)
    x, labels = batch(net, size=400)
    prop = Propagator(net, backend="native")
    params = net.init_params(0)
    prop.loss_and_gradient(params, x, labels)   # build the solver outside the measurement
    longest_pause, stop = [0.0], threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            now = time.perf_counter()
            longest_pause[0] = max(longest_pause[0], now - last)
            last = now

    thread = threading.Thread(target=tick)
    thread.start()
    ev = prop.loss_and_gradient(params, x, labels)
    stop.set()
    thread.join()
    longest_solve = max(ev.forward.wall_time, ev.adjoint.wall_time)
    assert longest_solve > 0.02, "the solves are too short to tell"
    assert longest_pause[0] < 0.5 * longest_solve, (longest_pause[0], longest_solve)


def test_blas_runs_one_thread_per_rank_by_default() -> None:
    assert "thread" in blas_description()


@pytest.mark.parametrize("options, message", [
    ({"rel_tol": 1e-8, "max_levels": 2}, "'rel_tol'"),
    ({"storage": 0}, "'storage'"),
    ({"cfactor": {0: 2, 1: 4}, "max_levels": 3}, "one cfactor"),
    ({"nrelax": {2: 0}, "max_levels": 3}, "{-1: coarse levels, 0: finest level}"),
])
def test_unsupported_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match="backend='native'") as info:
        Propagator(dense_net(), options=options, backend="native")
    assert message in str(info.value)


@pytest.mark.parametrize("mode", ["serial", "two-cycles"])
def test_per_point_states_equal_the_numpy_backend(mode: str) -> None:
    net = dense_net("smoothrelu", depth=16, width=5, reg="all")
    params = rough_params(net)
    x, labels = batch(net, size=6)
    states = {}
    for backend in ("numpy", "native"):
        prop = Propagator(net, options=MODES[mode], backend=backend)
        states[backend] = (prop.forward_states(params, x),
                           prop.adjoint_states(params, x, labels))
        # recording is switched off again: the next evaluation still works
        assert np.isfinite(prop.loss_and_gradient(params, x, labels).loss)
    for reference, native in zip(states["numpy"], states["native"]):
        assert sorted(native) == sorted(reference) == list(range(net.depth + 1))
        for p, u in reference.items():
            np.testing.assert_allclose(native[p], u, rtol=1e-12, atol=1e-14, err_msg=f"point {p}")


def test_predict_correct_is_refused_clearly() -> None:
    from layerbraid.methods import PredictCorrect

    with pytest.raises(ValueError, match="backend='native' is not supported by PredictCorrect"):
        PredictCorrect(dense_net(depth=8), blocks=2, backend="native")


def test_bad_inputs_fail_as_with_numpy() -> None:
    net = dense_net(depth=6)
    prop = Propagator(net, backend="native")
    x, labels = batch(net)
    with pytest.raises(ValueError, match="x has shape"):
        prop.loss(net.init_params(0), x[:, :2], labels)
    with pytest.raises(KeyError, match="params lacks layers.2.weight"):
        params = net.init_params(0)
        del params["layers.2.weight"]
        prop.loss(params, x, labels)


@pytest.fixture(scope="module")
def native_one_rank(run_mpi, python_exe, tmp_path_factory) -> dict[str, np.ndarray]:
    return run_propagate_ranks(run_mpi, python_exe, 1, tmp_path_factory.mktemp("ranks") / "np1.npz",
                     "native")


def test_native_one_rank_equals_numpy_one_rank(run_mpi, python_exe, native_one_rank,
                                               tmp_path) -> None:
    reference = run_propagate_ranks(run_mpi, python_exe, 1, tmp_path / "numpy.npz", "numpy")
    assert sorted(reference) == sorted(native_one_rank)
    for key, value in reference.items():
        np.testing.assert_allclose(native_one_rank[key], value, rtol=1e-9, atol=1e-13,
                                   err_msg=key)


@pytest.mark.parametrize("nprocs", [2, 3, 4])
def test_native_results_do_not_depend_on_the_number_of_ranks(run_mpi, python_exe,
                                                             native_one_rank, nprocs: int,
                                                             tmp_path) -> None:
    results = run_propagate_ranks(run_mpi, python_exe, nprocs, tmp_path / "out.npz", "native")
    assert sorted(results) == sorted(native_one_rank)
    for key, value in native_one_rank.items():
        np.testing.assert_array_equal(results[key], value, err_msg=key)
