"""`layerbraid plan`'s cost model against the simulated cluster: every modelled SMPI case that
benchmarks/scaling/run.py simulated (benchmarks/results/scaling.json), predicted by
layerbraid.plan.predict with the same settings, iteration counts, cost table and platform.

    .venv/bin/python benchmarks/scaling/plan_check.py      # after run.py; make scaling runs both

Writes benchmarks/results/scaling_plan.json and the BENCHMARKS.md section between
<!-- BEGIN scaling-plan --> and <!-- END scaling-plan -->: the ratio predicted / simulated
per case, its spread, and the cases outside 20 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from layerbraid import plan

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
CACHE = RESULTS / "scaling.json"
OUT = RESULTS / "scaling_plan.json"
BENCHMARKS = REPO / "benchmarks" / "BENCHMARKS.md"
TOLERANCE = 0.20  # the acceptance: the plan within 20 % of the simulation


def modelled_cases(cache: dict[str, Any]) -> list[dict[str, Any]]:
    """The modelled SMPI cases of the sweep (the ones timed without host bursts)."""
    out = []
    for rec in cache["cases"].values():
        s = rec.get("settings", {})
        if rec.get("kind") == "smpi" and s.get("compute") == "modelled" \
                and s.get("host_bursts") == "off":
            out.append(rec)
    return out


def predict(rec: dict[str, Any]) -> plan.Prediction:
    s = rec["settings"]
    scaling = REPO / "benchmarks" / "results" / "scaling"
    if s.get("network") == "conv":
        costs = plan.load_costs(scaling / f"costs_conv_{s['dataset']}.json")
    else:
        costs = plan.load_costs(scaling / f"costs_w{s['width']}_b{s['batch']}.json")
    settings = plan.Settings(max_levels=s["levels"], cfactor=s["cfactor"], relax=s["relax"],
                             spatial=s.get("spatial", 0),
                             spatial_states=bool(s.get("spatial_states")))
    iters = (rec["iterations_forward"], rec["iterations_adjoint"])
    return plan.predict(s["depth"], s["ranks"], settings, iters, costs,
                        plan.load_platform(s["platform"]), skip_first=not s.get("no_skip"))


def compare() -> list[dict[str, Any]]:
    cache = json.loads(CACHE.read_text())
    rows = []
    for rec in modelled_cases(cache):
        s = rec["settings"]
        p = predict(rec)
        conv = s.get("network") == "conv"
        rows.append({"platform": s["platform"], "depth": s["depth"],
                     "network": f"conv {s['dataset']} S={s.get('spatial', 0)}" if conv
                     else "dense",
                     "width": s["width"] if not conv else f"C{s['channels']} {s['image']}",
                     "batch": s["batch"], "ranks": s["ranks"], "levels": s["levels"],
                     "cfactor": s["cfactor"], "relax": s["relax"],
                     "mode": s["mode"] + (" no-skip" if s.get("no_skip") else ""),
                     "iterations": [rec["iterations_forward"], rec["iterations_adjoint"]],
                     "simulated": rec["time"], "predicted": p.total,
                     "ratio": p.total / rec["time"]})
    rows.sort(key=lambda r: (r["platform"], r["network"], r["mode"], r["depth"], str(r["width"]),
                             r["relax"], r["levels"], r["cfactor"], r["ranks"]))
    return rows


def section(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No modelled SMPI cases in benchmarks/results/scaling.json yet (run run.py).\n"
    ratios = [r["ratio"] for r in rows]
    outside = [r for r in rows if abs(r["ratio"] - 1) > TOLERANCE]
    lines = [
        "Reproduce: `.venv/bin/python benchmarks/scaling/plan_check.py` (after run.py; "
        "`make scaling` runs both). Every modelled case of the sweep above, predicted by "
        "`layerbraid.plan.predict` with the same settings, iteration counts, cost table and "
        "platform; *ratio* = predicted / simulated.",
        "",
        f"{len(rows)} cases: ratio median {statistics.median(ratios):.3f}, "
        f"min {min(ratios):.3f}, max {max(ratios):.3f}; "
        f"{len(rows) - len(outside)} of {len(rows)} within {TOLERANCE:.0%}.",
        "",
        "| platform | network | mode | N | cases | ratio median | min | max | largest P: "
        "simulated s / predicted s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        net = r["network"].split(" S=")[0]
        groups.setdefault((r["platform"], net, r["mode"], r["depth"]), []).append(r)
    for (platform, net, mode, depth), rs in sorted(groups.items()):
        q = [r["ratio"] for r in rs]
        top = max(rs, key=lambda r: (r["ranks"], -r["simulated"]))
        lines.append(f"| {platform} | {net} | {mode} | {depth} | {len(rs)} | "
                     f"{statistics.median(q):.3f} "
                     f"| {min(q):.3f} | {max(q):.3f} | P={top['ranks']}: "
                     f"{top['simulated']:.4g} / {top['predicted']:.4g} |")
    lines.append("")
    if outside:
        lines += ["Outside 20 %:", "",
                  "| platform | network | mode | N | W | relax | levels | cf | P | simulated s | "
                  "predicted s | ratio |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in outside:
            lines.append(f"| {r['platform']} | {r['network']} | {r['mode']} | {r['depth']} | "
                         f"{r['width']} | "
                         f"{r['relax']} | {r['levels']} | {r['cfactor']} | {r['ranks']} | "
                         f"{r['simulated']:.4g} | {r['predicted']:.4g} | {r['ratio']:.3f} |")
        lines.append("")
    lines += ["Every case is in benchmarks/results/scaling_plan.json. The model runs in "
              "milliseconds (`layerbraid plan`); a simulated case took up to minutes of host "
              "time.", ""]
    return "\n".join(lines)


def write_section(text: str) -> None:
    begin, end = "<!-- BEGIN scaling-plan -->", "<!-- END scaling-plan -->"
    doc = BENCHMARKS.read_text()
    block = f"{begin}\n\n{text}\n{end}"
    if begin in doc:
        a, b = doc.index(begin), doc.index(end) + len(end)
        doc = doc[:a] + block + doc[b:]
    else:
        doc = doc.rstrip() + "\n\n## Scaling: `layerbraid plan` against the simulation\n" \
            + block + "\n"
    BENCHMARKS.write_text(doc)


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    rows = compare()
    OUT.write_text(json.dumps({"tolerance": TOLERANCE, "cases": rows}, indent=1) + "\n")
    text = section(rows)
    write_section(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
