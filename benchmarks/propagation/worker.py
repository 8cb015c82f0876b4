"""Measurements of benchmarks/propagation, one kind per call; each prints one JSON line.

Started by run.py in a fresh process with OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=1
(set before NumPy is imported, so NumPy's BLAS runs on one thread) and, for ``parallel``, under
the mpich wheel's mpiexec. It can also be run by hand::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/propagation/worker.py \
        serial --depth 256 --dtype float64 --repeats 5
    .venv/bin/python benchmarks/propagation/worker.py mgrit --depth 256 --dtype float64
    $(.venv/bin/python -c 'import layerbraid; print(layerbraid.find_mpiexec())') -n 2 \
        .venv/bin/python benchmarks/propagation/worker.py parallel --depth 256

Kinds:
  serial    layerbraid ``Propagator`` (SERIAL options) ``loss_and_gradient`` against a plain
            PyTorch loop on the same network, parameters and batch; interleaved repeats.
  mgrit     1 rank: the forward and the adjoint solve with multilevel options and a fixed
            number of cycles, timed against the serial solve of the same direction.
  parallel  under mpiexec -n P: layer-parallel loss_and_gradient (to a tolerance, and capped
            at 2 cycles) against the serial one on rank 0 alone (COMM_SELF), in the same run.

The network: dense opening sigma(x W^T + b) from IN_FEATURES inputs to WIDTH, DEPTH residual
layers u <- u + h tanh(u W_n^T + b_n) (h = 1 / DEPTH), affine classifier to CLASSES, mean
softmax cross-entropy; no regularisation; ``init_params(seed=0)`` ("random" weights).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

WIDTH, BATCH, IN_FEATURES, CLASSES = 32, 256, 16, 10
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def build(depth: int, dtype: str, comm: Any = None, backend: str = "numpy",
          options: dict | None = None, xp: Any = None):
    """The network, a Propagator, this rank's parameters and the batch (x, labels)."""
    import numpy as np

    from layerbraid.nn.network import ResNet
    from layerbraid.propagate import Propagator

    net = ResNet.dense(IN_FEATURES, WIDTH, CLASSES, depth, activation="tanh", dtype=dtype)
    prop = Propagator(net, comm, backend=backend, options=options)
    params = prop.init_params(seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, IN_FEATURES)).astype(dtype)
    labels = rng.integers(0, CLASSES, BATCH)
    if xp is not None:
        x, labels = xp.asarray(x), xp.asarray(labels)
    return net, prop, params, x, labels


def _to_numpy(a: Any):
    import numpy as np

    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def rel_grad_error(grads: dict, ref: dict) -> float:
    """max over parameter arrays of max|g - g_ref| / max|g_ref| (each array on its own scale:
    the strict measure, for comparing two exact computations)."""
    import numpy as np

    worst = 0.0
    for k, r in ref.items():
        r = np.asarray(_to_numpy(r), dtype=np.float64)
        g = np.asarray(_to_numpy(grads[k]), dtype=np.float64)
        worst = max(worst, float(np.max(np.abs(g - r)) / max(np.max(np.abs(r)), 1e-300)))
    return worst


def rel_grad_error_l2(grads: dict, ref: dict) -> float:
    """|g - g_ref| / |g_ref| over the whole gradient (all parameters as one vector): how far an
    inexact (few-cycle) gradient is from the exact one."""
    import numpy as np

    num = den = 0.0
    for k, r in ref.items():
        r = np.asarray(_to_numpy(r), dtype=np.float64)
        d = np.asarray(_to_numpy(grads[k]), dtype=np.float64) - r
        num += float(np.vdot(d, d))
        den += float(np.vdot(r, r))
    return (num / den) ** 0.5 if den else 0.0


def thread_settings() -> dict[str, Any]:
    out: dict[str, Any] = {v: os.environ.get(v) for v in THREAD_VARS}
    try:
        from threadpoolctl import threadpool_info

        out["threadpools"] = [{k: i.get(k) for k in ("internal_api", "num_threads", "version")}
                              for i in threadpool_info()]
    except ImportError:
        pass
    return out


# ------------------------------------------------------------------------------------ serial


def serial(args: argparse.Namespace) -> dict[str, Any]:
    """layerbraid SERIAL loss_and_gradient against the PyTorch loop, interleaved repeats."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    gpu = args.device == "cuda"
    xp = None
    if gpu:
        import cupy

        xp = cupy
    net, prop, params, x, labels = build(args.depth, args.dtype,
                                         backend="cupy" if gpu else "numpy", xp=xp)
    device = torch.device("cuda" if gpu else "cpu")
    tdtype = getattr(torch, args.dtype)
    tp = {k: torch.tensor(_to_numpy(v), dtype=tdtype, device=device, requires_grad=True)
          for k, v in params.items()}
    tx = torch.tensor(_to_numpy(x), dtype=tdtype, device=device)
    ty = torch.tensor(_to_numpy(labels), dtype=torch.long, device=device)
    h = net.step
    weights = [tp[f"layers.{n}.weight"] for n in range(args.depth)]
    biases = [tp[f"layers.{n}.bias"] for n in range(args.depth)]

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize()
            xp.cuda.Device().synchronize()

    def torch_step() -> tuple[float, float, float]:
        for p in tp.values():
            p.grad = None
        sync()
        t0 = time.perf_counter()
        u = torch.tanh(F.linear(tx, tp["opening.weight"], tp["opening.bias"]))
        for w, b in zip(weights, biases):
            u = u + h * torch.tanh(F.linear(u, w, b))
        loss = F.cross_entropy(F.linear(u, tp["classifier.weight"], tp["classifier.bias"]), ty)
        sync()
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        return float(loss.item()), t1 - t0, t2 - t1

    def braid_step():
        sync()
        t0 = time.perf_counter()
        ev = prop.loss_and_gradient(params, x, labels)
        sync()
        return ev, time.perf_counter() - t0

    lb: list[dict[str, float]] = []
    pt: list[dict[str, float]] = []
    for r in range(args.repeats + 1):              # round 0 is the warm-up, not recorded
        ev, total = braid_step()
        loss_t, fwd_t, bwd_t = torch_step()
        if r:
            lb.append({"total": total, "forward": ev.forward.wall_time,
                       "adjoint": ev.adjoint.wall_time})
            pt.append({"total": fwd_t + bwd_t, "forward": fwd_t, "backward": bwd_t})
    kernels = {} if gpu else kernel_times(args.dtype)
    ref = {k: v.grad for k, v in tp.items()}
    ref = {k: v.detach().cpu().numpy() for k, v in ref.items()}
    out = {
        "kind": "serial", "device": args.device, "depth": args.depth, "dtype": args.dtype,
        "repeats": args.repeats,
        "layerbraid_s": lb, "torch_s": pt,
        "layerbraid_min_s": min(t["total"] for t in lb),
        "torch_min_s": min(t["total"] for t in pt),
        "layerbraid_forward_min_s": min(t["forward"] for t in lb),
        "layerbraid_adjoint_min_s": min(t["adjoint"] for t in lb),
        "torch_forward_min_s": min(t["forward"] for t in pt),
        "torch_backward_min_s": min(t["backward"] for t in pt),
        "loss_layerbraid": ev.loss, "loss_torch": loss_t,
        "loss_rel_diff": abs(ev.loss - loss_t) / abs(loss_t),
        "grad_rel_diff": rel_grad_error(ev.gradient, ref),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "threads": thread_settings(), "kernels_us": kernels,
    }
    out["ratio"] = out["layerbraid_min_s"] / out["torch_min_s"]
    if gpu:
        out["gpu_name"] = torch.cuda.get_device_name()
        out["cupy"] = xp.__version__
    return out


def kernel_times(dtype: str) -> dict[str, float]:
    """Microseconds of single kernels on one state (fastest of 5 x 200 calls)."""
    import timeit

    import numpy as np
    import torch

    rng = np.random.default_rng(2)
    z = rng.standard_normal((BATCH, WIDTH)).astype(dtype)
    w = rng.standard_normal((WIDTH, WIDTH)).astype(dtype)
    b = rng.standard_normal(WIDTH).astype(dtype)
    out = np.empty_like(z)
    tz, tw, tb = torch.from_numpy(z), torch.from_numpy(w), torch.from_numpy(b)
    calls = {
        "numpy_tanh": lambda: np.tanh(z, out=out),
        "numpy_matmul": lambda: np.matmul(z, w.T, out=out),
        "torch_tanh": lambda: torch.tanh(tz),
        "torch_addmm": lambda: torch.addmm(tb, tz, tw.t()),
    }
    return {k: min(timeit.repeat(f, number=200, repeat=5)) / 200 * 1e6 for k, f in calls.items()}


# ------------------------------------------------------------------------------------- mgrit


def mgrit(args: argparse.Namespace) -> dict[str, Any]:
    """Per-iteration cost of the forward and of the adjoint MGRIT solve, in serial sweeps."""
    from mpi4py import MPI

    comm = MPI.COMM_SELF
    configs = [(cf, nr) for cf in args.cfactors for nr in args.nrelax]
    props = {}
    for cf, nr in configs:
        opts = {"max_levels": args.max_levels, "cfactor": cf, "nrelax": nr, "min_coarse": 2,
                "max_iter": args.iterations, "abs_tol": 0.0, "skip": False,
                "residual_computation": True}
        props[(cf, nr)] = build(args.depth, args.dtype, comm, options=opts)
    net, serial_prop, params, x, labels = build(args.depth, args.dtype, comm)
    exact = serial_prop.loss_and_gradient(params, x, labels)

    serial_t = {"forward": [], "adjoint": []}
    runs: dict[tuple[int, int], dict[str, list]] = {c: {"forward": [], "adjoint": []}
                                                    for c in configs}
    last: dict[tuple[int, int], Any] = {}
    for _ in range(args.repeats):                  # interleaved: serial, then every config
        ev = serial_prop.loss_and_gradient(params, x, labels)
        serial_t["forward"].append(ev.forward.wall_time)
        serial_t["adjoint"].append(ev.adjoint.wall_time)
        for c in configs:
            _, prop, p, xx, yy = props[c]
            ev = prop.loss_and_gradient(p, xx, yy)
            runs[c]["forward"].append(ev.forward.wall_time)
            runs[c]["adjoint"].append(ev.adjoint.wall_time)
            last[c] = ev
    sweep = {d: min(v) for d, v in serial_t.items()}
    rows = []
    for c in configs:
        ev = last[c]
        row: dict[str, Any] = {"cfactor": c[0], "nrelax": c[1], "nlevels": ev.forward.nlevels}
        for d, res in (("forward", ev.forward), ("adjoint", ev.adjoint)):
            hist = [r for r in res.residual_history]
            t = min(runs[c][d])
            row[d] = {
                "iterations": res.iterations,
                "solve_min_s": t,
                "solve_s": runs[c][d],
                "s_per_iteration": t / res.iterations,
                "sweeps_per_iteration": t / res.iterations / sweep[d],
                "residuals": hist,
                "conv_factors": [b / a if a and b is not None and a is not None else None
                                 for a, b in zip(hist, hist[1:])],
            }
        row["loss_rel_error"] = abs(ev.loss - exact.loss) / abs(exact.loss)
        row["grad_rel_error"] = rel_grad_error(ev.gradient, exact.gradient)
        row["grad_rel_error_l2"] = rel_grad_error_l2(ev.gradient, exact.gradient)
        rows.append(row)
    return {"kind": "mgrit", "depth": args.depth, "dtype": args.dtype,
            "iterations": args.iterations, "max_levels": args.max_levels,
            "repeats": args.repeats, "serial_sweep_s": sweep, "serial_s": serial_t,
            "configs": rows, "threads": thread_settings()}


# ---------------------------------------------------------------------------------- parallel


def parallel(args: argparse.Namespace) -> dict[str, Any] | None:
    """Layer-parallel loss_and_gradient on every rank of COMM_WORLD against serial on rank 0."""
    import numpy as np
    from mpi4py import MPI

    from layerbraid.propagate import LAYER_PARALLEL, SERIAL

    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    settings = {
        "serial_split": dict(SERIAL),
        "tolerance": dict(LAYER_PARALLEL),
        "two_cycles": {**LAYER_PARALLEL, "max_iter": 2},
    }
    if rank == 0:
        _, ser, ser_params, x, labels = build(args.depth, args.dtype, MPI.COMM_SELF)
    built = {name: build(args.depth, args.dtype, world, options=o)
             for name, o in settings.items()}
    times: dict[str, list[float]] = {"serial_1rank": [], **{k: [] for k in settings}}
    evals: dict[str, Any] = {}
    exact = None
    for _ in range(args.repeats + 1):               # round 0 is the warm-up
        world.Barrier()
        if rank == 0:
            t0 = time.perf_counter()
            exact = ser.loss_and_gradient(ser_params, x, labels)
            times["serial_1rank"].append(time.perf_counter() - t0)
        world.Barrier()
        for name, (_, prop, p, xx, yy) in built.items():
            world.Barrier()
            t0 = time.perf_counter()
            ev = prop.loss_and_gradient(p, xx, yy)
            elapsed = world.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            times[name].append(elapsed)
            evals[name] = ev
    times = {k: v[1:] for k, v in times.items()}     # drop the warm-up
    grads = {name: world.gather(ev.gradient, root=0) for name, ev in evals.items()}
    if rank != 0:
        return None
    assert exact is not None
    base = min(times["serial_1rank"])
    out: dict[str, Any] = {"kind": "parallel", "ranks": size, "depth": args.depth,
                           "dtype": args.dtype, "repeats": args.repeats,
                           "serial_1rank_min_s": base, "times_s": times, "settings": {}}
    for name, o in settings.items():
        ev = evals[name]
        full: dict[str, Any] = {}
        for part in grads[name]:
            full.update(part)
        out["settings"][name] = {
            "options": o,
            "min_s": min(times[name]),
            "over_serial": min(times[name]) / base,
            "forward_iterations": ev.forward.iterations,
            "adjoint_iterations": ev.adjoint.iterations,
            "forward_residual": ev.forward.residual,
            "adjoint_residual": ev.adjoint.residual,
            "forward_residuals": list(ev.forward.residual_history),
            "adjoint_residuals": list(ev.adjoint.residual_history),
            "nlevels": ev.forward.nlevels,
            "loss_rel_error": abs(ev.loss - exact.loss) / abs(exact.loss),
            "grad_rel_error": rel_grad_error(full, exact.gradient),
            "grad_rel_error_l2": rel_grad_error_l2(full, exact.gradient),
        }
    out["threads"] = thread_settings()
    out["numpy"] = np.__version__
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("serial", "mgrit", "parallel"))
    p.add_argument("--depth", type=int, default=256)
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--iterations", type=int, default=4, help="mgrit: cycles per solve")
    p.add_argument("--max-levels", type=int, default=30, help="mgrit: most levels")
    p.add_argument("--cfactors", type=lambda s: [int(v) for v in s.split(",")],
                   default=[2, 4, 8])
    p.add_argument("--nrelax", type=lambda s: [int(v) for v in s.split(",")], default=[1, 0])
    args = p.parse_args()
    out = {"serial": serial, "mgrit": mgrit, "parallel": parallel}[args.kind](args)
    if out is not None:
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
