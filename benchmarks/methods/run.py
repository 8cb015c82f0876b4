"""Every training method side by side: time to accuracy, layer steps on the critical path and
final accuracy, on Peaks and on digits; and predict/correct's wall-clock speedup (check A-6).

Reproduce (from the repository root; ~15 min on an idle 2-core machine)::

    .venv/bin/python benchmarks/methods/run.py                 # writes benchmarks/results/
                                   # methods.json and the "methods" section of BENCHMARKS.md
    .venv/bin/python benchmarks/methods/run.py --parts peaks   # one part; the others are kept
    .venv/bin/python benchmarks/methods/run.py --markdown-only

Every run is ``mpiexec -n R python -m layerbraid.cli train ... --out TMP`` (one BLAS thread
per rank); accuracies and times come from ``TMP/metrics.jsonl`` (``elapsed``: training seconds,
validation excluded). *Layer steps on the critical path* count the layer evaluations that
must happen one after another with as many ranks as the method can use, from the method's
cost model and the solver iterations and line-search evaluations the run logged:

- layer-serial: a gradient is 2N steps, each line-search evaluation N more;
- layer-parallel MGRIT (``parallel``, ``one-shot``): per solve, cycles times the engine's
  V-cycle critical path (``layerbraid.methods.iterations.critical_path``, the same engine) plus
  the final F-sweep;
- predict/correct: ``PredictCorrect.cost()`` per step, M + P + 1 per line-search evaluation;
- nested: layer-serial steps of each level's depth;
- MGRIT over iterations: the solve's critical path in training steps, each 2N layer steps
  (its baseline is the plain loop of the same gradient-descent steps).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "python_driver"))

from _common import (RESULTS, THREAD_ENV, machine_info, mpiexec,  # noqa: E402
                     table, thread_env, venv_python, write_json)
from _common import write_section as _write_marked  # noqa: E402

from layerbraid.methods.iterations import critical_path, level_spans  # noqa: E402

HEADING = "## Training methods compared (layer-serial, layer-parallel, one-shot, " \
          "predict/correct, MGRIT over iterations, nested)"
PARTS = ("peaks", "digits", "pgcl_speed")

#: Per dataset: the flags every run shares, the accuracy target, and the runs
#: (label, method family, ranks, extra flags).
SETUPS: dict[str, dict[str, Any]] = {
    "peaks": {
        "flags": ["--dataset", "peaks", "--layers", "30", "--width", "8"],
        "depth": 30, "target": 0.90,
        "runs": [
            ("layer-serial (L-BFGS, 130 steps)", "serial", 1, ["--epochs", "130"]),
            ("layer-parallel MGRIT to 1e-10", "parallel", 2, ["--method", "parallel",
                                                              "--epochs", "130"]),
            ("one-shot, 2 cycles", "one-shot", 2, ["--method", "one-shot", "--epochs", "130"]),
            ("predict/correct, 2 blocks", "predict-correct", 2,
             ["--method", "predict-correct", "--epochs", "130"]),
            ("nested 15 → 30 layers (65 + 130 steps)", "nested", 2,
             ["--nested", "2", "--nested-epochs", "65", "--epochs", "130"]),
            ("gradient descent, 32 steps (plain loop)", "iterations", 1,
             ["--method", "iterations", "--optimizer", "sgd", "--lr", "0.2", "--epochs", "32",
              "--max-levels", "1", "--eval-every", "8"]),
            ("MGRIT over the 32 steps, cf 4", "iterations", 2,
             ["--method", "iterations", "--optimizer", "sgd", "--lr", "0.2", "--epochs", "32",
              "--max-levels", "2", "--cfactor", "4", "--min-coarse", "4", "--eval-every", "8"]),
        ]},
    "digits": {
        "flags": ["--dataset", "digits", "--layers", "16", "--width", "4", "--final-time", "2"],
        "depth": 16, "target": 0.95,
        "runs": [
            ("layer-serial (L-BFGS, 20 steps)", "serial", 1, ["--epochs", "20"]),
            ("one-shot, 2 cycles", "one-shot", 2, ["--method", "one-shot", "--epochs", "20",
                                                  "--min-coarse", "4"]),
            ("predict/correct, 2 blocks", "predict-correct", 2,
             ["--method", "predict-correct", "--epochs", "20"]),
            ("nested 8 → 16 layers (10 + 20 steps)", "nested", 2,
             ["--nested", "2", "--nested-epochs", "10", "--epochs", "20"]),
        ]},
}


# ------------------------------------------------------------------------------------ running


def cli_run(flags: list[str], ranks: int, timeout: float = 900) -> dict[str, Any]:
    """One CLI run: its metrics records, its summary.json (MGRIT over iterations) and wall
    seconds."""
    with tempfile.TemporaryDirectory(prefix="lb-methods-bench-") as tmp:
        cmd = [mpiexec(), "-n", str(ranks), venv_python(), "-m", "layerbraid.cli", "train",
               *flags, "--out", tmp, "--no-plots", "--no-progress"]
        print(f"$ mpiexec -n {ranks} python -m layerbraid.cli train {' '.join(flags)}",
              flush=True)
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=thread_env(),
                              timeout=timeout)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError(f"run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        log = Path(tmp) / "metrics.jsonl"
        records = [json.loads(line) for line in log.read_text().splitlines()]
        summary = Path(tmp) / "summary.json"
        out = {"records": records, "wall_s": round(wall, 2),
               "summary": json.loads(summary.read_text()) if summary.exists() else None}
    print(f"  {len(records)} records, {wall:.1f} s wall", flush=True)
    return out


def _mgrit_solve_path(depth: int, cycles: float, cfactor: int = 2, max_levels: int = 10,
                      min_coarse: int = 10, nrelax: int = 1) -> float:
    """Critical path of one layer-parallel solve with ``cycles`` cycles (the CLI's MGRIT
    defaults), final F-sweep included."""
    nlevels = len(level_spans(depth, cfactor, max_levels, min_coarse))
    cost = critical_path(depth, cfactor, nlevels, nrelax, 1, skip=False)
    return cycles * cost.cycle + cost.final


def critical_path_layers(family: str, depth: int, flags: list[str],
                         records: list[dict[str, Any]], summary: dict | None,
                         ranks: int) -> list[float]:
    """Cumulative layer steps on the critical path after each record (see the module doc)."""
    out, total = [], 0.0
    if family == "iterations":
        # the whole trajectory comes out of one solve
        assert summary is not None
        path = summary["critical_path"] * 2 * depth
        return [float(path)] * len(records)
    min_coarse = int(flags[flags.index("--min-coarse") + 1]) if "--min-coarse" in flags else 10
    blocks = ranks
    for r in records:
        evals = r["loss_evaluations"]
        if family in ("serial", "nested"):
            n = r.get("_depth", depth)
            step = 2 * n + evals * n
        elif family in ("parallel", "one-shot"):
            fwd, adj = r["forward_iterations"], r["adjoint_iterations"]
            step = (_mgrit_solve_path(depth, fwd, min_coarse=min_coarse)
                    + _mgrit_solve_path(depth, adj, min_coarse=min_coarse)
                    + evals * _mgrit_solve_path(depth, fwd, min_coarse=min_coarse))
        elif family == "predict-correct":
            m = depth // blocks
            step = 2 * (m + blocks + 1) + evals * (m + blocks + 1)
            if not out:
                step += 2 * blocks          # the first step's coarse prediction
        else:
            raise ValueError(family)
        total += step
        out.append(total)
    return out


def summarise(label: str, family: str, ranks: int, flags: list[str], setup: dict[str, Any],
              run: dict[str, Any]) -> dict[str, Any]:
    records, depth, target = run["records"], setup["depth"], setup["target"]
    if family == "nested":
        # the levels' depths: each restarts its epoch count; coarsest first
        levels = int(flags[flags.index("--nested") + 1])
        level, previous = 0, 0
        for r in records:
            if r["epoch"] <= previous:
                level += 1
            previous = r["epoch"]
            r["_depth"] = depth // 2 ** (levels - 1 - level)
    path = critical_path_layers(family, depth, flags, records, run["summary"], ranks)
    if family == "iterations":
        elapsed = [run["summary"]["wall_time"]] * len(records)
        vals = [r["val_accuracy"] for r in records]
    else:
        elapsed = [r["elapsed"] for r in records]
        vals = [r["val_accuracy"] for r in records]
    deep = [i for i, r in enumerate(records) if r.get("_depth", depth) == depth]
    hit = next((i for i in deep if vals[i] == vals[i] and vals[i] >= target), None)
    return {"label": label, "family": family, "ranks": ranks, "flags": flags,
            "records": len(records), "wall_s": run["wall_s"],
            "training_s": round(elapsed[-1], 3),
            "time_to_target_s": None if hit is None else round(elapsed[hit], 3),
            "critical_path_to_target": None if hit is None else round(path[hit]),
            "critical_path_total": round(path[-1]),
            "final_val_accuracy": vals[-1],
            "best_val_accuracy": max((v for v in vals if v == v), default=None),
            "summary": run["summary"]}


def pgcl_speed() -> dict[str, Any]:
    cmd = [mpiexec(), "-n", "2", venv_python(), str(HERE / "pgcl_speed.py"), "--width", "256",
           "--batch", "2000", "--iterations", "4", "--repeats", "3"]
    print("$ mpiexec -n 2 python benchmarks/methods/pgcl_speed.py --width 256 --batch 2000",
          flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=thread_env(),
                          timeout=600, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------- markdown


def _pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{100 * x:.1f}"


def dataset_table(rows: list[dict[str, Any]], target: float) -> str:
    return table(["method", "ranks", f"s to {100 * target:.0f} % val",
                  f"critical path to {100 * target:.0f} % (layer steps)",
                  "training s", "critical path, whole run", "final / best val %"],
                 [[r["label"], r["ranks"],
                   "not reached" if r["time_to_target_s"] is None
                   else f"{r['time_to_target_s']:.3g}",
                   "–" if r["critical_path_to_target"] is None
                   else f"{r['critical_path_to_target']:,}",
                   f"{r['training_s']:.3g}", f"{r['critical_path_total']:,}",
                   f"{_pct(r['final_val_accuracy'])} / {_pct(r['best_val_accuracy'])}"]
                  for r in rows])


def section(doc: dict[str, Any]) -> str:
    m, v = doc["machine"], doc["machine"]["versions"]
    lines = [HEADING, "<!-- BEGIN methods -->", "", "Reproduce (from the repository root):", "",
             "```", doc["command"], "```", "",
             f"Machine: {m['cpu']}, {m['cores']} cores ({m['os']}), commit "
             f"`{m['git_commit'][:12]}`; Python {v['python']}, NumPy {v['numpy']}; one BLAS "
             f"thread per rank. Parts measured "
             + ", ".join(f"{k} {t[:10]}" for k, t in doc.get("measured", {}).items()) + ".", "",
             "*Critical path* counts the layer evaluations that must run one after another with "
             "as many ranks as the method can use (see the script's docstring for each model); "
             "*training s* is the measured time on the ranks given. On 2 cores the wall clock "
             "favours layer-serial training; the critical path is what more ranks could "
             "realise.", ""]
    for name in ("peaks", "digits"):
        if doc.get(name):
            setup = SETUPS[name]
            lines += [f"### {name.capitalize()} (`{' '.join(setup['flags'])}`)", "",
                      dataset_table(doc[name], setup["target"]), ""]
    sp = doc.get("pgcl_speed")
    if sp:
        lines += ["### Predict/correct wall-clock speedup (check A-6)", "",
                  f"N = {sp['depth']} tanh layers of width {sp['width']}, batch {sp['batch']}, "
                  f"{sp['iterations']} gradient-descent steps (median of {sp['repeats']}): "
                  f"backpropagation on one rank {sp['serial_s_per_iteration']:.3f} s per step, "
                  f"predict/correct with {sp['blocks']} blocks on {sp['ranks']} ranks "
                  f"{sp['pgcl_s_per_iteration']:.3f} s: **{sp['speedup']:.2f}×** (target ≥ 1.2; "
                  f"the critical-path model gives {sp['model_speedup']:.2f}×, "
                  f"{sp['serial_critical_path']} against {sp['critical_path_per_iteration']} "
                  "layer steps).", ""]
    lines += ["<!-- END methods -->"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"comma-separated parts ({', '.join(PARTS)}); the JSON keeps the others")
    p.add_argument("--markdown-only", action="store_true")
    args = p.parse_args()
    path = RESULTS / "methods.json"
    if args.markdown_only:
        _write_marked("methods", HEADING, section(json.loads(path.read_text())))
        return
    parts = [x for x in args.parts.split(",") if x]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        p.error(f"--parts {','.join(unknown)}: use {', '.join(PARTS)}")
    doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    start = time.monotonic()
    doc.update({"command": " ".join([".venv/bin/python benchmarks/methods/run.py",
                                     *sys.argv[1:]]),
                "machine": machine_info(2), "thread_env": dict(THREAD_ENV)})
    doc.setdefault("measured", {})
    for name in ("peaks", "digits"):
        if name in parts:
            setup = SETUPS[name]
            doc[name] = [summarise(label, family, ranks, flags, setup,
                                   cli_run(setup["flags"] + flags, ranks))
                         for label, family, ranks, flags in setup["runs"]]
            doc["measured"][name] = doc["machine"]["date"]
    if "pgcl_speed" in parts:
        doc["pgcl_speed"] = pgcl_speed()
        doc["measured"]["pgcl_speed"] = doc["machine"]["date"]
    doc["total_seconds"] = round(time.monotonic() - start, 1)
    print(f"wrote {write_json('methods.json', doc)}")
    text = section(doc)
    print(text)
    _write_marked("methods", HEADING, text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
