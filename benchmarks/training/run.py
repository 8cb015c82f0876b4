"""Training time to accuracy: `layerbraid train` (the CLI) layer-serial against one-shot MGRIT.

Reproduce (from the repository root; ~45 min on an idle 2-core machine)::

    .venv/bin/python benchmarks/training/run.py              # all parts; writes
                  # benchmarks/results/training.json and the BENCHMARKS.md section
    .venv/bin/python benchmarks/training/run.py --quick      # ~1-2 min smoke run: fewer runs and
                  # epochs, results to training.quick.tmp, BENCHMARKS.md untouched
    .venv/bin/python benchmarks/training/run.py --parts deep # one part; the others are kept
                  # from the existing JSON
    .venv/bin/python benchmarks/training/run.py --markdown-only   # section from the JSON

Every run is ``mpiexec -n R python -m layerbraid.cli train ... --out TMP --no-plots
--no-progress`` under the mpich wheel's mpiexec (``layerbraid.find_mpiexec()``), one BLAS thread
per rank; the figures come from ``TMP/metrics.jsonl`` (one record per epoch; ``elapsed`` is
training seconds so far, validation excluded; ``time`` the epoch's training seconds). Parts:

1. ``peaks``: the Peaks reference network (30 layers, width 8, 130 full-batch L-BFGS steps):
   time to 93 % validation accuracy, final accuracies and training time for layer-serial on 1
   rank and one-shot on 1 and 2 ranks, beside the reference implementation's figures.
2. ``deep``: Peaks with 1024 layers of width 16 (the CLI's depth-scaled smoothness weight):
   serial and one-shot on 1 and 2 ranks, each run up to ``--deep-epochs`` steps or its wall
   budget; mean seconds per optimisation step, speedup over serial on 1 rank, and time to 90 %
   validation accuracy. A one-shot run too slow to reach 90 % in its budget on 1 rank gets a
   *projected* time from the 2-rank run (the trajectories are bit-identical across ranks).
3. ``digits``: the conv network on 8x8 digits (16 layers, 4 channels, T = 2, 20 epochs):
   serial on 1 rank and one-shot (``--min-coarse 4``) on 2 ranks.
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

from layerbraid.cli import DEFAULTS, default_smoothness  # noqa: E402

BEGIN, END = "<!-- BEGIN training -->", "<!-- END training -->"
HEADING = "## Training: time to accuracy (layer-serial vs one-shot MGRIT)"
PEAKS_TARGET_ACC = 0.93
DEEP_TARGET_ACC = 0.90
TARGET_SERIAL_S = 7.55          # the reference layer-serial total on a 2-core CPU
TARGET_ONESHOT_RATIO = 2.0      # one-shot 1 rank / layer-serial
# The reference implementation's Peaks figures: total run time of 130 steps on a 2-core CPU,
# final training / validation accuracy.
REFERENCE = {("serial", 1): (7.55, 0.942, 0.935), ("one-shot", 1): (44.5, 0.873, 0.875),
             ("one-shot", 2): (30.3, 0.944, 0.945)}


# ------------------------------------------------------------------------------------ running


def train(flags: list[str], ranks: int, *, timeout: float = 900) -> dict[str, Any]:
    """One CLI training run; its per-epoch records, wall seconds and whether it finished.
    A run past ``timeout`` is killed and keeps the epochs it had logged."""
    with tempfile.TemporaryDirectory(prefix="lb-train-bench-") as tmp:
        cmd = [mpiexec(), "-n", str(ranks), venv_python(), "-m", "layerbraid.cli", "train", *flags,
               "--out", tmp, "--no-plots", "--no-progress"]
        print(f"$ mpiexec -n {ranks} python -m layerbraid.cli train {' '.join(flags)}",
              flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=REPO, env=thread_env(), start_new_session=True)
        finished = True
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, err = proc.communicate()
            finished = False
        wall = time.monotonic() - t0
        if finished and proc.returncode != 0:
            raise RuntimeError(f"failed ({proc.returncode}): {' '.join(cmd)}\n{out}\n{err}")
        log = Path(tmp) / "metrics.jsonl"
        records = [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()] \
            if log.exists() else []
    print(f"  {len(records)} epochs, {wall:.1f} s wall" + ("" if finished else " (killed)"),
          flush=True)
    return {"flags": flags, "ranks": ranks, "finished": finished, "wall_s": round(wall, 2),
            "records": records}


def summarise(run: dict[str, Any], target: float | None) -> dict[str, Any]:
    recs = run["records"]
    hit = next((r for r in recs if target is not None and r["val_accuracy"] >= target), None)
    vals = [r["val_accuracy"] for r in recs if r["val_accuracy"] == r["val_accuracy"]]
    times = [r["time"] for r in recs]
    return {
        "ranks": run["ranks"], "flags": run["flags"], "finished": run["finished"],
        "wall_s": run["wall_s"], "epochs": len(recs),
        "target_accuracy": target,
        "time_to_target_s": None if hit is None else round(hit["elapsed"], 3),
        "epoch_to_target": None if hit is None else hit["epoch"],
        "final_train_accuracy": recs[-1]["train_accuracy"] if recs else None,
        "final_val_accuracy": recs[-1]["val_accuracy"] if recs else None,
        "best_val_accuracy": max(vals) if vals else None,
        "final_loss": recs[-1]["loss"] if recs else None,
        "training_s": round(recs[-1]["elapsed"], 3) if recs else None,
        "mean_step_s": sum(times) / len(times) if times else None,
        "forward_iterations": sum(r["forward_iterations"] for r in recs),
        "adjoint_iterations": sum(r["adjoint_iterations"] for r in recs),
        "curve": [[r["epoch"], round(r["elapsed"], 3), r["train_accuracy"], r["val_accuracy"]]
                  for r in recs],
    }


def method_flags(method: str, extra: list[str]) -> list[str]:
    return ["--method", method, *extra]


# ------------------------------------------------------------------------------------- tables


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _s(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def _label(r: dict[str, Any]) -> str:
    return f"{r['method']}, {r['ranks']} rank" + ("s" if r["ranks"] > 1 else "")


def peaks_table(rows: list[dict[str, Any]], epochs: int) -> str:
    out = []
    for r in rows:
        ref = REFERENCE.get((r["method"], r["ranks"]))
        out.append([_label(r),
                    _s(r["time_to_target_s"]) if r["time_to_target_s"] is not None
                    else "not reached", "–" if r["epoch_to_target"] is None
                    else r["epoch_to_target"], _s(r["training_s"]),
                    f"{_pct(r['final_train_accuracy'])} / {_pct(r['final_val_accuracy'])}",
                    _pct(r["best_val_accuracy"]),
                    "–" if ref is None else f"{ref[0]:g}",
                    "–" if ref is None else f"{100 * ref[1]:.1f} / {100 * ref[2]:.1f}"])
    return table(["method", "s to 93 % val", "epoch", f"training s ({epochs} steps)",
                  "final train / val %", "best val %", "reference s (130 steps)",
                  "reference train / val %"], out)


def deep_table(doc: dict[str, Any]) -> str:
    rows = doc["deep"]["runs"]
    base = _find(rows, "serial", 1)
    out = []
    for r in rows:
        speed = None if base is None or not r["mean_step_s"] else \
            base["mean_step_s"] / r["mean_step_s"]
        if r["time_to_target_s"] is not None:
            to90 = f"{r['time_to_target_s']:.0f} (epoch {r['epoch_to_target']})"
        elif r.get("projected_time_to_target_s") is not None:
            to90 = f"≈ {r['projected_time_to_target_s']:.0f} projected (epoch " \
                   f"{r['epoch_to_target_elsewhere']})"
        else:
            to90 = f"not reached in {r['wall_s']:.0f} s"
        out.append([_label(r), r["epochs"], _s(r["mean_step_s"]),
                    "–" if speed is None else f"{speed:.2f}", to90,
                    "–" if not r["epochs"] else
                    f"{r['forward_iterations'] / r['epochs']:.3g} / "
                    f"{r['adjoint_iterations'] / r['epochs']:.3g}",
                    _pct(r["best_val_accuracy"])])
    return table(["method", "steps run", "s per step (mean)", "speedup over serial 1 rank",
                  "s to 90 % val", "MGRIT cycles per step fwd / adj", "best val %"], out)


def project_deep_target(rows: list[dict[str, Any]]) -> None:
    """A one-shot run that did not reach the target in its budget follows the same trajectory
    as on another rank count (bit-identical losses, tests/test_train.py); project its time from
    the epoch where that run got there and its own mean step time."""
    for r in rows:
        if r["time_to_target_s"] is not None or not r["mean_step_s"]:
            continue
        twin = next((o for o in rows if o is not r and o["method"] == r["method"]
                     and o["epoch_to_target"] is not None), None)
        if twin is not None:
            r["epoch_to_target_elsewhere"] = twin["epoch_to_target"]
            r["projected_time_to_target_s"] = round(
                twin["epoch_to_target"] * r["mean_step_s"], 1)


def digits_table(rows: list[dict[str, Any]]) -> str:
    return table(["method", "epochs", "training s", "final train / val %", "best val %",
                  "MGRIT cycles fwd / adj (total)"],
                 [[_label(r), r["epochs"], _s(r["training_s"]),
                   f"{_pct(r['final_train_accuracy'])} / {_pct(r['final_val_accuracy'])}",
                   _pct(r["best_val_accuracy"]),
                   f"{r['forward_iterations']} / {r['adjoint_iterations']}"] for r in rows])


# ----------------------------------------------------------------------------------- markdown


def _machine_line(doc: dict[str, Any]) -> str:
    m, v = doc["machine"], doc["machine"]["versions"]
    return (f"{m['cpu']}, {m['cores']} cores ({m['os']}), {m['date'][:10]}, commit "
            f"`{m['git_commit'][:12]}`; Python {v['python']}, NumPy {v['numpy']}, layerbraid "
            f"{v['layerbraid']}, {v['mpi']}; one BLAS thread per rank")


def _find(rows: list[dict[str, Any]], method: str, ranks: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["method"] == method and r["ranks"] == ranks), None)


def findings(doc: dict[str, Any]) -> list[str]:
    out = []
    cpu = f"{doc['machine']['cpu']} ({doc['machine']['cores']} cores)"
    peaks = doc.get("peaks") or []
    ser, os1, os2 = (_find(peaks, "serial", 1), _find(peaks, "one-shot", 1),
                     _find(peaks, "one-shot", 2))
    if ser and ser["training_s"]:
        ok = ser["training_s"] <= TARGET_SERIAL_S
        s = (f"On the {cpu}, layer-serial Peaks training takes {ser['training_s']:.2f} s for "
             f"{ser['epochs']} L-BFGS steps (target ≤ {TARGET_SERIAL_S} s, the reference's "
             f"figure: {'met' if ok else '**missed**'}) and reaches "
             f"{_pct(ser['final_val_accuracy'])} % validation accuracy")
        s += (f", 93 % after {ser['time_to_target_s']:.2f} s." if ser["time_to_target_s"]
              is not None else ", never 93 %.")
        if os1 and os1["training_s"]:
            ratio = os1["training_s"] / ser["training_s"]
            s += (f" One-shot on 1 rank costs {ratio:.2f}× the layer-serial time (target ≤ "
                  f"{TARGET_ONESHOT_RATIO:g}×: {'met' if ratio <= TARGET_ONESHOT_RATIO else '**missed**'}"
                  f"; the reference's ratio is {44.5 / 7.55:.1f}×)")
            if os2 and os2["training_s"]:
                s += (f", and {os2['training_s'] / ser['training_s']:.2f}× on 2 ranks "
                      f"({os1['training_s'] / os2['training_s']:.2f}× faster than on 1 rank)")
            s += (f"; final validation accuracy {_pct(os1['final_val_accuracy'])} % on 1 "
                  f"rank" + (f", {_pct(os2['final_val_accuracy'])} % on 2" if os2 else "")
                  + " (reference: 87.5 and 94.5 %).")
        out.append(s)
    deep = (doc.get("deep") or {}).get("runs") or []
    if deep:
        base = _find(deep, "serial", 1)
        best = max((r for r in deep if r["mean_step_s"]), key=lambda r: -r["mean_step_s"])
        if base and base["mean_step_s"]:
            sp = ", ".join(f"{_label(r)} {base['mean_step_s'] / r['mean_step_s']:.2f}×"
                           for r in deep if r is not base and r["mean_step_s"])
            out.append(f"With 1024 layers of width 16 a serial step takes "
                       f"{base['mean_step_s']:.2f} s; speedups over it: {sp} (fastest: "
                       f"{_label(best)}).")
    dig = doc.get("digits") or []
    if dig:
        out.append("Digits (conv, 16 layers): " + "; ".join(
            f"{_label(r)} {_s(r['training_s'])} s for {r['epochs']} epochs, final / best val "
            f"{_pct(r['final_val_accuracy'])} / {_pct(r['best_val_accuracy'])} %" for r in dig)
            + ".")
    return out


def section(doc: dict[str, Any]) -> str:
    st = doc["settings"]
    lines = [HEADING, BEGIN, "", "Reproduce (from the repository root):", "", "```",
             doc["command"], "```", "",
             f"Machine: {_machine_line(doc)}. Last run took {doc['total_seconds']:.0f} s; "
             "parts measured " + ", ".join(f"{k} {v[:10]}" for k, v in
                                           doc.get("measured", {}).items()) + ".", "",
             "Each row is one `mpiexec -n R python -m layerbraid.cli train ...` run; figures "
             "from its `metrics.jsonl`. *Training s* is the `elapsed` of the last epoch "
             "(training only, validation excluded); *s to 93 % val* the `elapsed` of the first "
             "epoch with validation accuracy ≥ 93 %. One-shot: 2 MGRIT cycles per solve "
             "(`--mgrit-iters` default), cfactor 2.", ""]
    if doc.get("peaks"):
        lines += [f"### Peaks (30 layers, width 8, {st['peaks_epochs']} full-batch L-BFGS steps)",
                  "", "The reference columns are the reference implementation's total run "
                  "times of 130 steps on a 2-core CPU.", "",
                  peaks_table(doc["peaks"], st["peaks_epochs"]), ""]
    if doc.get("deep"):
        lines += ["### Deep Peaks (1024 layers, width 16)", "",
                  f"Each run goes up to {st['deep_epochs']} L-BFGS steps or its wall budget "
                  f"({', '.join(f'{k} {v:.0f} s' for k, v in st['deep_budget_s'].items())}). "
                  "*s per step* is the mean epoch `time` (an L-BFGS step may evaluate the loss "
                  "more than once); smoothness weight "
                  f"{st['deep_smoothness']:.3g} (the CLI default at this depth).", "",
                  deep_table(doc), ""]
    if doc.get("digits"):
        lines += [f"### Digits (conv, 16 layers, 4 channels, T = 2, {st['digits_epochs']} "
                  "epochs)", "", "One-shot with `--min-coarse 4`.", "",
                  digits_table(doc["digits"]), ""]
    lines += ["### Findings", "", " ".join(findings(doc)), "", END]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- main


def _run(method: str, ranks: int, flags: list[str], target: float | None,
         timeout: float = 900) -> dict[str, Any]:
    s = summarise(train(method_flags(method, flags), ranks, timeout=timeout), target)
    s["method"] = method
    return s


def write_section(text: str) -> None:
    """This benchmark's section of BENCHMARKS.md."""
    _write_marked("training", HEADING, text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fewer runs and epochs (~1-2 min); results to training.quick.tmp, "
                        "BENCHMARKS.md untouched")
    p.add_argument("--parts", default="peaks,deep,digits",
                   help="comma-separated parts to run (default all); the JSON keeps the other "
                        "parts from its previous run")
    p.add_argument("--output", default=None, help="JSON file name under benchmarks/results/")
    p.add_argument("--markdown-only", action="store_true",
                   help="only rewrite the BENCHMARKS.md section from the JSON file")
    p.add_argument("--no-markdown", action="store_true", help="leave BENCHMARKS.md alone")
    args = p.parse_args()

    output = args.output or ("training.quick.tmp" if args.quick else "training.json")
    if args.markdown_only:
        doc = json.loads((RESULTS / output).read_text())
        print(section(doc).replace(BEGIN, "").replace(END, ""))
        if not args.no_markdown:
            write_section(section(doc))
        return

    q = args.quick
    parts = [x for x in args.parts.split(",") if x]
    unknown = sorted(set(parts) - {"peaks", "deep", "digits"})
    if unknown:
        p.error(f"--parts {','.join(unknown)}: use peaks, deep and/or digits")
    peaks_epochs = 40 if q else 130
    deep_epochs = 2 if q else 110
    deep_budget = {"serial": 420.0, "one-shot, 2 ranks": 1100.0, "one-shot, 1 rank": 300.0}
    digits_epochs = 4 if q else 20
    start = time.monotonic()
    previous = RESULTS / output
    doc: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() and \
        set(parts) != {"peaks", "deep", "digits"} else {}
    # when each kept part was measured (older files only carry the date of their whole run)
    measured = doc.get("measured") or {k: doc["machine"]["date"]
                                       for k in ("peaks", "deep", "digits") if doc.get(k)}
    doc.update({
        "command": " ".join([".venv/bin/python benchmarks/training/run.py", *sys.argv[1:]]),
        "machine": machine_info(2),
        "thread_env": dict(THREAD_ENV),
        "settings": {"peaks_epochs": peaks_epochs, "deep_epochs": deep_epochs,
                     "digits_epochs": digits_epochs, "deep_budget_s": deep_budget,
                     "deep_smoothness": default_smoothness(1024, DEFAULTS["final_time"]),
                     "peaks_target_accuracy": PEAKS_TARGET_ACC,
                     "deep_target_accuracy": DEEP_TARGET_ACC, "quick": q},
        "targets": {"serial_training_s": TARGET_SERIAL_S,
                    "one_shot_1rank_over_serial": TARGET_ONESHOT_RATIO},
        "reference": [{"method": m, "ranks": k, "total_s": v[0], "train_accuracy": v[1],
                       "val_accuracy": v[2]} for (m, k), v in REFERENCE.items()],
        "measured": measured,
    })

    if "peaks" in parts:
        pe = ["--epochs", str(peaks_epochs)]
        peaks_runs = [("serial", 1), ("one-shot", 2)] if q else \
            [("serial", 1), ("one-shot", 1), ("one-shot", 2)]
        doc["peaks"] = [_run(m, k, pe, PEAKS_TARGET_ACC) for m, k in peaks_runs]
        doc["measured"]["peaks"] = doc["machine"]["date"]

    if "deep" in parts:
        deep = ["--layers", "1024", "--width", "16", "--epochs", str(deep_epochs)]
        runs = [("serial", 1, deep_budget["serial"]), ("serial", 2, deep_budget["serial"]),
                ("one-shot", 2, deep_budget["one-shot, 2 ranks"]),
                ("one-shot", 1, deep_budget["one-shot, 1 rank"])]
        if q:
            runs = [(m, k, 600.0) for m, k, _ in runs[:3]]
        doc["deep"] = {"runs": [_run(m, k, deep, DEEP_TARGET_ACC, timeout=budget)
                                for m, k, budget in runs]}
        project_deep_target(doc["deep"]["runs"])
        doc["measured"]["deep"] = doc["machine"]["date"]

    if "digits" in parts:
        de = ["--dataset", "digits", "--layers", "16", "--width", "4", "--final-time", "2",
              "--epochs", str(digits_epochs)]
        doc["digits"] = [_run("serial", 1, de, None),
                         _run("one-shot", 2, de + ["--min-coarse", "4"], None)]
        doc["measured"]["digits"] = doc["machine"]["date"]

    doc["total_seconds"] = round(time.monotonic() - start, 1)
    path = write_json(output, doc)
    print(f"wrote {path}")
    print(section(doc).replace(BEGIN, "").replace(END, ""))
    if q or args.no_markdown:
        print("BENCHMARKS.md left unchanged (--quick / --no-markdown)")
        return
    write_section(section(doc))


if __name__ == "__main__":
    main()
