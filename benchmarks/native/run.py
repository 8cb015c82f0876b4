"""backend="native" (layer solves in C++) against backend="numpy" (NumPy callbacks): time per
training step and per MGRIT iteration, and the cost of an MGRIT iteration in serial sweeps.

Reproduce (from the repository root; ~5 min on an idle 2-core machine)::

    .venv/bin/python benchmarks/native/run.py            # writes benchmarks/results/native.json
                                                         # and the "native" BENCHMARKS.md section
    .venv/bin/python benchmarks/native/run.py --quick    # N = 256 only, fewer repeats; prints
    .venv/bin/python benchmarks/native/run.py --markdown-only

One process, one BLAS thread (OPENBLAS/OMP/MKL_NUM_THREADS=1, set before NumPy loads): the
per-rank work the backends do. The network: dense ResNet of width W (8, 16, 32, 64), N
residual tanh layers (256, 1024), T = 5, dense opening from 2 inputs, classifier to 5 classes,
the smoothness regulariser on, batch 256 (``--batch``). The two backends run the same
parameters and batch, interleaved; every time is the fastest of the repeats.

Parts:

1. ``step``: one training step's evaluation, ``Propagator.loss_and_gradient``: layer-serial
   (SERIAL) and one-shot (2 MGRIT cycles per solve, cfactor 4, FCF, warm-started as the
   trainer runs it). Ratio numpy / native; target >= 3 at width <= 32.
2. ``batch``: the serial step of part 1 at N = 256 for widths 8 and 32 and batches 32, 256 and
   2048: how the ratio depends on the work per layer step.
3. ``mgrit``: one MGRIT iteration, forward and adjoint solves (max_levels 30, min_coarse 2, skip
   off, exactly 4 cycles): per iteration, native time / native serial sweep of the same
   direction (target <= 3, which the V-cycle's step count alone rules out for some settings:
   the *model* column), for cfactor 4 and 8 with F and FCF relaxation; and numpy / native per
   iteration for cfactor 4 FCF.
"""

from __future__ import annotations

import os

# One BLAS thread, before NumPy (or layerbraid) loads: the per-rank work is compared.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "python_driver"))

from _common import (RESULTS, THREAD_ENV, machine_info, table, write_json)  # noqa: E402
from _common import write_section as _write_marked  # noqa: E402

from layerbraid import Propagator, nn  # noqa: E402
from layerbraid.native import blas_description  # noqa: E402

HEADING = "## Native backend (layer solves in C++) against NumPy callbacks"
TARGET_SPEEDUP = 3.0   # numpy / native per training step, width <= 32
TARGET_SWEEPS = 3.0    # native MGRIT iteration / native serial sweep
ONE_SHOT = {"max_levels": 30, "cfactor": 4, "min_coarse": 2, "nrelax": 1, "abs_tol": 0.0,
            "max_iter": 2}
CYCLES = 4
MGRIT_SETTINGS = [(4, 0), (4, 1), (8, 0), (8, 1)]   # (cfactor, nrelax)
RELAX = {0: "F", 1: "FCF"}


def network(depth: int, width: int) -> nn.ResNet:
    return nn.ResNet.dense(2, width, 5, depth, final_time=5.0, activation="tanh",
                           regularization=nn.Regularization(1e-7, 1e-7, 1e-5))


def batch(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(-3, 3, (size, 2)), rng.integers(0, 5, size)


def fastest(props: dict[str, Propagator], params: dict, x: np.ndarray, y: np.ndarray,
            repeats: int) -> dict[str, dict[str, float]]:
    """Interleaved evaluations (one warm-up each); per backend the fastest total and the
    forward and adjoint solve times of that evaluation."""
    best: dict[str, dict[str, float]] = {}
    for name, prop in props.items():
        prop.loss_and_gradient(params, x, y)
    for _ in range(repeats):
        for name, prop in props.items():
            start = time.perf_counter()
            ev = prop.loss_and_gradient(params, x, y)
            total = time.perf_counter() - start
            if name not in best or total < best[name]["total"]:
                best[name] = {"total": total, "forward": ev.forward.wall_time,
                              "adjoint": ev.adjoint.wall_time, "loss": ev.loss,
                              "iterations": ev.forward.iterations}
    return best


def repeats_for(seconds: float, budget: float = 6.0, most: int = 7) -> int:
    return max(1, min(most, int(budget / max(seconds, 1e-3))))


def gradient_difference(a: Propagator, b: Propagator, params: dict, x: np.ndarray,
                        y: np.ndarray) -> float:
    ga, gb = a.loss_and_gradient(params, x, y).gradient, b.loss_and_gradient(params, x, y).gradient
    return max(float(np.max(np.abs(ga[k] - gb[k])) / max(np.max(np.abs(ga[k])), 1e-300))
               for k in ga)


def step_part(depths: list[int], widths: list[int], size: int, quick: bool) -> list[dict]:
    rows = []
    x, y = batch(size)
    for depth in depths:
        for width in widths:
            net = network(depth, width)
            params = net.init_params(0)
            for mode, options, warm in (("serial", {"max_levels": 1}, False),
                                        ("one-shot", ONE_SHOT, True)):
                props = {b: Propagator(net, backend=b, options=options, warm_start=warm)
                         for b in ("numpy", "native")}
                probe = fastest(props, params, x, y, 1)
                reps = 2 if quick else repeats_for(probe["numpy"]["total"])
                best = fastest(props, params, x, y, reps)
                diff = gradient_difference(*(Propagator(net, backend=b, options=options)
                                             for b in ("numpy", "native")), params, x, y)
                row = {"depth": depth, "width": width, "batch": size, "mode": mode,
                       "repeats": reps, "numpy": best["numpy"], "native": best["native"],
                       "speedup": best["numpy"]["total"] / best["native"]["total"],
                       "gradient_rel_diff": diff}
                rows.append(row)
                print(f"step N={depth} W={width} {mode}: numpy {best['numpy']['total']:.4f} s, "
                      f"native {best['native']['total']:.4f} s, x{row['speedup']:.2f}, "
                      f"grad diff {diff:.1e}", flush=True)
                for p in props.values():
                    p.close()
    return rows


def _engine_benchmark() -> Any:
    """benchmarks/engine/run.py, for its V-cycle step-count model (also used by
    benchmarks/propagation)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_engine_bench",
                                                  REPO / "benchmarks" / "engine" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batch_part(widths: list[int], sizes: list[int], quick: bool) -> list[dict]:
    rows = []
    for width in widths:
        net = network(256, width)
        params = net.init_params(0)
        for size in sizes:
            x, y = batch(size)
            props = {b: Propagator(net, backend=b) for b in ("numpy", "native")}
            probe = fastest(props, params, x, y, 1)
            best = fastest(props, params, x, y, 2 if quick else repeats_for(probe["numpy"]["total"]))
            row = {"depth": 256, "width": width, "batch": size, "numpy": best["numpy"],
                   "native": best["native"],
                   "speedup": best["numpy"]["total"] / best["native"]["total"]}
            rows.append(row)
            print(f"batch W={width} B={size}: numpy {best['numpy']['total']:.4f} s, native "
                  f"{best['native']['total']:.4f} s, x{row['speedup']:.2f}", flush=True)
    return rows


def model_step_calls(depth: int, cfactor: int, nrelax: int) -> float:
    """Step calls of one V-cycle over N (the engine benchmark's count, coarse steps at full
    weight), max_levels 30."""
    return float(_engine_benchmark().model_sweeps(depth, 30, cfactor, nrelax)["total"])


def mgrit_part(depths: list[int], widths: list[int], size: int, quick: bool) -> list[dict]:
    rows = []
    x, y = batch(size)
    for depth in depths:
        for width in widths:
            net = network(depth, width)
            params = net.init_params(0)
            serial = fastest({"native": Propagator(net, backend="native")}, params, x, y,
                             3 if quick else 7)["native"]
            for cfactor, nrelax in MGRIT_SETTINGS:
                options = {"max_levels": 30, "cfactor": cfactor, "min_coarse": 2,
                           "nrelax": nrelax, "skip": False, "abs_tol": 0.0,
                           "max_iter": CYCLES}
                backends = ("numpy", "native") if (cfactor, nrelax) == (4, 1) else ("native",)
                props = {b: Propagator(net, backend=b, options=options) for b in backends}
                probe = fastest(props, params, x, y, 1)
                reps = 1 if quick else repeats_for(max(v["total"] for v in probe.values()),
                                                   budget=8.0, most=3)
                best = fastest(props, params, x, y, reps)
                nat = best["native"]
                row = {"depth": depth, "width": width, "batch": size, "cfactor": cfactor,
                       "relax": RELAX[nrelax], "cycles": CYCLES,
                       "native_iteration": {d: nat[d] / CYCLES for d in ("forward", "adjoint")},
                       "native_sweep": {d: serial[d] for d in ("forward", "adjoint")},
                       "sweeps_per_iteration": {d: nat[d] / CYCLES / serial[d]
                                                for d in ("forward", "adjoint")},
                       "model_step_calls": model_step_calls(depth, cfactor, nrelax),
                       "iterations": nat["iterations"]}
                if "numpy" in best:
                    row["numpy_iteration"] = {d: best["numpy"][d] / CYCLES
                                              for d in ("forward", "adjoint")}
                    row["speedup"] = {d: best["numpy"][d] / nat[d]
                                      for d in ("forward", "adjoint")}
                rows.append(row)
                s = row["sweeps_per_iteration"]
                print(f"mgrit N={depth} W={width} cf{cfactor} {RELAX[nrelax]}: iteration = "
                      f"{s['forward']:.2f} / {s['adjoint']:.2f} sweeps"
                      + (f", numpy/native x{row['speedup']['forward']:.2f} / "
                         f"x{row['speedup']['adjoint']:.2f}" if "speedup" in row else ""),
                      flush=True)
                for p in props.values():
                    p.close()
    return rows


# ------------------------------------------------------------------------------- markdown


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    out = [f"<!-- BEGIN native -->", "",
           "Reproduce (from the repository root):", "", "```",
           ".venv/bin/python benchmarks/native/run.py", "```", "",
           f"Machine: {m['cpu']}, {m['cores']} cores ({m['os']}), {m['date'][:10]}, commit "
           f"`{m['git_commit'][:12]}`; {doc['blas']}; "
           f"threads: {', '.join(f'{k}={v}' for k, v in doc['thread_env'].items())}. "
           "Parts took " + ", ".join(f"{k} {v:.0f} s" for k, v in doc["part_seconds"].items())
           + ".", "",
           "Network: dense ResNet of width W, N tanh layers, T = 5, dense opening from 2 inputs, "
           f"classifier to 5 classes, smoothness regulariser on, batch {doc['batch']}. One "
           "process, one BLAS thread. `Propagator(net, backend=...)`.loss_and_gradient with the "
           "same parameters and batch, the two backends interleaved; every time is the fastest "
           "of its repeats. *grad rel diff*: max over parameter arrays of max|Δg| / max|g| "
           "between the backends.", ""]
    step = doc.get("step", [])
    if step:
        out += ["### Time per training step (one loss and gradient evaluation)", "",
                "*serial*: SERIAL options (exact backpropagation). *one-shot*: 2 MGRIT cycles "
                "per solve (cfactor 4, FCF, max_levels 30), warm-started as the trainer runs it. "
                f"Target: numpy / native ≥ {TARGET_SPEEDUP:g} at width ≤ 32.", ""]
        rows = []
        for r in step:
            rows.append([r["depth"], r["width"], r["mode"], r["numpy"]["total"],
                         r["native"]["total"], round(r["speedup"], 2),
                         "yes" if r["speedup"] >= TARGET_SPEEDUP else
                         ("no" if r["width"] <= 32 else "–"),
                         f"{r['native']['forward']:.3g} / {r['native']['adjoint']:.3g}",
                         r["gradient_rel_diff"]])
        out += [table(["N", "W", "mode", "numpy s", "native s", "numpy / native", "≥ 3",
                       "native forward / adjoint s", "grad rel diff"], rows), ""]
    by_batch = doc.get("batch_rows", [])
    if by_batch:
        out += ["### Serial step against the batch size (N = 256)", "",
                "The same evaluation as *serial* above, for batches of 32, 256 and 2048 "
                "examples.", ""]
        rows = [[r["width"], r["batch"], r["numpy"]["total"], r["native"]["total"],
                 round(r["speedup"], 2),
                 f"{r['numpy']['forward'] / r['native']['forward']:.2f} / "
                 f"{r['numpy']['adjoint'] / r['native']['adjoint']:.2f}"] for r in by_batch]
        out += [table(["W", "batch", "numpy s", "native s", "numpy / native",
                       "numpy / native: forward / adjoint solve"], rows), ""]
    mg = doc.get("mgrit", [])
    if mg:
        out += ["### Cost of one MGRIT iteration (native) in serial sweeps", "",
                f"max_levels 30, min_coarse 2, skip off, exactly {CYCLES} cycles; *iteration / "
                "sweep* = (solve time / cycles) / (serial solve time, same direction, same "
                "backend); *model*: step calls of one V-cycle over N (coarse steps at full "
                "weight), which bounds what any implementation can reach. *numpy / native*: "
                f"per iteration, cfactor 4 FCF. Target: ≤ {TARGET_SWEEPS:g} sweeps.", ""]
        rows = []
        for r in mg:
            s = r["sweeps_per_iteration"]
            model = r["model_step_calls"]
            worst = max(s.values())
            rows.append([r["depth"], r["width"], r["cfactor"], r["relax"], round(model, 2),
                         f"{s['forward']:.2f} / {s['adjoint']:.2f}",
                         "yes" if worst <= TARGET_SWEEPS else
                         ("no" if model <= TARGET_SWEEPS else "no (model)"),
                         f"{r['speedup']['forward']:.2f} / {r['speedup']['adjoint']:.2f}"
                         if "speedup" in r else "–"])
        out += [table(["N", "W", "cf", "relax", "model: step calls / iter / N",
                       "iteration / sweep fwd / adj", "≤ 3", "numpy / native fwd / adj"],
                      rows), ""]
    if doc.get("findings"):
        out += ["### Findings", ""] + [f"- {f}" for f in doc["findings"]] + [""]
    out.append("<!-- END native -->")
    return "\n".join(out)


def numpy_tanh_ns() -> float:
    """np.tanh's time per value on a (256, 32) float64 state, in place (fastest of 5)."""
    import timeit

    z = np.random.default_rng(0).uniform(-2, 2, (256, 32))
    best = min(timeit.repeat(lambda: np.tanh(z, out=z), number=200, repeat=5))
    return best / 200 / z.size * 1e9


def findings(doc: dict[str, Any]) -> list[str]:
    notes = []
    step = doc.get("step", [])
    for mode in ("serial", "one-shot"):
        rows = [r for r in step if r["mode"] == mode]
        small = [r for r in rows if r["width"] <= 32]
        if rows:
            met = sum(r["speedup"] >= TARGET_SPEEDUP for r in small)
            lo, hi = min(r["speedup"] for r in rows), max(r["speedup"] for r in rows)
            notes.append(f"{mode} training step: native is {lo:.1f}–{hi:.1f}× as fast as NumPy "
                         f"callbacks; ≥ {TARGET_SPEEDUP:g}× at width ≤ 32 in {met} of "
                         f"{len(small)} cases. Largest gradient difference between the "
                         f"backends: {max(r['gradient_rel_diff'] for r in rows):.1e}.")
    serial = [r for r in step if r["mode"] == "serial"]
    if serial:
        fwd = [r["numpy"]["forward"] / r["native"]["forward"] for r in serial]
        adj = [r["numpy"]["adjoint"] / r["native"]["adjoint"] for r in serial]
        notes.append(f"Where the gain comes from (serial, batch {doc['batch']}): the forward "
                     f"solve is {min(fwd):.1f}–{max(fwd):.1f}× as fast as NumPy's, the adjoint "
                     f"solve {min(adj):.1f}–{max(adj):.1f}×. A NumPy forward step is mostly "
                     f"np.tanh ({doc['numpy_tanh_ns']:.0f} ns a value here; the C++ tanh pass is "
                     "vectorised) plus its Python callbacks. A NumPy adjoint step is two "
                     "OpenBLAS products and two element-wise passes, the very products the C++ "
                     "step calls: from width 16 on they are most of the step, and the adjoint's "
                     "ratio falls towards 1. The rest of an evaluation (opening, classifier, "
                     "regulariser over every weight) is the same NumPy code in both backends.")
    by_batch = doc.get("batch_rows", [])
    if by_batch:
        best = max(by_batch, key=lambda r: r["speedup"])
        notes.append(f"The ratio falls with the work per layer step: {best['speedup']:.1f}× "
                     f"at width {best['width']} and batch {best['batch']}, down to "
                     f"{min(r['speedup'] for r in by_batch):.1f}× at the largest "
                     "(see the batch table).")
    mg = doc.get("mgrit", [])
    if mg:
        ratio = [max(r["sweeps_per_iteration"].values()) / r["model_step_calls"] for r in mg]
        notes.append(f"Measured MGRIT iteration / model step calls: {min(ratio):.2f}–"
                     f"{max(ratio):.2f} (the rest: the engine's vector operations, clone, sum "
                     "and norm on whole batch states, and coarse steps that cost as much as "
                     "fine ones).")
        within = [r for r in mg if max(r["sweeps_per_iteration"].values()) <= TARGET_SWEEPS]
        notes.append(f"One native MGRIT iteration costs ≤ {TARGET_SWEEPS:g} serial sweeps in "
                     f"{len(within)} of {len(mg)} cases; met by "
                     + ", ".join(sorted({f"cf {r['cfactor']} {r['relax']}" for r in within}))
                     + " in some or all cases; cf 4 FCF cannot, its V-cycle alone takes 3.2 "
                     "sweeps of steps.")
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="step,batch,mgrit",
                        help="comma-separated: step, batch, mgrit")
    parser.add_argument("--depths", default="256,1024")
    parser.add_argument("--widths", default="8,16,32,64")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="N = 256, few repeats; no JSON")
    parser.add_argument("--markdown-only", action="store_true")
    args = parser.parse_args()
    path = RESULTS / "native.json"
    if args.markdown_only:
        doc = json.loads(path.read_text())
        _write_marked("native", HEADING, f"{HEADING}\n{markdown(doc)}")
        return
    depths = [256] if args.quick else [int(v) for v in args.depths.split(",")]
    widths = [int(v) for v in args.widths.split(",")]
    doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() and not args.quick \
        else {}
    runners = {"step": lambda: step_part(depths, widths, args.batch, args.quick),
               "batch": lambda: batch_part([8, 32], [32, 256, 2048], args.quick),
               "mgrit": lambda: mgrit_part(depths, widths, args.batch, args.quick)}
    seconds = doc.setdefault("part_seconds", {})
    for part in args.parts.split(","):
        if part not in runners:
            parser.error(f"--parts: {part!r} is not one of {', '.join(runners)}")
        began = time.perf_counter()
        doc["batch_rows" if part == "batch" else part] = runners[part]()
        seconds[part] = time.perf_counter() - began
    doc.update({"machine": machine_info(1), "thread_env": dict(THREAD_ENV),
                "blas": blas_description(), "batch": args.batch})
    doc["numpy_tanh_ns"] = numpy_tanh_ns()
    doc["findings"] = findings(doc)
    print(markdown(doc))
    if args.quick:
        return
    print(f"wrote {write_json('native.json', doc)}")
    _write_marked("native", HEADING, f"{HEADING}\n{markdown(doc)}")


if __name__ == "__main__":
    main()
