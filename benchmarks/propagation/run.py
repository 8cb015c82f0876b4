"""Forward + backward propagation through a dense ResNet: layerbraid against PyTorch, the cost
of an MGRIT iteration, and layer-parallel against serial wall time.

Reproduce (from the repository root; ~4 min on an idle 2-core machine, longer when it is shared
and ``--wait-idle`` waits)::

    .venv/bin/python benchmarks/propagation/run.py --wait-idle 120   # all parts; writes
                        # benchmarks/results/propagation.json and the BENCHMARKS.md section
    .venv/bin/python benchmarks/propagation/run.py --quick           # ~1 min smoke run: prints
                        # the tables, writes results/propagation.quick.tmp, BENCHMARKS.md alone
    .venv/bin/python benchmarks/propagation/run.py --parts serial --depths 1024
    .venv/bin/python benchmarks/propagation/run.py --markdown-only   # section from the JSON

The network: width 32, batch 256, tanh, dense opening from 16 inputs, classifier to 10 classes,
N residual layers u <- u + (1/N) tanh(u W_n^T + b_n), mean cross-entropy (worker.py). Parts:

1. ``serial``: ``Propagator`` with the default SERIAL options, ``loss_and_gradient``, against a
   plain PyTorch loop (u = u + h*tanh(F.linear(u, W_n, b_n)), same opening, classifier and
   loss, ``loss.backward()``) on the same parameters and batch, both on one thread
   (``torch.set_num_threads(1)``; OPENBLAS/OMP/MKL_NUM_THREADS=1 set before NumPy loads).
   The two are interleaved in one process; each figure is the fastest of the repeats (the
   machine is shared). Loss and gradients are compared too.
2. ``mgrit``: one rank. The forward and the adjoint solve with many levels (max_levels 30),
   cfactor 2/4/8, FCF or F relaxation, ``skip`` off (every cycle a full V-cycle), exactly
   ``--iterations`` cycles with residuals; (solve time / iterations) / (serial solve time of
   the same direction), each the fastest of the repeats; convergence factors r_{k+1}/r_k.
3. ``parallel``: under the mpich wheel's mpiexec with 1 and 2 ranks: ``loss_and_gradient``
   with LAYER_PARALLEL (to abs tol 1e-10) and capped at 2 cycles (one-shot-like), wall time
   (slowest rank) over the serial 1-rank time taken on rank 0 inside the same run.
4. ``gpu``: part 1 with ``backend="cupy"`` against PyTorch CUDA, when
   ``layerbraid.gpu_available()`` and ``torch.cuda.is_available()``; skipped otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "python_driver"))

from _common import (RESULTS, THREAD_ENV, machine_info, mpiexec,  # noqa: E402
                     table, thread_env, venv_python, write_json)
from _common import write_section as _write_marked  # noqa: E402

WORKER = HERE / "worker.py"
BEGIN, END = "<!-- BEGIN propagation -->", "<!-- END propagation -->"
HEADING = "## Forward + backward propagation (ResNet: layerbraid vs PyTorch, MGRIT, layer-parallel)"
TARGET_RATIO = 1.2        # layerbraid serial / PyTorch serial
TARGET_SWEEPS = 3.0       # MGRIT iteration / serial sweep


def _engine_module() -> Any:
    """benchmarks/engine/run.py, for its V-cycle step-count model and idle-core wait."""
    spec = importlib.util.spec_from_file_location("_engine_bench", REPO / "benchmarks" /
                                                  "engine" / "run.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ENGINE = _engine_module()


# ------------------------------------------------------------------------------------ running


def run_worker(args: list[str], *, ranks: int | None = None, timeout: float = 600,
               budget: list[float] | None = None) -> dict[str, Any]:
    """One worker process (under mpiexec when ranks is given); its JSON line, with the
    fraction of the cores other work kept busy just before it started."""
    busy = ENGINE.wait_idle(budget) if budget is not None and budget[0] > 0 else ENGINE.cpu_busy()
    cmd = [venv_python(), str(WORKER), *args]
    if ranks is not None:
        cmd = [mpiexec(), "-n", str(ranks), *cmd]
    print("$ " + " ".join(Path(c).name if i < 2 else c for i, c in enumerate(cmd)), flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env=thread_env(), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise RuntimeError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}): {' '.join(cmd)}\n{out}\n{err}")
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"no JSON line from: {' '.join(cmd)}\n{out}\n{err}")
    result = json.loads(lines[-1])
    result["cores_busy_before"] = round(busy, 3)
    result["seconds"] = round(time.monotonic() - t0, 1)
    return result


def gpu_probe() -> tuple[bool, str]:
    code = ("import layerbraid, torch\n"
            "g, t = layerbraid.gpu_available(), torch.cuda.is_available()\n"
            "print(g and t, f'layerbraid.gpu_available()={g}, torch.cuda.is_available()={t}')")
    r = subprocess.run([venv_python(), "-c", code], capture_output=True, text=True, env=thread_env())
    if r.returncode != 0:
        return False, "probe failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    ok, _, why = r.stdout.strip().partition(" ")
    return ok == "True", why


def torch_version() -> str:
    r = subprocess.run([venv_python(), "-c", "import torch; print(torch.__version__)"],
                       capture_output=True, text=True, env=thread_env())
    return r.stdout.strip() or "not installed"


# ------------------------------------------------------------------------------------- tables


def _f(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}g}"


def _e(x: float | None) -> str:
    return "–" if x is None else ("0" if x == 0 else f"{x:.1e}")


def serial_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["N", "layerbraid s", "PyTorch s", "ratio lb/PyTorch", f"≤ {TARGET_RATIO}",
         "lb forward / adjoint s", "PyTorch forward / backward s", "loss rel diff",
         "grad rel diff"],
        [[r["depth"], _f(r["layerbraid_min_s"]), _f(r["torch_min_s"]), f"{r['ratio']:.2f}",
          "yes" if r["ratio"] <= TARGET_RATIO else "**no**",
          f"{r['layerbraid_forward_min_s']:.3g} / {r['layerbraid_adjoint_min_s']:.3g}",
          f"{r['torch_forward_min_s']:.3g} / {r['torch_backward_min_s']:.3g}",
          _e(r["loss_rel_diff"]), _e(r["grad_rel_diff"])] for r in rows])


def _factors(fs: list[float | None]) -> str:
    return ", ".join(_f(f, 2) for f in fs if f is not None) or "–"


def model(depth: int, cf: int, nrelax: int, max_levels: int) -> float:
    return ENGINE.model_sweeps(depth, max_levels, cf, nrelax)["total"]


def per_sweep(d: dict[str, Any]) -> float | None:
    """The residual's mean reduction per serial sweep of work over the cycles after the first:
    (r_K / r_1) ** (1 / ((K - 1) * sweeps per iteration)); lower is better."""
    r = [v for v in d["residuals"] if v is not None]
    if len(r) < 2 or r[0] <= 0 or r[-1] <= 0:
        return None
    return (r[-1] / r[0]) ** (1.0 / ((len(r) - 1) * d["sweeps_per_iteration"]))


def mgrit_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        for c in r["configs"]:
            fw, ad = c["forward"], c["adjoint"]
            rows.append([r["depth"], c["cfactor"], "FCF" if c["nrelax"] == 1 else "F",
                         c["nlevels"], _f(model(r["depth"], c["cfactor"], c["nrelax"],
                                                r["max_levels"])),
                         _f(fw["sweeps_per_iteration"]), _f(ad["sweeps_per_iteration"]),
                         _factors(fw["conv_factors"]), _factors(ad["conv_factors"]),
                         f"{_f(per_sweep(fw), 2)} / {_f(per_sweep(ad), 2)}",
                         _e(c["grad_rel_error_l2"])])
    return table(["N", "cf", "relax", "levels", "model: step calls / iter / N",
                  "forward: iter / sweep", "adjoint: iter / sweep",
                  "forward conv factors", "adjoint conv factors",
                  "reduction per sweep fwd / adj", "gradient rel error after the cycles"], rows)


SETTING_NAMES = {"serial_split": "SERIAL (layers split over the ranks)",
                 "tolerance": "LAYER_PARALLEL (abs tol 1e-10)",
                 "two_cycles": "LAYER_PARALLEL, max_iter 2"}


def parallel_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in sorted(results, key=lambda r: (r["dtype"], r["depth"], r["ranks"])):
        for name, s in r["settings"].items():
            rows.append([r["depth"], r["ranks"], SETTING_NAMES.get(name, name),
                         f"{s['forward_iterations']} / {s['adjoint_iterations']}",
                         _f(s["min_s"]), _f(r["serial_1rank_min_s"]), f"{s['over_serial']:.2f}",
                         _e(s["grad_rel_error_l2"])])
    return table(["N", "ranks", "options", "iterations fwd / adj", "wall s",
                  "serial 1-rank s", "wall / serial", "gradient rel error"], rows)


# ----------------------------------------------------------------------------------- markdown


def _machine_line(doc: dict[str, Any]) -> str:
    m, v = doc["machine"], doc["machine"]["versions"]
    return (f"{m['cpu']}, {m['cores']} cores ({m['os']}), {m['date'][:10]}, commit "
            f"`{m['git_commit'][:12]}`; Python {v['python']}, NumPy {v['numpy']}, PyTorch "
            f"{v.get('torch', '?')}, layerbraid {v['layerbraid']}, {v['mpi']}; threads: "
            + ", ".join(f"{k}={val}" for k, val in doc["thread_env"].items())
            + ", torch.set_num_threads(1)")


def _by(results: list[dict[str, Any]], **kw: Any) -> list[dict[str, Any]]:
    return [r for r in results if all(r.get(k) == v for k, v in kw.items())]


def _cfg(r: dict[str, Any], c: dict[str, Any]) -> str:
    return f"cf {c['cfactor']} {'FCF' if c['nrelax'] else 'F'}"


def _span(values: list[float], fmt: str = ".2f") -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}" if f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}}–{hi:{fmt}}"


def _kernel_note(ser: list[dict[str, Any]]) -> str:
    k = next((r["kernels_us"] for r in ser if r["dtype"] == "float64" and "kernels_us" in r),
             None)
    if not k:
        return ""
    return (f" Single float64 kernels on a 256 × 32 state (µs): NumPy tanh {k['numpy_tanh']:.0f} "
            f"against torch.tanh {k['torch_tanh']:.0f}, NumPy matmul {k['numpy_matmul']:.0f} "
            f"against torch.addmm {k['torch_addmm']:.0f} (F.linear): NumPy's float64 tanh "
            f"({k['numpy_tanh'] * 1e3 / (256 * 32):.0f} ns per element, PyTorch's "
            f"{k['torch_tanh'] * 1e3 / (256 * 32):.0f}) is most of a layerbraid forward step, "
            "as PyTorch's slower float64 GEMM is a large part of its. In float32 both tanh "
            "are fast and layerbraid's fewer, in-place passes win.")


def _best_per_sweep(cells: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    by_cfg: dict[str, list[float]] = {}
    for r, c in cells:
        v = per_sweep(c["forward"])
        if v is not None and r["depth"] == max(q["depth"] for q, _ in cells):
            by_cfg.setdefault(_cfg(r, c), []).append(v)
    if not by_cfg:
        return ""
    ranked = sorted(by_cfg, key=lambda k: max(by_cfg[k]))
    return ("Per serial sweep of time (forward, largest N) the residual falls fastest with "
            + ", then ".join(f"{k} ({_span(by_cfg[k])})" for k in ranked) + ".")


def findings(doc: dict[str, Any]) -> list[str]:
    out: list[str] = []
    ser = doc.get("serial") or []
    if ser:
        ok = [r for r in ser if r["ratio"] <= TARGET_RATIO]
        f64 = _by(ser, dtype="float64")
        fwd = [r["layerbraid_forward_min_s"] / r["torch_forward_min_s"] for r in ser]
        bwd = [r["layerbraid_adjoint_min_s"] / r["torch_backward_min_s"] for r in ser]
        out.append(
            f"- Serial layerbraid takes {_span([r['ratio'] for r in ser])}× the time of the "
            f"PyTorch loop (target ≤ {TARGET_RATIO}: met in {len(ok)} of {len(ser)} cases"
            + ("" if len(ok) == len(ser) else ", missed for " + ", ".join(
                f"N {r['depth']} {r['dtype']}" for r in ser if r not in ok)) + "). "
            + (f"In float64 the two agree to {_e(max(r['grad_rel_diff'] for r in f64))} in "
               f"the gradients and {_e(max(r['loss_rel_diff'] for r in f64))} in the loss: the "
               "same computation up to summation order. " if f64 else "")
            + f"layerbraid's forward sweep takes {_span(fwd)}× PyTorch's forward, its adjoint "
            f"sweep {_span(bwd)}× autograd's backward (three small products in place, no "
            "graph to walk)." + _kernel_note(ser))
    mg = doc.get("mgrit") or []
    if mg:
        cells = [(r, c) for r in mg for c in r["configs"]]
        cost = {id(c): max(c["forward"]["sweeps_per_iteration"],
                           c["adjoint"]["sweeps_per_iteration"]) for _, c in cells}
        under = [(r, c) for r, c in cells if cost[id(c)] <= TARGET_SWEEPS]
        models = {id(c): model(r["depth"], c["cfactor"], c["nrelax"], r["max_levels"])
                  for r, c in cells}
        above_model = sorted({_cfg(r, c) for r, c in cells if models[id(c)] > TARGET_SWEEPS})
        fit_model = sorted({_cfg(r, c) for r, c in cells if models[id(c)] <= TARGET_SWEEPS})
        missed_fit = [f"N {r['depth']} {r['dtype']} {_cfg(r, c)} ({cost[id(c)]:.2f})"
                      for r, c in cells
                      if models[id(c)] <= TARGET_SWEEPS < cost[id(c)]]
        eff = {d: [c[d]["sweeps_per_iteration"] / models[id(c)] for _, c in cells]
               for d in ("forward", "adjoint")}
        out.append(
            f"- One MGRIT iteration (1 rank) costs ≤ {TARGET_SWEEPS:g} serial sweeps of the "
            f"same direction in {len(under)} of {len(cells)} cases. The step calls alone "
            "(model column: FCF/F V-cycle step calls over N, as counted in the engine "
            f"benchmark) exceed {TARGET_SWEEPS:g} sweeps for {', '.join(above_model) or 'none'}, "
            "so those cannot meet the target whatever the implementation"
            + (f"; of the others ({', '.join(fit_model)}) "
               + ("all meet it" if not missed_fit else
                  "these miss it: " + ", ".join(missed_fit)) if fit_model else "") + ". "
            f"Measured / model: forward {_span(eff['forward'])}, adjoint "
            f"{_span(eff['adjoint'])}. Above 1: the engine's vector operations (sum, clone, "
            "norm on 256 × 32 states) and the Python callbacks; below 1 (the adjoint): "
            "coarse-grid steps cost less than fine ones (the adjoint's coarse steps compute no "
            "weight gradients, the forward's store nothing for the adjoint).")
        facs1 = [c[d]["conv_factors"][0] for _, c in cells for d in ("forward", "adjoint")
                 if c[d]["conv_factors"] and c[d]["conv_factors"][0] is not None]
        later = [f for _, c in cells for d in ("forward", "adjoint")
                 for f in c[d]["conv_factors"][1:] if f is not None]
        if facs1:
            out.append(
                f"- Convergence factors r_(k+1)/r_k: {min(facs1):.2f}–{max(facs1):.2f} for the "
                + (f"first cycle, {min(later):.2f}–{max(later):.2f} for later ones "
                   if later else "first cycle ")
                + "(forward and adjoint alike): FCF and small cf converge faster per cycle. "
                + _best_per_sweep(cells))
    par = doc.get("parallel") or []
    if par:
        tol = [(r, r["settings"]["tolerance"]) for r in par]
        two = [(r, r["settings"]["two_cycles"]) for r in par]
        one_tol = [s["over_serial"] for r, s in tol if r["ranks"] == 1]
        one_two = [s["over_serial"] for r, s in two if r["ranks"] == 1]
        speed = []
        for r in par:
            one = [q for q in par if q["ranks"] == 1 and q["depth"] == r["depth"]
                   and q["dtype"] == r["dtype"]]
            if r["ranks"] > 1 and one:
                speed.append(one[0]["settings"]["tolerance"]["min_s"]
                             / r["settings"]["tolerance"]["min_s"])
        out.append(
            "- Layer-parallel is slower than serial here: solved to tolerance it takes "
            f"{_span([s['over_serial'] for _, s in tol], '.1f')}× the serial time "
            f"({_span([s['forward_iterations'] for _, s in tol], 'd')} forward and "
            f"{_span([s['adjoint_iterations'] for _, s in tol], 'd')} adjoint cycles from a "
            "zero initial guess), capped at 2 cycles "
            f"{_span([s['over_serial'] for _, s in two], '.1f')}× (gradients then off by "
            f"{_span([s['grad_rel_error_l2'] for _, s in two], '.0e')})."
            + (f" Two ranks run the tolerance solve {_span(speed)}× as fast as one rank." if speed
               else "")
            + " The 1-rank ratio is the solves' work in serial sweeps (cycles × sweeps per "
            "cycle, forward and adjoint); P ranks divide it by at most P, so layer-parallel "
            "needs more ranks than that ratio before it beats serial propagation"
            + (f": over {_span(one_tol, '.0f')} for gradients to tolerance from a zero "
               f"initial guess, over {_span(one_two, '.0f')} for the 2-cycle setting (whose "
               "gradients are inexact unless warm starts carry the convergence across "
               "training steps)." if one_tol and one_two else "."))
    gpu = doc.get("gpu") or {}
    if gpu.get("skipped"):
        out.append(f"- GPU part skipped: {gpu['skipped']}.")
    busy = [r.get("cores_busy_before", -1) for part in ("serial", "mgrit", "parallel")
            for r in (doc.get(part) or [])]
    busy = [b for b in busy if b >= 0]
    if busy:
        n = sum(b > 0.25 for b in busy)
        out.append(
            "- The 2-core machine is shared with other work; every time is the fastest of "
            "its repeats, and each ratio is taken inside one process (one mpiexec run). "
            + ("The cores were at most 25% busy with other work just before every run."
               if not n else f"Other work kept the cores more than 25% busy just before {n} "
               f"of {len(busy)} runs (`cores_busy_before` in the JSON): those figures, the "
               "2-rank ones above all, are the least reliable."))
    return out


def section(doc: dict[str, Any]) -> str:
    lines = [HEADING, BEGIN, "",
             "Reproduce (from the repository root):", "", "```",
             "make venv   # the test extra brings the peer, torch==2.13.0 (CPU)",
             doc["command"], "```", "",
             f"Machine: {_machine_line(doc)}. Run took {doc['total_seconds']:.0f} s.", "",
             "Network: dense ResNet, width 32, batch 256, tanh, dense opening from 16 inputs, "
             "classifier to 10 classes, N residual layers of step 1/N, mean cross-entropy, "
             "`init_params(seed=0)`. Every time is the fastest of the repeats "
             f"({doc['settings']['repeats']} for the serial comparison, "
             f"{doc['settings']['mgrit_repeats']} for MGRIT (more for N < 512), "
             f"{doc['settings']['parallel_repeats']} for layer-parallel; the serial and "
             "layer-parallel runs discard one warm-up call first). *gradient rel error* = |g − g_exact| / "
             "|g_exact| over all parameters; the serial comparison's *grad rel diff* is the "
             "stricter max over parameter arrays of max|Δg| / max|g|.", ""]
    for dtype in doc["settings"]["dtypes"]:
        rows = _by(doc.get("serial") or [], dtype=dtype)
        if rows:
            lines += [f"### Serial forward + backward, {dtype}: layerbraid vs PyTorch (1 thread)",
                      "", "`Propagator(net)` (SERIAL) `.loss_and_gradient` against the PyTorch "
                      "loop with `loss.backward()`; *lb forward / adjoint* are the two "
                      "solves' wall times (the rest: opening, classifier, set-up).", "",
                      serial_table(rows), ""]
    for dtype in doc["settings"]["dtypes"]:
        rows = _by(doc.get("mgrit") or [], dtype=dtype)
        if rows:
            it = rows[0]["iterations"]
            lines += [f"### Cost of one MGRIT iteration in serial sweeps, {dtype} (1 rank)", "",
                      f"max_levels {rows[0]['max_levels']}, min_coarse 2, skip off, exactly "
                      f"{it} cycles with residuals; *iter / sweep* = (solve time / {it}) / "
                      "(serial solve time, same direction); *model* = step calls of one "
                      "V-cycle over N (benchmarks/engine's count; coarse steps included at "
                      "full weight). Convergence factors are r_(k+1)/r_k of the cycles; "
                      "*reduction per sweep* = (r_last / r_first)^(1 / (cycles × iter/sweep)), "
                      "the residual reduction bought by one serial sweep's worth of time "
                      "(lower is better).", "", mgrit_table(rows), ""]
    par = doc.get("parallel") or []
    for dtype in doc["settings"]["dtypes"]:
        rows = _by(par, dtype=dtype)
        if rows:
            lines += [f"### Layer-parallel vs serial wall time, {dtype} (mpiexec -n 1 / -n 2)",
                      "", "Wall time of `loss_and_gradient` (slowest rank) over the 1-rank "
                      "serial time measured on rank 0 (COMM_SELF) inside the same run; "
                      "*gradient rel error* against that serial gradient.", "",
                      parallel_table(rows), ""]
    gpu = doc.get("gpu") or {}
    lines += ["### GPU: backend=\"cupy\" vs PyTorch CUDA", ""]
    if gpu.get("skipped"):
        lines += [f"Skipped: {gpu['skipped']}.", ""]
    else:
        if gpu.get("results"):
            r0 = gpu["results"][0]
            lines += [f"Device: {r0.get('gpu_name', '?')}, CuPy {r0.get('cupy', '?')}.", ""]
        for dtype in doc["settings"]["dtypes"]:
            rows = _by(gpu.get("results") or [], dtype=dtype)
            if rows:
                lines += [f"{dtype}:", "", serial_table(rows), ""]
    lines += ["### Findings", "", *findings(doc), "", END]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- main


def print_tables(doc: dict[str, Any]) -> None:
    print()
    print(section(doc).replace(BEGIN, "").replace(END, ""))


def write_section(text: str) -> None:
    """This benchmark's section of BENCHMARKS.md."""
    _write_marked("propagation", HEADING, text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="N 64 and 256, fewer repeats (~1 min); results to "
                        "propagation.quick.tmp, BENCHMARKS.md untouched")
    p.add_argument("--depths", default=None, help="comma-separated N (default 256,1024)")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--parts", default="serial,mgrit,parallel,gpu")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats of the serial comparison (default 7; quick 3)")
    p.add_argument("--mgrit-repeats", type=int, default=None, help="default 3; quick 2")
    p.add_argument("--parallel-repeats", type=int, default=None, help="default 3; quick 2")
    p.add_argument("--iterations", type=int, default=4, help="MGRIT cycles per timed solve")
    p.add_argument("--ranks", default="1,2", help="rank counts of the parallel part")
    p.add_argument("--parallel-dtypes", default="float64",
                   help="dtypes of the parallel part (default float64)")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before each run, wait while other work keeps the cores > 25%% busy, "
                        "up to SECONDS in all (default 0)")
    p.add_argument("--output", default=None, help="JSON file name under benchmarks/results/")
    p.add_argument("--markdown-only", action="store_true",
                   help="only rewrite the BENCHMARKS.md section from the JSON file")
    p.add_argument("--no-markdown", action="store_true", help="leave BENCHMARKS.md alone")
    args = p.parse_args()

    output = args.output or ("propagation.quick.tmp" if args.quick else "propagation.json")
    if args.markdown_only:
        doc = json.loads((RESULTS / output).read_text())
        print_tables(doc)
        if not args.no_markdown:
            write_section(section(doc))
        return

    depths = [int(v) for v in (args.depths or ("64,256" if args.quick else "256,1024"))
              .split(",")]
    dtypes = args.dtypes.split(",")
    parts = set(args.parts.split(","))
    repeats = args.repeats or (3 if args.quick else 7)
    mgrit_repeats = args.mgrit_repeats or (2 if args.quick else 3)
    parallel_repeats = args.parallel_repeats or (2 if args.quick else 3)
    budget = [args.wait_idle]
    start = time.monotonic()
    command = " ".join([".venv/bin/python benchmarks/propagation/run.py", *sys.argv[1:]])
    doc: dict[str, Any] = {
        "command": command,
        "machine": machine_info(1, {"torch": torch_version()}),
        "thread_env": dict(THREAD_ENV),
        "settings": {"depths": depths, "dtypes": dtypes, "repeats": repeats,
                     "mgrit_repeats": mgrit_repeats, "parallel_repeats": parallel_repeats,
                     "iterations": args.iterations,
                     "width": 32, "batch": 256, "in_features": 16, "classes": 10,
                     "activation": "tanh", "ranks": args.ranks,
                     "wait_idle_s": args.wait_idle},
        "targets": {"layerbraid_over_torch": TARGET_RATIO,
                    "sweeps_per_iteration": TARGET_SWEEPS},
    }
    if "serial" in parts:
        doc["serial"] = [run_worker(["serial", "--depth", str(n), "--dtype", d,
                                     "--repeats", str(repeats)], budget=budget)
                         for d in dtypes for n in depths]
    if "mgrit" in parts:
        # short solves are the most disturbed by other work: more repeats for small N
        doc["mgrit"] = [run_worker(["mgrit", "--depth", str(n), "--dtype", d,
                                    "--repeats", str(mgrit_repeats * min(4, max(1, 512 // n))),
                                    "--iterations", str(args.iterations)], budget=budget)
                        for d in dtypes for n in depths]
    if "parallel" in parts:
        doc["parallel"] = [run_worker(["parallel", "--depth", str(n), "--dtype", d,
                                       "--repeats", str(parallel_repeats)],
                                      ranks=int(k), budget=budget)
                           for d in args.parallel_dtypes.split(",") for n in depths
                           for k in args.ranks.split(",")]
    if "gpu" in parts:
        ok, why = gpu_probe()
        if ok:
            doc["gpu"] = {"results": [run_worker(["serial", "--device", "cuda", "--depth", str(n),
                                                  "--dtype", d, "--repeats", str(repeats)])
                                      for d in dtypes for n in depths]}
        else:
            msg = f"no usable GPU here ({why})"
            print(f"GPU part skipped: {msg}", flush=True)
            doc["gpu"] = {"skipped": msg}
    doc["total_seconds"] = round(time.monotonic() - start, 1)
    path = write_json(output, doc)
    print(f"wrote {path}")
    print_tables(doc)
    if args.quick or args.no_markdown:
        print("BENCHMARKS.md left unchanged (--quick / --no-markdown)")
        return
    write_section(section(doc))


if __name__ == "__main__":
    main()
