"""One-shot Peaks training with the piggy-back gradient against today's one-shot (two solves).

Reproduce (from the repository root; about 4 minutes on an idle 2-core machine)::

    .venv/bin/python benchmarks/piggyback/run.py           # 1 and 2 ranks; writes
                  # benchmarks/results/piggyback.json and the BENCHMARKS.md section
    .venv/bin/python benchmarks/piggyback/run.py --steps 10 --ranks 1 --no-write  # smoke run
    .venv/bin/python benchmarks/piggyback/run.py --markdown-only    # section from the JSON

The network, data and training settings are the CLI's Peaks defaults (30 layers of width 8,
smooth ReLU, T = 2.5, 130 full-batch L-BFGS steps, 30 pairs; one-shot: 2 MGRIT cycles per
solve, cfactor 2, FCF on every level, coarse grids of at least 10 intervals). Two trainers
(``TrainConfig(method="one-shot", gradient_method=...)``) run side by side in one process
(one ``mpiexec -n R`` run), their steps interleaved so that both see the same machine load:

- *time per step*: the optimiser step (loss and gradient, L-BFGS line search) of each; the
  gradient evaluation alone is timed too;
- *gradient error*: before each step, the exact gradient at the trainer's current weights
  (layer-serial backpropagation, not timed), and ``|g - g_exact| / |g_exact|`` (2-norms over
  all parameters);
- *validation accuracy* after the last step (exact forward propagation).
Every comparison is a ratio piggy-back / two-solve inside one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "python_driver"))

from _common import (RESULTS, machine_info, mpiexec, table, thread_env,  # noqa: E402
                     venv_python, write_json, write_section)

NAME = "piggyback"
HEADING = "## One-shot training: piggy-back gradient vs two solves"
#: The runs: name -> (gradient method, MGRIT cycles per step). Piggy-back's gradient of a
#: drive uses the adjoint of the iteration before the last, so it is compared at the same
#: number of cycles, one fewer and one more.
RUNS = {"two-solve": ("two-solve", 2), "piggy-back": ("piggy-back", 2),
        "piggy-back, 1 cycle": ("piggy-back", 1), "piggy-back, 3 cycles": ("piggy-back", 3)}
REFERENCE = "two-solve"


# ------------------------------------------------------------------------------- the worker


def worker(steps: int, out: Path) -> None:
    """Runs under mpiexec: both trainers, interleaved; rank 0 writes ``out``."""
    from mpi4py import MPI

    from layerbraid import cli, data
    from layerbraid.propagate import Propagator
    from layerbraid.train import TrainConfig, Trainer
    from layerbraid.train import vectors

    comm = MPI.COMM_WORLD
    s = dict(cli.DEFAULTS)
    peaks = data.peaks()
    net = cli._network(s, peaks)
    config = {"method": "one-shot", "epochs": steps, "cfactor": s["cfactor"],
              "max_levels": s["max_levels"], "min_coarse": s["min_coarse"],
              "fine_relax": s["fine_relax"],
              "coarse_relax": s["coarse_relax"], "lbfgs_memory": s["lbfgs_memory"],
              "init": s["init"], "seed": s["seed"]}
    trainers = {name: Trainer(net, peaks, TrainConfig(**config, gradient_method=method,
                                                      mgrit_iters=cycles), comm, progress=False)
                for name, (method, cycles) in RUNS.items()}
    exact = Propagator(net, comm)   # layer-serial backpropagation
    x, y = peaks.x_train, peaks.y_train
    record: dict[str, dict[str, list[float]]] = {
        m: {"step_s": [], "gradient_s": [], "error": [], "loss": [], "evaluations": []}
        for m in RUNS}
    for _ in range(steps):
        for m, tr in trainers.items():
            reference = exact.loss_and_gradient(tr.params, x, y).gradient
            comm.Barrier()
            t0 = time.perf_counter()
            ev = tr.prop.loss_and_gradient(tr.params, x, y)
            t1 = time.perf_counter()
            diff = {k: ev.gradient[k] - reference[k] for k in reference}
            error = vectors.norm(diff, comm) / vectors.norm(reference, comm)
            t2 = time.perf_counter()
            info = tr.optimizer.step(tr.params, ev.gradient, ev.loss,
                                     lambda p, tr=tr: tr.prop.loss(p, x, y).loss)
            t3 = time.perf_counter()
            # the slowest rank's times (the error norm in between is not timed)
            times = [max(v) for v in zip(*comm.allgather(((t1 - t0) + (t3 - t2), t1 - t0)))]
            rec = record[m]
            rec["step_s"].append(times[0])
            rec["gradient_s"].append(times[1])
            rec["error"].append(error)
            rec["loss"].append(ev.loss)
            rec["evaluations"].append(info.evaluations)
    summary = {}
    for m, tr in trainers.items():
        val_loss, val_acc = tr.evaluate(peaks.x_val, peaks.y_val)
        summary[m] = {**record[m], "val_accuracy": val_acc, "val_loss": val_loss}
    if comm.Get_rank() == 0:
        from threadpoolctl import threadpool_info

        kernels = sorted({i.get("architecture", "?") for i in threadpool_info()
                          if i.get("internal_api") == "openblas"})
        out.write_text(json.dumps({"ranks": comm.Get_size(), "steps": steps,
                                   "openblas_kernel": ", ".join(kernels), "runs": summary}))


# ---------------------------------------------------------------------------- the reporting


def run(ranks: int, steps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lb-piggy-") as tmp:
        out = Path(tmp) / "out.json"
        cmd = [mpiexec(), "-n", str(ranks), venv_python(), str(Path(__file__).resolve()),
               "--worker", str(out), "--steps", str(steps)]
        print(f"$ mpiexec -n {ranks} python benchmarks/piggyback/run.py --worker OUT "
              f"--steps {steps}", flush=True)
        t0 = time.monotonic()
        load = os.getloadavg()[0]
        subprocess.run(cmd, check=True, cwd=REPO, env=thread_env())
        result = json.loads(out.read_text())
        result["wall_s"] = time.monotonic() - t0
        result["load_average"] = [load, os.getloadavg()[0]]   # 1-minute, before and after
        return result


def ratios(result: dict[str, Any], name: str) -> dict[str, float]:
    """Run ``name`` over two-solve: median time per step and per gradient, median and final
    gradient error."""
    two, piggy = result["runs"][REFERENCE], result["runs"][name]
    med = statistics.median
    return {"step_time": med(piggy["step_s"]) / med(two["step_s"]),
            "gradient_time": med(piggy["gradient_s"]) / med(two["gradient_s"]),
            "median_error": med(piggy["error"]) / med(two["error"]),
            "final_error": piggy["error"][-1] / two["error"][-1]}


def section(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [HEADING, f"<!-- BEGIN {NAME} -->", "",
             "Reproduce (from the repository root):", "", "```",
             ".venv/bin/python benchmarks/piggyback/run.py", "```", "",
             f"Machine: {doc['machine_name']} ({m['cpu']}, {m['cores']} cores, "
             f"{m['os']}), OpenBLAS kernel {doc['openblas_kernel']}, one BLAS thread per "
             f"rank; {m['date']}, commit `{m['git_commit'][:12]}`. The run took "
             f"{doc['wall_s']:.0f} s; the machine was shared with other work (1-minute load "
             f"average {_loads(doc)}), hence ratios inside each run.", "",
             "Peaks with the CLI defaults (30 layers, width 8, 130 full-batch L-BFGS steps); "
             "one-shot with 2 MGRIT cycles per step, cfactor 2, FCF, coarse grids of at least "
             "10 intervals. *two-solve*: today's one-shot, a warm-started forward solve and a "
             "warm-started adjoint solve of 2 cycles each. *piggy-back*: one warm-started drive "
             "of the engine's adjoint iteration, 2 (or 1, or 3) cycles, each a forward V-cycle "
             "followed by the adjoint sweep over its recorded steps; the gradient a drive "
             "returns is that of its last sweep, which starts from the adjoint of the sweep "
             "before, so a 2-cycle drive updates the adjoint once with the new weights. The "
             "trainers run in one process, their steps interleaved. *s per step*: median of "
             "the optimiser steps (gradient "
             "plus L-BFGS line search, whose loss evaluations are forward solves in both); "
             "*s per gradient*: median of the loss-and-gradient calls; *gradient error*: "
             "|g - g_exact| / |g_exact| against layer-serial backpropagation at the same "
             "weights, before each step.", ""]
    rows = []
    for result in doc["results"]:
        for name in RUNS:
            r = result["runs"][name]
            err = r["error"]
            rows.append([f"{name}, {result['ranks']} rank(s)",
                         statistics.median(r["step_s"]), statistics.median(r["gradient_s"]),
                         statistics.median(err), err[0], err[-1],
                         f"{100 * r['val_accuracy']:.1f}", r["loss"][-1]])
    lines += [table(["run", "s per step", "s per gradient", "gradient error (median)",
                     "error, step 1", f"error, step {doc['steps']}",
                     f"val % after {doc['steps']} steps", "final loss"], rows), ""]
    rows = []
    for result in doc["results"]:
        for name in RUNS:
            if name != REFERENCE:
                q = ratios(result, name)
                rows.append([name, result["ranks"], q["step_time"], q["gradient_time"],
                             q["median_error"], q["final_error"]])
    lines += ["Ratios to two-solve (inside each run):", "",
              table(["run", "ranks", "time per step", "time per gradient", "median gradient error",
                     "final gradient error"], rows), "", "### Findings", ""]
    lines += findings(doc) + ["", f"<!-- END {NAME} -->"]
    return "\n".join(lines) + "\n"


def _loads(doc: dict[str, Any]) -> str:
    values = [v for r in doc["results"] for v in r.get("load_average", [])]
    return f"{min(values):.1f}-{max(values):.1f}" if values else "not recorded"


def findings(doc: dict[str, Any]) -> list[str]:
    out = []
    for result in doc["results"]:
        two = result["runs"][REFERENCE]
        for name in RUNS:
            if name == REFERENCE:
                continue
            q, piggy = ratios(result, name), result["runs"][name]
            out.append(f"- {result['ranks']} rank(s), {name}: a step takes "
                       f"{q['step_time']:.2f}x the time of a two-solve step "
                       f"({q['gradient_time']:.2f}x per gradient); median gradient error "
                       f"{statistics.median(piggy['error']):.2e} against "
                       f"{statistics.median(two['error']):.2e} ({q['median_error']:.2g}x); "
                       f"validation accuracy after {doc['steps']} steps "
                       f"{100 * piggy['val_accuracy']:.1f} % against "
                       f"{100 * two['val_accuracy']:.1f} %.")
    same = all(a["runs"][n][k] == b["runs"][n][k] for a in doc["results"]
               for b in doc["results"] for n in RUNS
               for k in ("error", "loss", "val_accuracy"))
    if len(doc["results"]) > 1:
        out.append(f"- The losses, gradient errors and accuracies of every step are "
                   f"{'the same, bit for bit,' if same else 'NOT the same'} on "
                   f"{' and '.join(str(r['ranks']) for r in doc['results'])} ranks.")
    out.append("- Why: a drive's gradient is that of its last adjoint sweep, which starts from "
               "the adjoint of the sweep before it (the piggy-back adjoint lags the state by "
               "one iteration), so with 2 cycles the adjoint takes one step with the new "
               "weights where two-solve takes two cycles of a warm-started adjoint solve; a "
               "1-cycle drive uses the adjoint of the previous step's weights, a 3-cycle drive "
               "updates it twice. A piggy-back "
               "cycle costs about three one-direction cycles here: the forward V-cycle, the "
               "engine's recording of each step's input and result, and an adjoint sweep whose "
               "step_diff recomputes sigma' from the recorded input and forms a weight "
               "gradient on every level (the two-solve adjoint does so on the finest only).")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=130)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--markdown-only", action="store_true",
                    help="rewrite the BENCHMARKS.md section from the JSON")
    args = ap.parse_args()
    if args.worker:
        worker(args.steps, args.worker)
        return
    if args.markdown_only:
        doc = json.loads((RESULTS / f"{NAME}.json").read_text())
    else:
        t0 = time.monotonic()
        machine = machine_info(max(args.ranks))   # the commit the runs start from
        results = [run(r, args.steps) for r in args.ranks]
        doc = {"machine": machine,
               "machine_name": "a 2-core AMD EPYC VM", "steps": args.steps,
               "openblas_kernel": results[0]["openblas_kernel"], "results": results,
               "wall_s": time.monotonic() - t0}
    text = section(doc)
    print(text)
    if not args.no_write:
        if not args.markdown_only:
            print(f"wrote {write_json(f'{NAME}.json', doc)}")
        write_section(NAME, HEADING, text)


if __name__ == "__main__":
    main()
