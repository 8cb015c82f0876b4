"""The CuPy backend: CUDA kernels of the fused layer operations (cpp/kernels/resnet_ops.cu)
and their Python glue (layerbraid.backends.cupy_ops).

a. without CuPy, the module imports, and get_ops("cupy") says how to install it; the kernel
   source is found, and a missing one is a clear error;
b. nvcc compiles every kernel instantiation the backend launches, without warnings under
   -Wall -Wextra (runs wherever nvcc is, GPU or not);
c. on a GPU: every operation equals the NumPy backend, for every activation, float64 and
   float32, with and without the derivative; bad arrays raise before a launch;
d. on a GPU: Propagator(backend="cupy").loss_and_gradient equals backend="numpy" for a dense
   and a convolutional net, serial and layer-parallel.

GPU tests skip unless layerbraid.gpu_available(); the nvcc test skips when nvcc is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerbraid
from layerbraid import nn
from layerbraid.backends import cupy_ops, get_ops
from layerbraid.backends.cupy_ops import COMPILE_OPTIONS, KERNEL_NAMES, kernel_name
from layerbraid.backends.numpy_ops import NumpyOps
from layerbraid.nn.activations import ACTIVATIONS, SMOOTH_RELU_ETA
from layerbraid.propagate import LAYER_PARALLEL, Propagator

REPO = Path(__file__).resolve().parent.parent
KERNEL_SOURCE = REPO / "cpp" / "kernels" / "resnet_ops.cu"

requires_gpu = pytest.mark.skipif(
    not layerbraid.gpu_available(),
    reason="needs CuPy and a CUDA device (layerbraid.gpu_available() is False)")

DTYPES = ("float64", "float32")


# ---- a. the glue, without a GPU ----

def test_module_imports_without_cupy() -> None:
    code = ("import sys; sys.modules['cupy'] = None\n"  # makes `import cupy` fail
            "import layerbraid.backends.cupy_ops")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_get_ops_cupy_without_cupy_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    with pytest.raises(ImportError, match=re.escape('pip install "layerbraid[gpu]"')):
        get_ops("cupy")


def test_kernel_source_is_found() -> None:
    assert cupy_ops.kernel_source() == KERNEL_SOURCE.read_text(encoding="utf-8")


def test_missing_kernel_source_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setattr(cupy_ops, "_kernel_files", lambda: [tmp_path / "resnet_ops.cu"])
    with pytest.raises(FileNotFoundError, match="resnet_ops.cu.*reinstall layerbraid"):
        cupy_ops.kernel_source()


def test_kernel_names_cover_every_activation_and_dtype() -> None:
    expected = {kernel_name(k, t, a) for k in ("activate", "residual_update") for t in DTYPES
                for a in ACTIVATIONS}
    expected |= {kernel_name("scaled_product", t) for t in DTYPES}
    assert set(KERNEL_NAMES) == expected and len(KERNEL_NAMES) == 14
    assert f"-DLAYERBRAID_SMOOTH_RELU_ETA={SMOOTH_RELU_ETA!r}" in COMPILE_OPTIONS


# ---- b. the kernels compile with nvcc ----

def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found is None and os.access("/usr/local/cuda/bin/nvcc", os.X_OK):
        found = "/usr/local/cuda/bin/nvcc"
    return found


def test_kernels_compile_with_nvcc_without_warnings(tmp_path: Path) -> None:
    nvcc = _nvcc()
    if nvcc is None:
        pytest.skip("nvcc is not on PATH nor at /usr/local/cuda/bin/nvcc")
    # Taking each kernel's address instantiates it, as NVRTC does for a name expression, so
    # this compiles exactly the kernels CupyOps asks for.
    addresses = ",\n".join(f"    reinterpret_cast<const void*>(&{name})" for name in KERNEL_NAMES)
    source = tmp_path / "instantiate.cu"
    source.write_text(f'#include "{KERNEL_SOURCE.name}"\n\n'
                      "extern const void* const layerbraid_kernels[];\n"
                      f"const void* const layerbraid_kernels[] = {{\n{addresses}\n}};\n")
    cmd = [nvcc, *COMPILE_OPTIONS, "-I", str(KERNEL_SOURCE.parent),
           "-Xcompiler", "-Wall,-Wextra", "-c", str(source), "-o", str(tmp_path / "k.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{output}"
    assert "warning" not in output.lower(), output


# ---- c. each operation against the NumPy backend ----

def _tolerance(act: str | None, dtype: str) -> dict[str, float]:
    """Bit for bit except tanh, whose last bits differ between the math libraries."""
    if act != "tanh":
        return {"rtol": 0.0, "atol": 0.0}
    return {"rtol": 1e-12, "atol": 1e-12} if dtype == "float64" else {"rtol": 1e-6, "atol": 1e-6}


def _inputs(shape: tuple[int, ...], dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pre-activations spread over every piece of the activations, and a bias."""
    rng = np.random.default_rng(seed)
    z = 0.3 * rng.standard_normal(shape)  # many inside SmoothReLU's blend [-eta, eta]
    bias = 0.1 * rng.standard_normal(shape[-1])
    # The breakpoints themselves, on the first column, where the bias is 0.
    eta = SMOOTH_RELU_ETA
    specials = [0.0, eta, -eta, 3 * eta, -3 * eta, 20.0, -20.0]
    bias[0] = 0.0
    z.reshape(-1, shape[-1])[:len(specials), 0] = specials
    return z.astype(dtype), bias.astype(dtype)


SHAPES = [(7, 5), (3, 4, 5, 2)]  # a dense state (batch, width), a conv state (b, h, w, c)


@pytest.fixture(scope="module")
def gpu() -> tuple[Any, Any]:
    """(cupy, CupyOps())."""
    import cupy

    return cupy, cupy_ops.CupyOps()


@requires_gpu
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_deriv", [True, False], ids=["deriv", "no-deriv"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_activate_equals_numpy(gpu: tuple[Any, Any], act: str, dtype: str, with_deriv: bool,
                               shape: tuple[int, ...]) -> None:
    cp, ops = gpu
    z, bias = _inputs(shape, dtype)
    ref_z, ref_d = z.copy(), np.empty_like(z) if with_deriv else None
    NumpyOps().activate(act, ref_z, bias, ref_d)

    gz, gb = cp.asarray(z), cp.asarray(bias)
    gd = cp.full(shape, np.nan, dtype=dtype) if with_deriv else None
    ops.activate(act, gz, gb, gd)
    np.testing.assert_allclose(gz.get(), ref_z, **_tolerance(act, dtype))
    if with_deriv:
        np.testing.assert_allclose(gd.get(), ref_d, **_tolerance(act, dtype))
    np.testing.assert_array_equal(gb.get(), bias)


@requires_gpu
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_deriv", [True, False], ids=["deriv", "no-deriv"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_residual_update_equals_numpy(gpu: tuple[Any, Any], act: str, dtype: str,
                                      with_deriv: bool, shape: tuple[int, ...]) -> None:
    cp, ops = gpu
    z, bias = _inputs(shape, dtype)
    u = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    h = 0.37
    ref_u, ref_d = u.copy(), np.empty_like(z) if with_deriv else None
    NumpyOps().residual_update(act, z.copy(), bias, ref_u, h, ref_d)

    gz, gb, gu = cp.asarray(z), cp.asarray(bias), cp.asarray(u)
    gd = cp.full(shape, np.nan, dtype=dtype) if with_deriv else None
    ops.residual_update(act, gz, gb, gu, h, gd)
    np.testing.assert_allclose(gu.get(), ref_u, **_tolerance(act, dtype))
    if with_deriv:
        np.testing.assert_allclose(gd.get(), ref_d, **_tolerance(act, dtype))
    np.testing.assert_array_equal(gb.get(), bias)


@requires_gpu
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scaled_product_equals_numpy(gpu: tuple[Any, Any], dtype: str,
                                     shape: tuple[int, ...]) -> None:
    cp, ops = gpu
    rng = np.random.default_rng(2)
    deriv, lam = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    h = 0.37
    ref = np.empty_like(deriv)
    NumpyOps().scaled_product(deriv, lam, h, ref)

    out = cp.full(shape, np.nan, dtype=dtype)
    ops.scaled_product(cp.asarray(deriv), cp.asarray(lam), h, out)
    np.testing.assert_array_equal(out.get(), ref)


@requires_gpu
def test_large_arrays_are_covered_by_the_grid_stride_loop(gpu: tuple[Any, Any]) -> None:
    """More entries than one launch has threads: every entry is still updated."""
    cp, ops = gpu
    n = 2 ** 23 + 3  # more than the 32 blocks of 256 threads per multiprocessor
    z, bias = cp.zeros((n, 1)), cp.ones(1)
    ops.activate("relu", z, bias, None)
    assert int(cp.count_nonzero(z != 1.0)) == 0


@requires_gpu
def test_bad_arrays_raise_before_a_launch(gpu: tuple[Any, Any]) -> None:
    cp, ops = gpu
    z, bias = cp.zeros((4, 3)), cp.zeros(3)
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.activate("tanh", z.astype(cp.float16), bias.astype(cp.float16), None)
    with pytest.raises(TypeError, match="float32 or float64"):
        ints = cp.zeros((4, 3), dtype=cp.int64)
        ops.scaled_product(ints, ints, 1.0, ints)
    with pytest.raises(TypeError, match="one dtype"):
        ops.activate("tanh", z, bias.astype(cp.float32), None)
    with pytest.raises(TypeError, match="C-contiguous"):
        ops.activate("tanh", cp.zeros((3, 4)).T, bias, None)
    with pytest.raises(TypeError, match="cupy.ndarray"):
        ops.activate("tanh", z, np.zeros(3), None)
    with pytest.raises(ValueError, match="bias has shape"):
        ops.activate("tanh", z, cp.zeros(4), None)
    with pytest.raises(ValueError, match="deriv has shape"):
        ops.activate("tanh", z, bias, cp.zeros((3, 4)))
    with pytest.raises(ValueError, match="activation='sigmoid'"):
        ops.activate("sigmoid", z, bias, None)


# ---- d. whole propagations against the NumPy backend ----

def _net(kind: str, act: str) -> nn.ResNet:
    reg = nn.Regularization(tikhonov=1e-2, classifier=2e-2, smoothness=1e-3)
    if kind == "dense":
        return nn.ResNet.dense(3, 8, 4, 8, activation=act, regularization=reg)
    return nn.ResNet.conv(2, (5, 5), 2, 3, 4, activation=act, regularization=reg)


@requires_gpu
@pytest.mark.parametrize("options", [None, LAYER_PARALLEL], ids=["serial", "layer-parallel"])
@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_loss_and_gradient_equal_numpy(kind: str, act: str,
                                       options: dict[str, Any] | None) -> None:
    import cupy as cp

    net = _net(kind, act)
    rng = np.random.default_rng(3)
    params = net.init_params(1, weights="random", scale=1.5)
    for key in params:  # nonzero biases everywhere, so the bias broadcast matters
        if key.endswith("bias"):
            params[key] = 0.3 * rng.standard_normal(params[key].shape)
    x = rng.standard_normal((7, *net.opening.input_shape()))
    labels = rng.integers(0, net.classifier.classes, 7)

    with Propagator(net, options=options) as prop:
        ref = prop.loss_and_gradient(params, x, labels)
    with Propagator(net, backend="cupy", options=options) as prop:
        got = prop.loss_and_gradient({k: cp.asarray(v) for k, v in params.items()}, x, labels)

    assert got.loss == pytest.approx(ref.loss, rel=1e-12, abs=1e-12)
    assert got.gradient.keys() == ref.gradient.keys()
    for key, value in ref.gradient.items():
        np.testing.assert_allclose(cp.asnumpy(got.gradient[key]), value, rtol=1e-12,
                                   atol=1e-12, err_msg=key)
