"""What one callback from the MGRIT engine into Python costs.

Measured, each as the fastest of --repeats runs (Solver set-up outside the timed region):

1. Sequential solve (max_levels=1, access_level=0, print_level=0) over ntime = 2^18, 2^19,
   2^20 steps with a step that does nothing on a one-element NumPy state: wall time of drive()
   divided by ntime = microseconds per step callback, with nothing subtracted (the engine's own
   loop and the C++ trampoline are in it). Beside it, the same for steps that read the status
   (status.tstart/status.tstop) and that do the Dahlquist update in place (the "full" App step),
   and for the Dahlquist step on Python float states.
2. Reference: a pure-Python ``for`` loop calling the same bound step method ntime times
   (a plain-attribute status object standing in for the engine's).
3. Two-level MGRIT (cfactor 2, FCF, skip off, abs_tol 0 so exactly max_iter cycles): the time
   of one MGRIT iteration per fine time point, from the difference of runs with 1 and 4
   iterations (so set-up, initial guess and the first cycle's allocations drop out).
4. Hot spots: callbacks per iteration per point (counted) times the Python-side cost of the
   App's clone/sum/norm bodies (timed here with timeit), beside the dispatch floor.

    .venv/bin/python benchmarks/python_driver/dispatch.py            # ~1 minute on 2 cores
    .venv/bin/python benchmarks/python_driver/dispatch.py --quick

Writes benchmarks/results/python_dispatch.json. Target (issue "Python driver over the
engine"): <= 1 microsecond per step callback.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
import timeit
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import layerbraid  # noqa: E402
from _common import machine_info, table, write_json  # noqa: E402
from apps import (Counting, DahlquistApp, FloatDahlquistApp, NoopApp,  # noqa: E402
                  StatusApp)

TARGET_US = 1.0
QUIET = dict(access_level=0, print_level=0)

STEP_VARIANTS: dict[str, tuple[str, Callable[[], Any]]] = {
    "noop": ("App subclass, `step: pass`, 1-element NumPy state", NoopApp),
    "status": ("App subclass, step reads status.tstart/tstop", StatusApp),
    "dahlquist": ("App subclass, Dahlquist step `u *= 1/(1-lambda dt)` (full App)",
                  DahlquistApp),
    "float": ("protocol app, Python float state, Dahlquist step returns a new float",
              FloatDahlquistApp),
}


def best_of(repeats: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeats))


def time_drive(make_app: Callable[[], Any], ntime: int, **options: Any) -> float:
    solver = layerbraid.Solver(make_app(), 0.0, 5.0, ntime, **QUIET, **options)
    try:
        start = time.perf_counter()
        solver.drive()
        return time.perf_counter() - start
    finally:
        solver.close()


def python_loop(make_app: Callable[[], Any], ntime: int) -> float:
    """The same bound step method called ntime times from a Python for loop."""
    app = make_app()
    if isinstance(app, layerbraid.App):
        app.bind(0.0, 5.0, ntime)
    u = app.init(0.0)
    status = SimpleNamespace(tstart=0.0, tstop=5.0 / ntime, level=0, nlevels=1, iteration=0,
                             tindex=0)
    step = app.step
    start = time.perf_counter()
    for _ in range(ntime):
        out = step(u, u, status)
        if out is not None:
            u = out
    return time.perf_counter() - start


def sequential(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for key, (label, make) in STEP_VARIANTS.items():
        for n in sizes:
            engine = best_of(repeats, lambda: time_drive(make, n, max_levels=1))
            loop = best_of(repeats, lambda: python_loop(make, n))
            rows.append({"variant": key, "description": label, "ntime": n,
                         "engine_us_per_step": engine / n * 1e6,
                         "python_loop_us_per_step": loop / n * 1e6})
    return rows


def two_level(ntime: int, repeats: int, iters: tuple[int, int] = (1, 4)) -> list[dict[str, Any]]:
    k1, k2 = iters
    opts = dict(max_levels=2, cfactor=2, nrelax=1, skip=False, abs_tol=0.0)
    rows = []
    for key in ("noop", "dahlquist", "float"):
        label, make = STEP_VARIANTS[key]
        t1 = best_of(repeats, lambda: time_drive(make, ntime, max_iter=k1, **opts))
        t2 = best_of(repeats, lambda: time_drive(make, ntime, max_iter=k2, **opts))
        per_iter = (t2 - t1) / (k2 - k1)
        rows.append({"variant": key, "description": label, "ntime": ntime,
                     "iterations": [k1, k2], "seconds": [t1, t2],
                     "s_per_iteration": per_iter,
                     "us_per_iteration_per_point": per_iter / (ntime + 1) * 1e6})
    return rows


def callback_counts(ntime: int = 4096, iters: tuple[int, int] = (1, 4)) -> dict[str, Any]:
    """Callbacks per MGRIT iteration per fine point (2 levels, cf 2, FCF), steady state."""
    opts = dict(max_levels=2, cfactor=2, nrelax=1, skip=False, abs_tol=0.0)
    counts = []
    kinds = []
    for k in iters:
        inner = DahlquistApp()
        inner.bind(0.0, 5.0, ntime)
        app = Counting(inner)
        with layerbraid.Solver(app, 0.0, 5.0, ntime, max_iter=k, **QUIET, **opts) as s:
            s.drive()
        counts.append(app.calls)
        kinds.append(app.sum_kinds)
    k1, k2 = iters
    per = {name: (counts[1][name] - counts[0][name]) / (k2 - k1) / (ntime + 1)
           for name in Counting.METHODS}
    sums = {f"alpha={a:g},beta={b:g}":
            (kinds[1][(a, b)] - kinds[0][(a, b)]) / (k2 - k1) / (ntime + 1)
            for (a, b) in kinds[1]}
    return {"ntime": ntime, "per_iteration_per_point": per, "sum_kinds": sums}


def vector_op_costs(number: int = 200_000) -> dict[str, float]:
    """Microseconds per call of the App's Python bodies on a one-element float64 state."""
    app = DahlquistApp()
    app.bind(0.0, 5.0, 1024)
    fapp = FloatDahlquistApp()
    x, y = np.ones(1), np.ones(1)
    st = SimpleNamespace(tstart=0.0, tstop=0.01)
    buf = memoryview(bytearray(8))
    cases = {
        "python call of an empty method": lambda: app_noop.step(x, x, st),
        "App.step (Dahlquist, in place)": lambda: app.step(x, x, st),
        "App.clone": lambda: app.clone(x),
        "App.sum(1, x, 0, y)": lambda: app.sum(1.0, x, 0.0, y),
        "App.sum(1, x, 1, y)": lambda: app.sum(1.0, x, 1.0, y),
        "App.sum(-1, x, 1, y)": lambda: app.sum(-1.0, x, 1.0, y),
        "App.sum(1, x, -1, y)": lambda: app.sum(1.0, x, -1.0, y),
        "App.sum(0.5, x, 0.7, y)": lambda: app.sum(0.5, x, 0.7, y),
        "App.norm": lambda: app.norm(x),
        "alternative for sum(1, x, 0, y): np.copyto(y, x)": lambda: np.copyto(y, x),
        "alternative for sum(1, x, -1, y): np.subtract(x, y, out=y)":
            lambda: np.subtract(x, y, out=y),
        "alternative for norm: math.sqrt(np.dot(x, x))": lambda: math.sqrt(np.dot(x, x)),
        "App.pack": lambda: app.pack(x, buf, None),
        "App.unpack": lambda: app.unpack(buf, None),
        "float app step": lambda: fapp.step(1.0, None, st),
        "float app sum": lambda: fapp.sum(1.0, 2.0, -1.0, 3.0),
        "float app norm": lambda: fapp.norm(-2.0),
    }
    app_noop = NoopApp()
    out = {}
    for name, fn in cases.items():
        best = min(timeit.repeat(fn, number=number, repeat=3)) / number
        empty = min(timeit.repeat(lambda: None, number=number, repeat=3)) / number
        out[name] = (best - empty) * 1e6  # the lambda's own call taken out
    return out


def _weighted_sum_cost(ops: dict[str, float], kinds: dict[str, float]) -> float:
    """Mean Python cost of App.sum over the (alpha, beta) pairs the engine actually passes."""
    total = weight = 0.0
    for key, n in kinds.items():
        a, b = (float(part.split("=")[1]) for part in key.split(","))
        name = f"App.sum({a:g}, x, {b:g}, y)"
        cost = ops.get(name, ops["App.sum(0.5, x, 0.7, y)"])
        total += n * cost
        weight += n
    return total / weight if weight else float("nan")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (~10 s)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--output", default="python_dispatch.json")
    args = p.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 3)
    sizes = [2**16, 2**17] if args.quick else [2**18, 2**19, 2**20]
    ntime2 = 2**13 if args.quick else 2**16

    t_start = time.perf_counter()
    seq = sequential(sizes, repeats)
    ml2 = two_level(ntime2, max(2, repeats - 2))
    counts = callback_counts(2**10 if args.quick else 2**12)
    ops = vector_op_costs(50_000 if args.quick else 200_000)
    elapsed = time.perf_counter() - t_start

    noop = [r for r in seq if r["variant"] == "noop"]
    headline = min(r["engine_us_per_step"] for r in noop)
    headline_largest = noop[-1]["engine_us_per_step"]
    dispatch_floor = headline

    print(f"\nSequential solve (max_levels=1): microseconds per step callback "
          f"(fastest of {repeats})")
    print(table(["step", "ntime", "engine → Python µs/step", "Python for-loop µs/call",
                 "engine / loop"],
                [[r["variant"], f"2^{r['ntime'].bit_length() - 1}", r["engine_us_per_step"],
                  r["python_loop_us_per_step"],
                  f"{r['engine_us_per_step'] / r['python_loop_us_per_step']:.1f}×"]
                 for r in seq]))
    print(f"\nTwo-level MGRIT (cf 2, FCF, skip off), ntime 2^{ntime2.bit_length() - 1}: "
          "time per iteration per fine point (iterations 1→4 difference)")
    print(table(["app", "s/iteration", "µs/iteration/point"],
                [[r["variant"], r["s_per_iteration"], r["us_per_iteration_per_point"]]
                 for r in ml2]))

    per = counts["per_iteration_per_point"]
    dq = next(r for r in ml2 if r["variant"] == "dahlquist")
    body = {"step": ops["App.step (Dahlquist, in place)"], "clone": ops["App.clone"],
            "sum": _weighted_sum_cost(ops, counts["sum_kinds"]),
            "norm": ops["App.norm"], "pack": ops["App.pack"], "unpack": ops["App.unpack"]}
    hot = []
    for name in ("step", "clone", "sum", "norm"):
        n = per[name]
        b = float(body[name])
        hot.append({"callback": name, "calls_per_iteration_per_point": n, "python_body_us": b,
                    "dispatch_us": dispatch_floor,
                    "estimated_us_per_iteration_per_point": n * (b + dispatch_floor)})
    est_total = sum(h["estimated_us_per_iteration_per_point"] for h in hot)
    print(f"\nWhere a two-level iteration goes (Dahlquist App; dispatch floor "
          f"{dispatch_floor:.2f} µs/call from the sequential noop)")
    print(table(["callback", "calls/iter/point", "Python body µs", "≈ µs/iter/point"],
                [[h["callback"], h["calls_per_iteration_per_point"], h["python_body_us"],
                  h["estimated_us_per_iteration_per_point"]] for h in hot]
                + [["total of the above", "", "", est_total],
                   ["measured", "", "", dq["us_per_iteration_per_point"]]]))
    print("\nPython-side cost of single calls (µs, timeit, one-element float64 state):")
    print(table(["call", "µs"], [[k, v] for k, v in ops.items()]))
    verdict = "meets" if headline <= TARGET_US else "misses"
    print(f"\nDispatch: {headline:.3f} µs per step callback (fastest size; "
          f"{headline_largest:.3f} µs at 2^{sizes[-1].bit_length() - 1}) — {verdict} the "
          f"{TARGET_US:g} µs target. ({elapsed:.0f} s)")

    payload = {
        "benchmark": "python_dispatch",
        "command": "python benchmarks/python_driver/dispatch.py"
                   + (" --quick" if args.quick else ""),
        "machine": machine_info(),
        "target_us_per_call": TARGET_US,
        "us_per_step_callback": headline,
        "meets_target": headline <= TARGET_US,
        "repeats": repeats,
        "sequential": seq,
        "two_level": ml2,
        "callback_counts_two_level": counts,
        "python_body_us": ops,
        "two_level_breakdown": hot,
        "elapsed_s": elapsed,
    }
    path = write_json(args.output, payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    gc.collect()
    main()
