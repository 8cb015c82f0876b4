#!/usr/bin/env python3
"""The engine against an earlier version of itself: time per MGRIT iteration, case by case.

Builds bench_engine against today's extern/braid and against the extern/braid of a git
revision (``--baseline``), then runs every case of the engine benchmark (benchmarks/engine/
run.py's list; ``--quick`` for its small set) on both, alternating old and new ``--repeats``
times so that both see the same machine. The figure per case is the one run.py reports: the
thread CPU time of the fastest steady iteration (max over ranks); the best of the repeats of
each version is compared, as the ratio new / old.

    .venv/bin/python benchmarks/engine/compare.py --baseline 09b19a4 --quick

With ``--instructions`` it counts instead of timing: every one-rank case up to 2^14 points
runs under valgrind's callgrind for 5 and for 10 iterations, and the difference (the
instructions of 5 steady iterations, of the engine and of the benchmark's callbacks together)
is compared. Only the instructions inside braid_Drive are collected: MPI_Init and
MPI_Finalize vary by some 10^5 instructions from run to run, 2 % of a small case, while the
count inside braid_Drive repeats to a few instructions. The count does not depend on the
machine's load or clock, so it shows a change of a fraction of a percent that the timings of
a shared machine cannot.

Writes benchmarks/results/engine_compare.json (--out) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the benchmark's own build, case list and runner)

RESULTS = bench.ROOT / "benchmarks" / "results" / "engine_compare.json"


def baseline_tree(rev: str, into: Path) -> Path:
    """extern/braid as it was at git revision rev, extracted under into/."""
    archive = subprocess.run(["git", "-C", str(bench.ROOT), "archive", rev, "extern/braid"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "extern" / "braid"


def instructions(exe: Path, case: dict, iters: int) -> int:
    """Instructions callgrind counts inside braid_Drive for one run of bench_engine on one
    rank."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           "--toggle-collect=braid_Drive", str(exe),
           "-ntime", str(case["ntime"]), "-ml", str(case["ml"]), "-cf", str(case["cf"]),
           "-nu", str(case["nu"]), "-iters", str(iters), "-step", case["step"]]
    if case["step"] == "dense":
        cmd += ["-width", "64", "-batch", "1"]
    err = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    return int(re.search(r"Collected : (\d+)", err).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="git revision of the engine to compare with")
    ap.add_argument("--quick", action="store_true", help="run.py's small case set")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each version per case (3)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per run (300)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON output file")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions with callgrind (one rank, up to 2^14 points)")
    args = ap.parse_args()
    if args.repeats < 1:
        sys.exit("compare.py: --repeats must be >= 1")

    rev = subprocess.run(["git", "-C", str(bench.ROOT), "rev-parse", "--short=12", args.baseline],
                         capture_output=True, text=True, check=True).stdout.strip()
    mpiexec = bench.find_mpiexec()
    with tempfile.TemporaryDirectory() as tmp:
        old_exe = bench.build(False, baseline_tree(rev, Path(tmp)),
                              bench.ROOT / "build" / "bench_engine_baseline")
    new_exe = bench.build(False)
    rows = []
    if args.instructions:
        if shutil.which("valgrind") is None:
            sys.exit("compare.py: --instructions needs valgrind")
        for case in bench.case_list(args.quick):
            if case["ranks"] != 1 or case["ntime"] > 1 << 14:
                continue
            per = {}
            for which, exe in (("old", old_exe), ("new", new_exe)):
                per[which] = instructions(exe, case, 10) - instructions(exe, case, 5)
            rows.append({**case, "old_instructions_5_iters": per["old"],
                         "new_instructions_5_iters": per["new"],
                         "ratio": per["new"] / per["old"]})
            print(f"{case['step']:8s} ntime {case['ntime']:6d} ml {case['ml']:2d} cf {case['cf']}: "
                  f"{per['old']:>12,} -> {per['new']:>12,} instructions / 5 iterations  "
                  f"x{per['new'] / per['old']:.4f}", flush=True)
    for case in ([] if args.instructions else bench.case_list(args.quick)):
        times: dict[str, list[float]] = {"old": [], "new": []}
        for r in range(args.repeats):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for which in order:
                exe = old_exe if which == "old" else new_exe
                data = bench.run_case(exe, mpiexec, case, 64, 1, args.timeout, [0.0])
                times[which].append(data["mgrit"]["per_iter"]["cpu"])
        old, new = min(times["old"]), min(times["new"])
        rows.append({**case, "old_cpu_per_iter": old, "new_cpu_per_iter": new,
                     "ratio": new / old, "runs": times})
        print(f"{case['step']:8s} ntime {case['ntime']:8d} ml {case['ml']:2d} cf {case['cf']} "
              f"ranks {case['ranks']}: {old * 1e6:10.1f} -> {new * 1e6:10.1f} us/iter  "
              f"x{new / old:.3f}", flush=True)
    doc = {
        "benchmark": "engine_compare",
        "command": "benchmarks/engine/compare.py " + " ".join(sys.argv[1:]),
        "baseline": rev,
        "metric": ("instructions of 5 steady iterations (callgrind, inside braid_Drive), one rank"
                   if args.instructions
                   else "thread CPU time of the fastest steady iteration, max over ranks"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "platform": platform.platform()},
        "cases": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    unit = "instructions / 5 its" if args.instructions else "µs/iter"
    key_old = "old_instructions_5_iters" if args.instructions else "old_cpu_per_iter"
    key_new = "new_instructions_5_iters" if args.instructions else "new_cpu_per_iter"
    scale = 1 if args.instructions else 1e6
    print(f"\n| step | ntime | levels | cf | ranks | old {unit} | new {unit} | new / old |")
    print("|---|---|---|---|---|---|---|---|")
    for c in rows:
        print(f"| {c['step']} | {c['ntime']} | {c['ml']} | {c['cf']} | {c['ranks']} | "
              f"{c[key_old] * scale:,.1f} | {c[key_new] * scale:,.1f} | {c['ratio']:.3f} |")
    ratios = [c["ratio"] for c in rows]
    print(f"\nworst ratio {max(ratios):.3f}; geometric mean "
          f"{math.prod(ratios) ** (1 / len(ratios)):.3f}")


if __name__ == "__main__":
    main()
