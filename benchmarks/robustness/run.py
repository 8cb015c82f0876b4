"""The Peaks acceptance runs under every BLAS kernel and native code path a user's CPU may pick.

130 L-BFGS steps amplify the last bits of every matrix product, and NumPy's OpenBLAS chooses
its kernels (and so its rounding) by CPU: the same command ends on a different trajectory on a
different machine. This benchmark runs the acceptance configurations (`layerbraid train`'s
defaults: layer-serial on 1 rank, one-shot with two MGRIT cycles per solve on 1 and 2 ranks,
and one-shot with the native backend on its AVX2 and its baseline x86-64 path) under each
``OPENBLAS_CORETYPE`` in Haswell, SkylakeX, Zen and Prescott that this CPU can execute (a
kernel whose instructions the CPU lacks dies with SIGILL and is reported as such) and for a
few seeds, and tabulates the final validation accuracy, the mean over the last 10 epochs and
the final loss: the spread a user should expect, and the margin the tests' thresholds keep.

Reproduce (from the repository root; about 8 minutes per seed on an idle 2-core machine)::

    .venv/bin/python benchmarks/robustness/run.py                 # seeds 0 1 2
    .venv/bin/python benchmarks/robustness/run.py --seeds 0 --quick   # one seed, 20 epochs
    .venv/bin/python benchmarks/robustness/run.py --markdown-only     # section from the JSON

Writes benchmarks/results/robustness.json and the "Robustness" section of BENCHMARKS.md
(``--quick`` writes robustness.quick.tmp and leaves BENCHMARKS.md alone).
"""

from __future__ import annotations

import argparse
import json
import signal
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

from _common import (machine_info, mpiexec, table, thread_env, venv_python,  # noqa: E402
                     write_json, write_section)

KERNELS = ("Haswell", "SkylakeX", "Zen", "Prescott")
#: (label, method, ranks, extra CLI arguments, environment)
CONFIGS = (
    ("serial, NumPy, 1 rank", "serial", 1, [], {}),
    ("one-shot, NumPy, 1 rank", "one-shot", 1, [], {}),
    ("one-shot, NumPy, 2 ranks", "one-shot", 2, [], {}),
    ("one-shot, native AVX2, 1 rank", "one-shot", 1, ["--native"],
     {"LAYERBRAID_NATIVE_ISA": "avx2"}),
    ("one-shot, native baseline, 1 rank", "one-shot", 1, ["--native"],
     {"LAYERBRAID_NATIVE_ISA": "baseline"}),
)
THRESHOLDS = {"serial": 0.935, "one-shot": 0.93}   # tests/test_training_acceptance.py
HEADING = "## Robustness: the Peaks acceptance runs on every BLAS kernel"


def probe_kernel(kernel: str) -> tuple[str | None, str]:
    """(OpenBLAS's name for the kernel it runs, "") or (None, why it cannot run here)."""
    code = ("import numpy, threadpoolctl; a = numpy.ones((64, 64)); a @ a; "
            "print(threadpoolctl.threadpool_info()[0].get('architecture'))")
    proc = subprocess.run([venv_python(), "-c", code], capture_output=True, text=True,
                          env={**thread_env(), "OPENBLAS_CORETYPE": kernel})
    if proc.returncode < 0:
        return None, f"dies with {signal.Signals(-proc.returncode).name} on this CPU"
    if proc.returncode:
        return None, proc.stderr.strip().splitlines()[-1]
    return proc.stdout.strip(), ""


def probe_isa(isa: str) -> str:
    """"" if the native backend runs with LAYERBRAID_NATIVE_ISA=isa here, else why not."""
    proc = subprocess.run([venv_python(), "-c", "import layerbraid._native as n; "
                           "print(n.active_isa())"], capture_output=True, text=True,
                          env={**thread_env(), "LAYERBRAID_NATIVE_ISA": isa})
    return "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["failed"])[-1]


def run(kernel: str, method: str, ranks: int, extra: list[str], env: dict[str, str],
        seed: int, epochs: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        argv = [mpiexec(), "-n", str(ranks), venv_python(), "-m", "layerbraid.cli", "train",
                "--dataset", "peaks", "--method", method, "--seed", str(seed), "--no-progress",
                "--no-plots", "--out", str(out), *extra]
        if epochs:
            argv += ["--epochs", str(epochs)]
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True,
                              env={**thread_env(), "OPENBLAS_CORETYPE": kernel, **env})
        wall = time.perf_counter() - start
        if proc.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_accuracy"] for r in records]
    return {"final_val": val[-1], "last10_mean_val": statistics.fmean(val[-10:]),
            "last10_min_val": min(val[-10:]), "final_loss": records[-1]["loss"],
            "final_train": records[-1]["train_accuracy"], "wall_s": wall}


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        HEADING,
        "<!-- BEGIN robustness -->",
        "",
        "Reproduce: `.venv/bin/python benchmarks/robustness/run.py` (seeds "
        f"{' '.join(map(str, result['seeds']))}). Machine: {m.get('cpu', '?')}, "
        f"{m.get('cores', '?')} cores; {m.get('date', '')}, commit "
        f"{str(m.get('git_commit', '?'))[:12]}.",
        "",
        "Each row is `layerbraid train --dataset peaks` with the defaults (130 full-batch "
        "L-BFGS steps) under one `OPENBLAS_CORETYPE`; validation accuracy on the 200 "
        "validation points at the last epoch, its mean over the last 10 epochs, and the "
        "smallest final accuracy over the seeds against the tests' threshold.",
        "",
        "For comparison, the defaults before 2026-12-02 (T = 5, 10 L-BFGS pairs; commit "
        "93b2052) ended the one-shot NumPy run at 93.5 % under Haswell (loss 0.1782) and "
        "91.0 % under Prescott (0.1892) on the same machine: the kernel's rounding decided "
        "whether the 93 % bar held. Other seeds of the initial weights (not the kernel) "
        "still move the result: seeds 1 and 2 end one-shot training at 93.5 % and 91.5 % "
        "after 130 steps (`--seeds 0 1 2`).",
        "",
    ]
    for kernel, info in result["kernels"].items():
        if info["unavailable"]:
            lines.append(f"- `{kernel}`: not run, {info['unavailable']}.")
        elif info["architecture"] != kernel:
            lines.append(f"- `{kernel}`: OpenBLAS runs its `{info['architecture']}` kernels.")
    for isa, why in result["isas"].items():
        if why:
            lines.append(f"- native `{isa}`: not run, {why}.")
    lines.append("")
    rows = []
    for r in result["runs"]:
        finals = [s["final_val"] for s in r["seeds"]]
        means = [s["last10_mean_val"] for s in r["seeds"]]
        rows.append([r["kernel"], r["config"],
                     " / ".join(f"{100 * v:.1f}" for v in finals),
                     " / ".join(f"{100 * v:.1f}" for v in means),
                     f"{100 * min(finals):.1f} (≥ {100 * r['threshold']:.1f})",
                     " / ".join(f"{s['final_loss']:.4f}" for s in r["seeds"])])
    lines.append(table(["kernel", "run", "final val % (per seed)", "last-10 mean val %",
                        "worst final (test bar)", "final loss"], rows))
    lines += ["", "<!-- END robustness -->", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS)
    parser.add_argument("--quick", action="store_true", help="20 epochs, results to a .tmp")
    parser.add_argument("--markdown-only", action="store_true",
                        help="rewrite the BENCHMARKS.md section from results/robustness.json")
    args = parser.parse_args()
    if args.markdown_only:
        result = json.loads((REPO / "benchmarks" / "results" / "robustness.json").read_text())
        write_section("robustness", HEADING, markdown(result))
        return
    epochs = 20 if args.quick else None
    kernels = {}
    for kernel in args.kernels:
        arch, why = probe_kernel(kernel)
        kernels[kernel] = {"architecture": arch, "unavailable": why}
        print(f"{kernel}: {arch or why}", flush=True)
    isas = {isa: probe_isa(isa) for isa in ("avx2", "baseline")}
    runs = []
    for kernel, info in kernels.items():
        if info["unavailable"]:
            continue
        for label, method, ranks, extra, env in CONFIGS:
            if env.get("LAYERBRAID_NATIVE_ISA") and isas[env["LAYERBRAID_NATIVE_ISA"]]:
                continue
            seeds = []
            for seed in args.seeds:
                seeds.append({"seed": seed, **run(kernel, method, ranks, extra, env, seed,
                                                  epochs)})
                s = seeds[-1]
                print(f"{kernel:9s} {label:34s} seed {seed}: val {100 * s['final_val']:.1f} % "
                      f"(last 10: {100 * s['last10_mean_val']:.2f} %), loss "
                      f"{s['final_loss']:.4f}, {s['wall_s']:.1f} s", flush=True)
            runs.append({"kernel": kernel, "config": label, "method": method, "ranks": ranks,
                         "threshold": THRESHOLDS[method], "seeds": seeds})
    result = {"machine": machine_info(), "seeds": args.seeds, "epochs": epochs or 130,
              "kernels": kernels, "isas": isas, "runs": runs}
    if args.quick:
        (REPO / "benchmarks" / "results" / "robustness.quick.tmp").write_text(
            json.dumps(result, indent=2))
        print(markdown(result))
        return
    write_json("robustness.json", result)
    write_section("robustness", HEADING, markdown(result))


if __name__ == "__main__":
    main()
