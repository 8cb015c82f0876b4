"""The C++ layer kernels (layerbraid::resnet, on OpenBLAS) against the NumPy backend.

One forward step (with caches) and one adjoint step (with parameter gradients) of a dense and
of a conv layer, for every activation, through build/tests/cpp/resnet_kernel_check: the same
inputs go to both, and every output (new state, sigma'(z), new adjoint, weight and bias
gradients) must agree to 1e-12 relative in float64 (to round-off in float32). The program is
built by the plain CMake build (`make examples`); without it the tests skip.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import clean_env
from layerbraid.backends.numpy_ops import NumpyOps
from layerbraid.nn.activations import ACTIVATIONS
from layerbraid.nn.layers import Conv, Dense, Workspace

ACT_CODES = {"tanh": 0, "relu": 1, "smoothrelu": 2}
LAYERS = {
    "dense": (Dense(6), 5),                      # (layer, batch)
    "conv": (Conv(3, 5, 4, kernel_size=3), 2),   # non-square image, 3 channels
    "conv_k5": (Conv(2, 3, 3, kernel_size=5), 2),  # kernel wider than the image
}
DT = 0.37


@pytest.fixture(scope="module")
def kernel_check(build_dir: Path) -> Path:
    path = build_dir / "tests" / "cpp" / "resnet_kernel_check"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(f"C++ kernel check {path} is not built; run `make examples` (or build the "
                    "CMake target resnet_kernel_check) first")
    return path


def numpy_step(layer, batch: int, act: str, u, weight, bias, lam):
    """Forward with caches, then the adjoint with gradients, as propagate.py does."""
    ops, dtype = NumpyOps(), u.dtype
    shape = layer.state_shape(batch)
    work = Workspace(np, shape, dtype, layer)
    params = {"weight": weight, "bias": bias}
    u, lam = u.copy(), lam.copy()
    cache_u, deriv = np.empty(shape, dtype), np.empty(shape, dtype)
    layer.forward(ops, u, params, DT, act, work, cache_u=cache_u, cache_deriv=deriv)
    grads = {"weight": np.empty_like(weight), "bias": np.empty_like(bias)}
    layer.adjoint(ops, lam, params, DT, deriv, work, u_in=cache_u, grads=grads)
    return [u, deriv, lam, grads["weight"], grads["bias"]]


def cpp_step(exe: Path, tmp_path: Path, layer, batch: int, act: str, u, weight, bias, lam):
    if isinstance(layer, Dense):
        dims = [0, ACT_CODES[act], u.itemsize, batch, layer.width, 0, 0, 0]
    else:
        dims = [1, ACT_CODES[act], u.itemsize, batch, layer.channels, layer.height, layer.width,
                layer.kernel_size]
    inp, out = tmp_path / "case.bin", tmp_path / "result.bin"
    with open(inp, "wb") as f:
        f.write(np.asarray(dims, "<i8").tobytes())
        f.write(np.asarray([DT], "<f8").tobytes())
        for a in (u, weight, bias, lam):
            f.write(np.ascontiguousarray(a).tobytes())
    proc = subprocess.run([str(exe), str(inp), str(out)], capture_output=True, text=True,
                          timeout=60, env=clean_env({"OPENBLAS_NUM_THREADS": "1"}))
    assert proc.returncode == 0, f"resnet_kernel_check failed:\n{proc.stdout}{proc.stderr}"
    flat = np.fromfile(out, dtype=u.dtype)
    results, offset = [], 0
    for like in (u, u, lam, weight, bias):
        results.append(flat[offset:offset + like.size].reshape(like.shape))
        offset += like.size
    assert offset == flat.size, f"result has {flat.size} values, expected {offset}"
    return results


def random_case(layer, batch: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    shapes = layer.param_shapes()
    state = layer.state_shape(batch)
    scale = 1.0 / np.sqrt(layer.fan_in())
    u = rng.standard_normal(state)
    weight = rng.standard_normal(shapes["weight"]) * scale
    bias = rng.standard_normal(shapes["bias"]) * 0.1
    lam = rng.standard_normal(state)
    return [a.astype(dtype) for a in (u, weight, bias, lam)]


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("kind", list(LAYERS))
def test_cpp_step_matches_numpy_float64(kernel_check: Path, tmp_path: Path, kind: str,
                                        act: str) -> None:
    layer, batch = LAYERS[kind]
    case = random_case(layer, batch, np.float64, seed=11)
    want = numpy_step(layer, batch, act, *case)
    got = cpp_step(kernel_check, tmp_path, layer, batch, act, *case)
    for name, g, w in zip(("u", "sigma'", "lam", "dW", "db"), got, want):
        err = np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-300)
        assert err <= 1e-12, f"{kind}/{act}: {name} differs from NumPy by {err:.2e} (relative)"


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_cpp_step_matches_numpy_float32(kernel_check: Path, tmp_path: Path, kind: str,
                                        act: str) -> None:
    layer, batch = LAYERS[kind]
    case = random_case(layer, batch, np.float32, seed=12)
    want = numpy_step(layer, batch, act, *case)
    got = cpp_step(kernel_check, tmp_path, layer, batch, act, *case)
    for name, g, w in zip(("u", "sigma'", "lam", "dW", "db"), got, want):
        assert g.dtype == np.float32
        err = np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-30)
        assert err <= 1e-5, f"{kind}/{act}: float32 {name} differs from NumPy by {err:.2e}"


def test_cpp_kernel_check_reports_bad_shapes(kernel_check: Path, tmp_path: Path) -> None:
    """A bad layer size reaches the C++ checks and comes back as a message naming it."""
    inp = tmp_path / "bad.bin"
    with open(inp, "wb") as f:
        f.write(np.asarray([1, 0, 8, 2, 2, 4, 4, 4], "<i8").tobytes())  # conv, kernel 4
        f.write(np.asarray([DT], "<f8").tobytes())
    proc = subprocess.run([str(kernel_check), str(inp), str(tmp_path / "out.bin")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "kernel=4 is even" in proc.stderr
