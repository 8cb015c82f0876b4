#!/usr/bin/env python3
"""Engine benchmark: the MGRIT engine's own cost per iteration (benchmarks/engine).

Builds bench_engine.c with the mpich wheel's mpicc against extern/braid (no CMake needed),
runs it over a grid of cases on 1 and 2 ranks, writes benchmarks/results/engine.json and
updates the "Engine" section of benchmarks/BENCHMARKS.md.

    .venv/bin/python benchmarks/engine/run.py            # full set, < 10 min on 2 cores
    .venv/bin/python benchmarks/engine/run.py --quick    # smoke version, ~30 s

Every number of a case comes from one run of the program (one JSON line), so ratios inside a
case (iteration / sweep, callbacks / wall) are taken inside one run.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ENGINE = ROOT / "extern" / "braid"
SOURCE = HERE / "bench_engine.c"
BUILD = ROOT / "build" / "bench_engine"
RESULTS = ROOT / "benchmarks" / "results" / "engine.json"
MARKDOWN = ROOT / "benchmarks" / "BENCHMARKS.md"
ENGINE_HASH = ""

CONFIGS = [  # (max levels, coarsening factor): two-level FCF with m = 2, 4, 8; multilevel
    (2, 2),
    (2, 4),
    (2, 8),
    (30, 2),
]


# --------------------------------------------------------------------------------------------
# tools
# --------------------------------------------------------------------------------------------

def venv_bin(name: str) -> Path:
    """A program of the project's .venv (or of the running interpreter's environment)."""
    for d in (ROOT / ".venv" / "bin", Path(sys.prefix) / "bin"):
        p = d / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    sys.exit(f"run.py: no {name} in {ROOT / '.venv' / 'bin'}; set up the environment first "
             "with: make venv")


def find_mpiexec() -> Path:
    """The mpich wheel's mpiexec, as layerbraid.find_mpiexec() finds it.

    Asked of the venv's Python; should layerbraid not import (it is edited alongside), the
    mpich distribution's own file list is asked the same way, then .venv/bin/mpiexec."""
    py = str(venv_bin("python"))
    for code in (
        "import layerbraid; print(layerbraid.find_mpiexec())",
        "import importlib.metadata as m, os; d = m.distribution('mpich'); "
        "print(next(os.path.abspath(d.locate_file(f)) for f in d.files "
        "if f.name == 'mpiexec' and f.parent.name == 'bin'))",
    ):
        r = subprocess.run([py, "-c", code], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() and Path(r.stdout.strip()).is_file():
            return Path(r.stdout.strip())
    return venv_bin("mpiexec")


def build(verbose: bool, engine: Path = ENGINE, build_dir: Path = BUILD) -> Path:
    """Compile the engine sources (extern/braid, or another tree of them) and the benchmark
    with -O3 into build_dir (build/bench_engine/)."""
    mpicc = venv_bin("mpicc")
    build_dir.mkdir(parents=True, exist_ok=True)
    inc = ["-I", str(engine / "include"), "-I", str(engine / "src")]
    # -g only adds symbols (for perf); the code is the same as without it
    common = ["-O3", "-g", "-std=c99", "-DNDEBUG"]
    jobs = []
    for src in sorted((engine / "src").glob("*.c")):
        jobs.append(([str(mpicc), *common, *inc, "-c", str(src), "-o",
                      str(build_dir / (src.stem + ".o"))], src))
    jobs.append(([str(mpicc), *common, "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", *inc,
                  "-c", str(SOURCE), "-o", str(build_dir / "bench_engine_main.o")], SOURCE))

    def compile_one(job):
        cmd, src = job
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"compiling {src} failed:\n{' '.join(cmd)}\n{r.stderr}")
        if verbose and r.stderr.strip() and src == SOURCE:
            print(r.stderr, file=sys.stderr)
        return src

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(compile_one, jobs))
    exe = build_dir / "bench_engine"
    objs = [str(build_dir / (src.stem + ".o")) for _, src in jobs[:-1]]
    cmd = [str(mpicc), "-O3", "-g", str(build_dir / "bench_engine_main.o"), *objs, "-lm", "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"linking failed:\n{' '.join(cmd)}\n{r.stderr}")
    return exe


# --------------------------------------------------------------------------------------------
# the model: step calls of one FCF V-cycle, in units of ntime (sweeps)
# --------------------------------------------------------------------------------------------

def level_sizes(ntime: int, ml: int, cf: int, mincoarse: int = 2) -> list[int]:
    """gupper of every level the engine builds (the same rule as extern/braid/src/grid.c)."""
    g = [ntime]
    while len(g) < ml and len(g) < 32 and g[-1] // cf >= mincoarse:
        g.append(g[-1] // cf)
    return g


def model_sweeps(ntime: int, ml: int, cf: int, nu: int = 1) -> dict:
    """Step calls of one V-cycle by phase, over ntime: the textbook FAS FCF cycle.

    Level l < L-1: nu FC sweeps (g_l each), the restriction sweep (F-relaxation plus the step
    to each C-point that gives the residual / FAS value, g_l), the FAS coarse step
    Phi_c(v_{j-1}) at every point of level l+1 (g_{l+1}), and on levels 0 < l < L-1 the
    F-relaxation before the correction goes down (g_l - g_{l+1}). Coarsest: a sequential
    solve (g_{L-1}).
    """
    g = level_sizes(ntime, ml, cf)
    L = len(g)
    out = {"relax": 0, "restrict": 0, "fas": 0, "interp": 0, "coarse": g[-1]}
    for l in range(L - 1):
        out["relax"] += nu * g[l]
        out["restrict"] += g[l]
        out["fas"] += g[l + 1]
        if l >= 1:
            out["interp"] += g[l] - g[l + 1]
    out = {k: v / ntime for k, v in out.items()}
    out["total"] = sum(out.values())
    out["nlevels"] = L
    return out


def speedup_bound(m: dict, ranks: int) -> float:
    """Step-work speedup on `ranks` ranks if every sweep but the coarsest-level solve divided
    perfectly: the sequential coarse solve is the serial part (Amdahl)."""
    par = m["total"] - m["coarse"]
    return m["total"] / (par / ranks + m["coarse"])


# --------------------------------------------------------------------------------------------
# running cases
# --------------------------------------------------------------------------------------------

def iters_for(ntime: int) -> int:
    """More cycles for small problems, whose iterations are short and noisy."""
    if ntime <= 1 << 10:
        return 21
    if ntime <= 1 << 14:
        return 11
    return 6


def case_list(quick: bool) -> list[dict]:
    cases = []
    if quick:
        grid = [("trivial", [1 << 10, 1 << 14], [(2, 2), (2, 4), (30, 2)]),
                ("dense", [1 << 10], [(2, 2), (2, 8)])]
    else:
        grid = [("trivial", [1 << 10, 1 << 14, 1 << 17, 1 << 20], CONFIGS),
                ("dense", [1 << 10, 1 << 14, 1 << 17], CONFIGS)]
    for step, sizes, configs in grid:
        for ntime in sizes:
            for ml, cf in configs:
                for ranks in (1, 2):
                    cases.append(dict(step=step, ntime=ntime, ml=ml, cf=cf, nu=1, ranks=ranks,
                                      iters=5 if quick else iters_for(ntime)))
    return cases


def cpu_busy(interval: float = 0.3) -> float:
    """Fraction of all cores busy over `interval` seconds (from /proc/stat), or -1."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)  # idle + iowait, total
    try:
        i0, t0 = read()
        time.sleep(interval)
        i1, t1 = read()
    except (OSError, ValueError, IndexError):
        return -1.0
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def wait_idle(budget: list[float], threshold: float = 0.25) -> float:
    """Wait (from the shared budget of seconds) until other work leaves the cores alone."""
    busy = cpu_busy()
    while busy > threshold and budget[0] > 0:
        time.sleep(2.0)
        budget[0] -= 2.3
        busy = cpu_busy()
    return busy


def run_case(exe: Path, mpiexec: Path, case: dict, width: int, batch: int,
             timeout: float, budget: list[float]) -> dict:
    args = [str(mpiexec), "-n", str(case["ranks"]), str(exe),
            "-ntime", str(case["ntime"]), "-ml", str(case["ml"]), "-cf", str(case["cf"]),
            "-nu", str(case["nu"]), "-iters", str(case["iters"]), "-step", case["step"]]
    if case["step"] == "dense":
        args += ["-width", str(width), "-batch", str(batch)]
    busy = wait_idle(budget)
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    # own session, so a timeout can end the whole launcher process group
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise RuntimeError(f"timed out after {timeout:.0f} s: {' '.join(args)}") from None
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}): {' '.join(args)}\n{err}")
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"no JSON line from: {' '.join(args)}\n{out}\n{err}")
    data = json.loads(lines[-1])
    data["command"] = " ".join([Path(args[0]).name, *args[1:3], "bench_engine", *args[4:]])
    data["run_seconds"] = round(elapsed, 3)
    data["loadavg_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    data["cores_busy_before"] = round(busy, 2)  # other work on the machine just before
    data["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    data["engine_sources_sha256"] = ENGINE_HASH
    return data


def derive_all(cases: list[dict]) -> None:
    """Add the model and the ratios the tables show, once every case has run.

    The time of an iteration is the thread CPU time of the fastest steady iteration (max over
    ranks): on a shared machine it does not count the time another process held the core,
    and a rank waiting for its neighbour polls, so waiting still counts. The unit "one
    sweep" is the sequential sweep on one rank (its CPU time; the fastest of the 1-rank runs
    of the same step and size), the same for 1 and 2 ranks.
    """
    one = {(c["step"], c["ntime"], c["ml"], c["cf"]): c for c in cases if c["nprocs"] == 1}
    # the unit: the fastest sequential sweep of all 1-rank runs of the same step and size
    units: dict = {}
    for c in cases:
        if c["nprocs"] == 1:
            u = c["sweep"].get("cpu") or c["sweep"]["wall"]
            key = (c["step"], c["ntime"])
            units[key] = min(units.get(key, u), u)
    for d in cases:
        m = model_sweeps(d["ntime"], d["ml"], d["cf"], d["nu"])
        d["model"] = m
        mg = d.get("mgrit")
        if not mg:
            continue
        p = mg["per_iter"]
        det = p["detail"]
        # 1 rank: CPU time (no waiting, and immune to other processes taking the core);
        # 2 ranks: wall time (waiting for the neighbour is part of the iteration)
        if d["nprocs"] == 1 and p.get("cpu", 0) > 0:
            T, kind = p["cpu"], "thread CPU time of the fastest steady iteration"
            mpi = p["mpi_time_plain"]
        else:
            T, kind = p["wall"], "wall time of the fastest steady iteration, max over ranks"
            mpi = p["mpi_time_plain"]
        ref = one.get((d["step"], d["ntime"], d["ml"], d["cf"]))
        unit = units.get((d["step"], d["ntime"]))
        t, c, tc = det["time"], det["count"], d["timer_cost"]

        def corrected(*names):
            # max-over-ranks time less the clock's share, for one rank's calls
            tt = sum(t[n] for n in names)
            nn = sum(c[n] for n in names) / d["nprocs"]
            return max(tt - nn * tc, 0.0)

        cb = p["callback_time"]
        engine = T - cb  # MPI and clock reads included
        # the engine's MPI_Wtime calls: counted (all ranks), cost per call measured once
        wt = det.get("mpi_wtime_count", 0) / d["nprocs"] * d.get("mpi_wtime_cost", 0)
        share = {}
        if T > 0:
            share = {
                "step": (cb - p["callback_time_nonstep"]) / T,
                "clone_free": corrected("clone", "free") / T,
                "sum_norm": corrected("sum", "norm") / T,
                "pack_unpack": corrected("pack", "unpack", "bufsize") / T,
                "engine_excl_mpi": (engine - mpi - wt) / T,
                "mpi": mpi / T,
                "mpi_wtime": wt / T,
            }
        steps_time = corrected("step")
        # cross-check: the engine's share measured inside the instrumented run alone (its own
        # iteration time less the clock readings); unreliable for the trivial step, where
        # the clock's cost in a tight loop overstates its cost inside the callbacks
        D = p.get("instr_iter_time", 0) - p.get("instr_clock_overhead", 0)
        share_alt = (1 - cb / D - mpi / T) if D > 0 and T > 0 else None
        derived = {
            "iter_time": T,
            "iter_time_kind": kind,
            "unit_sweep_time": unit,
            "sweeps_steps": p["sweeps_steps"],
            "sweeps_model": m["total"],
            # iteration time in units of one sequential sweep on one rank
            "sweeps_time": T / unit if unit else None,
            # the time the iteration would take doing only its step calls at the sweep's rate
            "efficiency_vs_model": (m["total"] * unit / T) if unit and T > 0 else None,
            "engine_ns_per_point": 1e9 * engine / d["ntime"],
            "mpi_ns_per_point": 1e9 * mpi / d["ntime"],
            "mpi_wtime_calls_per_step": (det.get("mpi_wtime_count", 0) / c["step"]
                                         if c["step"] else None),
            "step_time_per_call_mgrit": (steps_time / (c["step"] / d["nprocs"])
                                         if c["step"] else None),
            "share_of_iteration": share,
            "engine_share_from_instr_run": share_alt,
        }
        if d["nprocs"] > 1 and ref is not None and ref.get("derived"):
            r = ref["mgrit"]["per_iter"]
            rT = ref["derived"]["iter_time"]
            derived["speedup_vs_1_rank"] = rT / T if T > 0 else None
            derived["speedup_bound"] = speedup_bound(m, d["nprocs"])
            derived["speedup_vs_1_rank_wall"] = r["wall"] / p["wall"] if p["wall"] > 0 else None
        d["derived"] = derived


# --------------------------------------------------------------------------------------------
# machine, profile, output
# --------------------------------------------------------------------------------------------

def engine_hash() -> str:
    """A hash of the engine's sources (they are edited concurrently: this pins what ran)."""
    h = hashlib.sha256()
    for f in sorted(ENGINE.glob("src/*")) + sorted(ENGINE.glob("include/*")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    mpicc = venv_bin("mpicc")
    cc = subprocess.run([str(mpicc), "--version"], capture_output=True, text=True).stdout
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "compiler": cc.splitlines()[0] if cc else "unknown",
        "flags": "-O3 -g -std=c99 -DNDEBUG",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        # the engine is edited concurrently: this pins the exact sources measured
        "engine_sources_sha256": engine_hash(),
    }


def engine_symbols() -> set[str]:
    """Functions defined in the engine's object files (for the profile's categories)."""
    names: set[str] = set()
    nm = shutil.which("nm")
    if nm is None:
        return names
    for o in BUILD.glob("*.o"):
        if o.name == "bench_engine_main.o":
            continue
        out = subprocess.run([nm, "--defined-only", str(o)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "tT":
                names.add(parts[2])
    return names


PERF_CATEGORIES = ["app step", "app other callbacks", "engine", "malloc/free", "clock reads",
                   "MPI library", "benchmark harness", "kernel", "other"]


def categorise(dso: str, sym: str, kind: str, eng: set[str]) -> str:
    if kind == "k":
        return "kernel"
    if sym == "my_step":
        return "app step"
    if sym.startswith("my_"):
        return "app other callbacks"
    if sym in eng or sym.startswith("_braid_") or sym.startswith("braid_"):
        return "engine"
    if re.match(r"(_int_|__libc_)?(malloc|free|cfree|calloc)|_int_free|_int_malloc|"
                r"malloc_consolidate|unlink_chunk|tcache", sym):
        return "malloc/free"
    if "clock_gettime" in sym or sym.endswith("_Wtime") or "vdso" in dso:
        return "clock reads"
    if "libmpi" in dso or "libuc" in dso or re.match(r"P?MPI|MPIR|MPID|ucp_|uct_|ucs_", sym):
        return "MPI library"
    if sym in ("main", "run_once", "now", "plain_sync", "wall_clock", "cpu_clock"):
        return "benchmark harness"
    return "other"


def profile_one(perf: str, exe: Path, mpiexec: Path, ranks: int) -> dict | None:
    data = BUILD / f"perf{ranks}.data"
    args = [str(exe), "-ntime", str(1 << 20), "-ml", "2", "-cf", "2", "-iters", "12",
            "-instr", "0", "-reps", "1"]
    launch = args if ranks == 1 else [str(mpiexec), "-n", str(ranks), *args]
    r = subprocess.run([perf, "record", "-q", "-F", "4000", "-o", str(data), "--", *launch],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"run.py: perf record failed; skipped\n{r.stderr}", file=sys.stderr)
        return None
    rep = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children",
                          "--sort", "dso,symbol", "--percent-limit", "0.2"],
                         capture_output=True, text=True).stdout
    data.unlink(missing_ok=True)
    eng = engine_symbols()
    rows, cats = [], {k: 0.0 for k in PERF_CATEGORIES}
    for line in rep.splitlines():
        mt = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(\S+)", line)
        if not mt:
            continue
        pc, dso, kind, sym = float(mt.group(1)), mt.group(2), mt.group(3), mt.group(4)
        cat = categorise(dso, sym, kind, eng)
        cats[cat] += pc
        rows.append({"symbol": sym, "dso": dso, "percent": pc, "category": cat})
    return {"ranks": ranks,
            "command": "perf record -F 4000 -- " + ("" if ranks == 1 else
                                                    f"mpiexec -n {ranks} ")
                       + " ".join(["bench_engine", *args[1:]]),
            "categories": {k: round(v, 1) for k, v in cats.items()},
            "top": rows[:30]}


def profile(exe: Path, mpiexec: Path) -> dict | None:
    """Flat perf profiles of the plain (uninstrumented) trivial-step run on 1 and 2 ranks."""
    perf = shutil.which("perf")
    if perf is None:
        print("run.py: --perf: no perf on PATH; skipped", file=sys.stderr)
        return None
    runs = [p for p in (profile_one(perf, exe, mpiexec, n) for n in (1, 2)) if p]
    if not runs:
        return None
    return {"note": "flat self-time profiles (% of samples) of whole program runs: clock "
                    "calibration (20 ms of clock reads), sequential sweep, initial guess and 12 "
                    "MGRIT cycles with plain callbacks; the 2-rank profile covers both ranks "
                    "and the launcher",
            "runs": runs}


def fmt(x, spec=".3g"):
    return "–" if x is None else format(x, spec)


def pct(x):
    if x is None:
        return "–"
    v = round(100 * x)
    return "0" if v == 0 else f"{v:.0f}"


def sizes_label(n: int) -> str:
    return f"2^{n.bit_length() - 1}" if n & (n - 1) == 0 else str(n)


def table(cases: list[dict], step: str) -> str:
    head = ("| ntime | ranks | levels | cf | step calls / iter (sweeps) | model | "
            "iter (ms) | ns / point | iter / sweep | step % | clone+free % | sum+norm % | "
            "engine % | MPI % | MPI_Wtime % | engine ns / point | 2-rank speedup (wall) | "
            "bound |\n"
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            "---:|\n")
    rows = []
    for c in cases:
        if c["step"] != step or not c.get("mgrit"):
            continue
        p = c["mgrit"]["per_iter"]
        d = c["derived"]
        sh = d["share_of_iteration"]
        speed = bound = ""
        if d.get("speedup_vs_1_rank") is not None:
            speed = f"{d['speedup_vs_1_rank']:.2f} ({fmt(d.get('speedup_vs_1_rank_wall'), '.2f')})"
            bound = f"{d['speedup_bound']:.2f}"
        rows.append(
            f"| {sizes_label(c['ntime'])} | {c['nprocs']} | {c['nlevels']} | {c['cf']} | "
            f"{p['sweeps_steps']:.3f} | {d['sweeps_model']:.3f} | {1e3 * d['iter_time']:.3g} | "
            f"{1e9 * d['iter_time'] / c['ntime']:.0f} | {fmt(d['sweeps_time'], '.2f')} | "
            f"{pct(sh.get('step'))} | {pct(sh.get('clone_free'))} | {pct(sh.get('sum_norm'))} | "
            f"{pct(sh.get('engine_excl_mpi'))} | {pct(sh.get('mpi'))} | "
            f"{pct(sh.get('mpi_wtime'))} | "
            f"{d['engine_ns_per_point']:.0f} | {speed} | {bound} |")
    return head + "\n".join(rows) + "\n"


def pick(cases, **kw):
    for c in cases:
        if all(c.get(k) == v for k, v in kw.items()) and c.get("mgrit"):
            return c
    return None


def ideal_table(cases: list[dict]) -> str:
    """Measured step work per iteration against the ideal 2 + 1/m (+ coarse solve)."""
    dense_sizes = sorted({c["ntime"] for c in cases if c["step"] == "dense"})
    triv_sizes = sorted({c["ntime"] for c in cases if c["step"] == "trivial"})
    nd = dense_sizes[-1] if dense_sizes else None
    nt = triv_sizes[-1] if triv_sizes else None
    lines = ["| cf m | ideal 2 + 1/m | + coarse solve 1/m | measured step calls / ntime "
             "(fine / FAS / coarse) | "
             f"dense {sizes_label(nd) if nd else ''}: iter / sweep (efficiency) | "
             f"trivial {sizes_label(nt) if nt else ''}: iter / sweep | "
             "2-rank speedup dense (trivial) | bound |",
             "|---:|---:|---:|---|---:|---:|---:|---:|"]
    for cf in (2, 4, 8):
        t1 = pick(cases, step="trivial", ntime=nt, ml=2, cf=cf, nprocs=1) if nt else None
        t2 = pick(cases, step="trivial", ntime=nt, ml=2, cf=cf, nprocs=2) if nt else None
        d1 = pick(cases, step="dense", ntime=nd, ml=2, cf=cf, nprocs=1) if nd else None
        d2 = pick(cases, step="dense", ntime=nd, ml=2, cf=cf, nprocs=2) if nd else None
        src = t1 or d1
        if src is None:
            continue
        ss = src["mgrit"]["per_iter"]["detail"]["step_sweeps"]
        fine = ss["relax"] + ss["restrict"]
        meas = (f"{src['mgrit']['per_iter']['sweeps_steps']:.4f} "
                f"({fine:.3f} / {ss['fas']:.3f} / {ss['coarse']:.3f})")
        dense = "–"
        if d1:
            dense = (f"{d1['derived']['sweeps_time']:.3f} "
                     f"({pct(d1['derived']['efficiency_vs_model'])}%)")
        triv = fmt(t1["derived"]["sweeps_time"], ".2f") if t1 else "–"
        sp_d = fmt(d2["derived"].get("speedup_vs_1_rank"), ".2f") if d2 else "–"
        sp_t = fmt(t2["derived"].get("speedup_vs_1_rank"), ".2f") if t2 else "–"
        bound = speedup_bound(src["model"], 2)
        lines.append(f"| {cf} | {2 + 1 / cf:.3f} | {2 + 2 / cf:.3f} | {meas} | {dense} | "
                     f"{triv} | {sp_d} ({sp_t}) | {bound:.2f} |")
    return "\n".join(lines) + "\n"


def analysis(cases: list[dict], prof: dict | None) -> str:
    """The measured facts behind the analysis, as bullet points with numbers from this run."""
    out = []
    triv_sizes = sorted({c["ntime"] for c in cases if c["step"] == "trivial"})
    dense_sizes = sorted({c["ntime"] for c in cases if c["step"] == "dense"})
    N = triv_sizes[-1] if triv_sizes else None
    for cf in (2, 4, 8):
        c = pick(cases, step="trivial", ntime=N, ml=2, cf=cf, nprocs=1)
        if not c:
            continue
        k = c["mgrit"]["per_iter"]["count_per_point"]
        det = c["mgrit"]["per_iter"]["detail"]["count"]
        out.append(
            f"- cf {cf}: per fine point and iteration {k['step']:.3f} steps, {k['clone']:.3f} "
            f"clones + {k['free']:.3f} frees (= {cf * k['clone']:.2f} per coarse interval), "
            f"{k['sum']:.3f} sums (of which {det['sum_copy'] / c['ntime']:.3f} copies with "
            f"beta = 0), {k['norm']:.3f} norms.")
    c = pick(cases, step="trivial", ntime=N, ml=2, cf=2, nprocs=1)
    if c:
        out.append(
            f"- Trivial step, {sizes_label(N)} points, 1 rank, cf 2: one iteration takes "
            f"{1e9 * c['derived']['iter_time'] / N:.0f} ns per point, of which the engine "
            f"itself (outside every callback) {c['derived']['engine_ns_per_point']:.0f} ns; the "
            f"sequential sweep takes {1e9 * c['derived']['unit_sweep_time'] / N:.0f} ns per "
            f"point with a {1e9 * c['sweep']['step_time_per_call']:.1f} ns step, so the "
            f"engine's fixed cost per step call is about "
            f"{1e9 * c['derived']['unit_sweep_time'] / N - 1e9 * c['sweep']['step_time_per_call']:.0f} ns.")
    for cf in (2, 8):
        c = pick(cases, step="dense", ntime=dense_sizes[-1] if dense_sizes else None, ml=2,
                 cf=cf, nprocs=1)
        if c:
            d = c["derived"]
            out.append(
                f"- Dense step ({c['width']} x {c['width']}, batch {c['batch']}, "
                f"{1e6 * c['sweep']['step_time_per_call']:.2f} us per step), "
                f"{sizes_label(c['ntime'])} points, 1 rank, cf {cf}: iteration = "
                f"{d['sweeps_time']:.3f} sweeps of time for {d['sweeps_model']:.3f} sweeps of "
                f"step calls (efficiency {pct(d['efficiency_vs_model'])}%); engine "
                f"{d['engine_ns_per_point']:.0f} ns per point "
                f"({pct(d['share_of_iteration'].get('engine_excl_mpi'))}% of the iteration), "
                f"clone+free {pct(d['share_of_iteration'].get('clone_free'))}%, sum+norm "
                f"{pct(d['share_of_iteration'].get('sum_norm'))}%.")
    for step, sizes in (("trivial", triv_sizes), ("dense", dense_sizes)):
        if not sizes:
            continue
        n = sizes[-1]
        parts = []
        for ml, cf in CONFIGS:
            b = pick(cases, step=step, ntime=n, ml=ml, cf=cf, nprocs=2)
            if b and b["derived"].get("speedup_vs_1_rank") is not None:
                parts.append(f"{'ML' if ml > 2 else 'cf ' + str(cf)}: "
                             f"{b['derived']['speedup_vs_1_rank']:.2f}x "
                             f"(wall {fmt(b['derived'].get('speedup_vs_1_rank_wall'), '.2f')}x; "
                             f"MPI {pct(b['derived']['share_of_iteration'].get('mpi'))}% of the "
                             f"2-rank iteration)")
        if parts:
            out.append(f"- 2 ranks vs 1, {step} step, {sizes_label(n)} points: "
                       + "; ".join(parts) + ".")
    for step, sizes in (("trivial", triv_sizes), ("dense", dense_sizes)):
        b = pick(cases, step=step, ntime=sizes[-1] if sizes else None, ml=2, cf=2, nprocs=2)
        if b and (b["derived"].get("mpi_wtime_calls_per_step") or 0) >= 0.5:
            out.append(
                f"- Clock reads, {step} step, {sizes_label(b['ntime'])} points, 2 ranks, cf 2: "
                f"the engine calls MPI_Wtime {b['derived']['mpi_wtime_calls_per_step']:.2f} "
                f"times per step call (`_braid_CheckNotices`, which paces its look for "
                f"failure notices from other ranks by the clock, runs before every step when "
                f"there is more than one rank), at {1e9 * b['mpi_wtime_cost']:.0f} ns a call "
                f"on this machine: {pct(b['derived']['share_of_iteration'].get('mpi_wtime'))}% "
                f"of the 2-rank iteration.")
    if prof:
        for run in prof.get("runs", []):
            cats = ", ".join(f"{k} {v:.0f}%" for k, v in run["categories"].items() if v >= 0.5)
            top = ", ".join(f"`{r['symbol']}` {r['percent']:.1f}%" for r in run["top"]
                            if r["category"] in ("engine", "clock reads"))
            out.append(f"- perf, trivial step, 2^20 points, cf 2, {run['ranks']} rank(s), plain "
                       f"callbacks (% of all samples): {cats}. Engine and clock: {top}.")
    return "\n".join(out) + "\n"


STATIC_TEXT = """\
**What is measured.** `bench_engine` is an XBraid-interface application whose callbacks are
counted and timed (step per level and per purpose, clone, free, sum, norm, bufsize/pack/unpack;
MPI calls by PMPI interposition). "One sweep" is the sequential solve (`max_levels 1`, same
callbacks). MGRIT runs exactly k cycles (`max_iter k`, absolute tol 0, `skip 0` so every cycle
is a full V-cycle, access level 0). The per-iteration time is that of the fastest of the steady
iterations 1..k−1 (iteration 0 allocates the coarse grids): on 1 rank its thread CPU time, on 2
ranks its wall time (slowest rank). The machine is shared with other work, so the fastest
iteration is the least disturbed one, and CPU time does not count time another process held
the core; median and mean are in the JSON. The unit "sweep" is the fastest 1-rank sequential
sweep (CPU time) of the same step and size, for 1 and 2 ranks alike. The breakdown comes from
a second run with timed callbacks (`rdtsc`; the clock's own ~11 ns per call is taken out, and
a call slower than 20 µs + 10× the mean of its kind counts as interrupted and is replaced by
that mean); "engine" = iteration time − time inside callbacks − MPI time, and MPI (polling for
the neighbour's vector included) comes from the plain run. For the trivial step the timed
callbacks are as short as the clock itself (`rdtsc` does not serialise, so a few-ns step
overlaps the readings): its callback shares are indicative only, and the perf profile at the
end is the better breakdown there. Per-case raw numbers (medians, first iteration, totals,
every count and time, step calls by level and purpose) are in benchmarks/results/engine.json.

**The ideal.** Two-level FCF with coarsening factor m: F (1 − 1/m) + C (1/m) + F (1 − 1/m)
relaxation, the step to each C-point that gives the residual (1/m), and the FAS coarse step
Φ_c(v_{j−1}) for the coarse right-hand side (1/m) = **2 + 1/m sweeps**, plus the sequential
coarse solve (1/m): 2 + 2/m step calls per fine point. The engine fuses the second F-relaxation
with the residual step (FRestrict's sweep), so it does exactly this: the measured step calls
equal the model in every case (the "model" column; multilevel adds, per coarse level l, relax +
restrict + FAS + the F-relaxation of FInterp: 5.5 sweeps in all for cf 2). The remaining gap
between "iter / sweep (time)" and the model is the cost that is not step work.
"""

WHERE_TEXT = """\
**Where the rest goes** (engine behaviour read from extern/braid/src and confirmed by the
counts and the profile above; the engine was not changed):
1. *Step work is at the ideal.* A two-level FCF iteration makes exactly 2 + 1/m + 1/m step
   calls per fine point: the FCF relaxation and the step to each C-point that gives the
   residual (2: the engine fuses the second F-sweep with the residual step), the FAS coarse
   step Φ_c(v_{j−1}) at every coarse point (1/m, completing the ideal 2 + 1/m), and the
   sequential coarse solve (1/m). With the dense step an iteration costs that many sweeps of
   time to within a few percent; the rest is items 2–4.
2. *An allocation per interval per sweep.* Every interval of every sweep starts with `clone`
   of its C-point (`interval_start`, relax.c) and ends with `free`: FCRelax keeps the
   propagated vector as the new C-point and frees the old one; FRestrict copies the propagated
   vector into `fa` with a `sum` and then frees it (handing it over would save the copy and the
   free); the FAS step (`subtract_coarse_step`, transfer.c) clones v_{j−1}, steps, subtracts
   and frees at every coarse point. That is 3/m clone+free pairs per fine point per iteration,
   where one scratch vector per sweep would do. On the CPU it is ~5–10% of the trivial-step
   run (malloc/free in the profile) and nothing next to a µs step; on the GPU every clone is
   a pool allocation plus a copy kernel, so it is worth removing before batching steps.
3. *Vector operations.* 7/m `sum`s per fine point per iteration (FRestrict: copies into `va`
   and `fa` and the residual; the FAS subtraction; the FAS term added after every coarse step;
   the correction e = u − v and u += e) plus 1/m norms. Cheap next to the dense step (≈1–2%),
   and they scale with the vector size just like the step.
4. *Fixed cost per call.* Each step fills the whole status struct (`_braid_StatusFor`) and
   computes both times with a floating-point division (`_braid_Time`, grid.c); small helpers
   in other files (`_braid_Time`, `_braid_Stored`) are not inlined (no LTO). Together about
   20 ns per step call — nearly all of a trivial-step sweep — and the engine-side handling
   of the extra clone/free/sum calls costs as much again, which is why a trivial-step iteration
   takes more sweeps of time than of step calls; with a step of microseconds it disappears.
5. *Two ranks.* The coarse solve is sequential over the ranks, so the speedup of an iteration
   is bounded by Amdahl: total / (parallel / 2 + coarse) = 1.71, 1.82, 1.89 for m = 2, 4, 8
   (the *bound* column); multilevel leaves only a few points sequential. The MPI share is the
   wait for the neighbour's boundary vector (one message per sweep and level, posted early) and
   the gather + broadcast of the residual norm once per iteration. The engine's clock reads
   (MPI_Wtime, counted by interposition and costed at the measured price of one call) are
   shown apart: a per-step clock read costs as much as the rest of the engine's per-step work
   when the step is trivial. On this 2-core machine the polling wait also competes with any
   other process for the cores, which is what makes the 2-rank cases the noisiest.
"""


def busy_note(cases: list[dict]) -> str:
    busy = [c.get("cores_busy_before", -1) for c in cases]
    busy = [b for b in busy if b >= 0]
    dates = sorted(c["date"] for c in cases if "date" in c)
    shas = sorted({c.get("engine_sources_sha256", "?") for c in cases})
    ver = (f"Engine sources of the cases: {', '.join(shas)} (they changed between runs). "
           if len(shas) > 1 else "")
    when = (f"Cases run {dates[0]} to {dates[-1]}. " if dates else "") + ver
    if not busy:
        return when
    n = sum(b > 0.25 for b in busy)
    if n == 0:
        return (when + "The machine is shared; the cores were idle (at most 25% busy with "
                "other work) just before every case (`cores_busy_before` in the JSON).")
    return (when + f"Other work kept the cores more than 25% busy just before {n} of "
            f"{len(busy)} cases (`cores_busy_before` in the JSON); the machine is shared, so "
            "timings of those cases, the 2-rank ones above all, are the least reliable.")


def write_markdown(doc: dict) -> None:
    cases = doc["cases"]
    m = doc["machine"]
    sec = ["## Engine", "",
           "The engine's own cost per MGRIT iteration (benchmarks/engine/bench_engine.c).", "",
           "Reproduce:", "", "```", doc["command"], "```", "",
           f"This run took {doc['total_seconds']:.0f} s (waiting for idle cores included); "
           "without `--wait-idle` and `--perf` the full set takes about 4 minutes on an idle "
           "2-core machine, and `--quick` (a smoke run, written to results/engine_quick.json) "
           "about 10–30 s.", ""] + (
           ["Cases disturbed by other work on the shared machine were re-measured with: "
            + "; ".join(f"`{r['command']}` ({r['cases']} cases)" for r in doc["remeasured"])
            + " (each case's `date` and `cores_busy_before` are in the JSON).", ""]
           if doc.get("remeasured") else []) + [

           f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; {m['compiler']} "
           f"{m['flags']}; {m['date']}; commit {m['git_commit'][:12]}, engine sources "
           f"sha256 {m['engine_sources_sha256']}. " + busy_note(cases), "",
           STATIC_TEXT, "",
           "### Step work per iteration vs the ideal (2 levels, FCF)", "",
           ideal_table(cases), "",
           "### Trivial step (scalar, a few ns): the engine's own overhead", "",
           table(cases, "trivial"), "",
           "### Dense step (ResNet layer u + h tanh(K u + c)): a realistic callback", "",
           table(cases, "dense"), "",
           "Columns: *step calls / iter* = step callbacks per iteration over ntime (sweeps of "
           "step work); *model* = the FCF V-cycle count; *iter* = time of one iteration; "
           "*iter / sweep* = that over the 1-rank sequential sweep; shares are of the "
           "iteration time (*engine* excludes MPI and the engine's MPI_Wtime calls, counted "
           "and costed at the measured price of one call); *engine ns / point* = iteration − "
           "callbacks (MPI and clock included) per fine point; *2-rank speedup* = 1-rank iteration time (CPU) / 2-rank iteration time "
           "(wall), in brackets wall / wall.", "",
           "### Measured facts", "", analysis(cases, doc.get("profile")), "",
           WHERE_TEXT]
    text = "\n".join(sec).rstrip() + "\n"
    if MARKDOWN.exists():
        old = MARKDOWN.read_text()
        mt = re.search(r"^## Engine\s*$", old, flags=re.M)
        if mt:
            nxt = re.search(r"^## ", old[mt.end():], flags=re.M)
            end = mt.end() + nxt.start() if nxt else len(old)
            new = old[:mt.start()] + text + ("\n" + old[end:] if nxt else "")
        else:
            new = old.rstrip() + "\n\n" + text
    else:
        new = ("# layerbraid benchmarks\n\nTables written by the scripts under benchmarks/; "
               "raw numbers in benchmarks/results/*.json.\n\n" + text)
    MARKDOWN.write_text(new)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small smoke set (~30 s); writes results/engine_quick.json only")
    ap.add_argument("--perf", action="store_true",
                    help="also profile one trivial-step case with perf (if installed)")
    ap.add_argument("--width", type=int, default=64, help="dense step: layer width (64)")
    ap.add_argument("--batch", type=int, default=1, help="dense step: samples per vector (1)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per case (300)")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                    help="before each case, wait while other processes keep the cores more "
                         "than 25%% busy, up to SECONDS in all (default 0: no waiting)")
    ap.add_argument("--no-write", action="store_true",
                    help="print the tables only; leave engine.json and BENCHMARKS.md alone")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON output file (default benchmarks/results/engine.json; with "
                         "--quick engine_quick.json, and BENCHMARKS.md is left alone)")
    ap.add_argument("--only", default="", metavar="KEY=VALUE,...",
                    help="run only the cases matching all of these (keys: step, ntime, ml, cf, "
                         "ranks), e.g. --only step=dense,ranks=2")
    ap.add_argument("--redo-disturbed", action="store_true",
                    help="re-run (and --merge) the cases of the existing JSON file that started "
                         "while other work kept the cores more than 25%% busy")
    ap.add_argument("--render", action="store_true",
                    help="run nothing: rewrite the Engine section of BENCHMARKS.md (and print "
                         "the tables) from the existing JSON file")
    ap.add_argument("--merge", action="store_true",
                    help="keep the cases of the existing JSON file that were not run now "
                         "(to re-measure a few cases disturbed by other work)")
    opts = ap.parse_args()
    if opts.out is None:
        opts.out = RESULTS.with_name("engine_quick.json") if opts.quick else RESULTS

    if opts.render:
        doc = json.loads(opts.out.read_text())
        derive_all(doc["cases"])
        print(ideal_table(doc["cases"]))
        print("Trivial step\n\n" + table(doc["cases"], "trivial"))
        print("Dense step\n\n" + table(doc["cases"], "dense"))
        print(analysis(doc["cases"], doc.get("profile")))
        if not opts.no_write:
            write_markdown(doc)
        return 0
    t_start = time.monotonic()
    global ENGINE_HASH
    ENGINE_HASH = engine_hash()  # before the build: the sources compiled
    exe = build(verbose=True)
    mpiexec = find_mpiexec()
    cases = case_list(opts.quick)
    if opts.redo_disturbed:
        if not opts.out.exists():
            sys.exit(f"run.py: --redo-disturbed: no {opts.out} yet")
        prev = json.loads(opts.out.read_text())
        bad = {(c["step"], c["ntime"], c["ml"], c["cf"], c["nprocs"])
               for c in prev.get("cases", []) if c.get("cores_busy_before", 0) > 0.25}
        cases = [c for c in case_list(prev.get("quick", False))
                 if (c["step"], c["ntime"], c["ml"], c["cf"], c["ranks"]) in bad]
        opts.merge = True
        if not cases:
            print("run.py: --redo-disturbed: no disturbed case to re-run", file=sys.stderr)
    if opts.only:
        want = dict(kv.split("=", 1) for kv in opts.only.split(","))
        cases = [c for c in cases if all(str(c.get(k)) == v for k, v in want.items())]
        if not cases:
            sys.exit(f"run.py: no case matches --only {opts.only}")
    print(f"run.py: built {exe.relative_to(ROOT)}; {len(cases)} cases with {mpiexec}",
          file=sys.stderr)
    results, loads = [], []
    budget = [opts.wait_idle]
    for i, case in enumerate(cases, 1):
        r = run_case(exe, mpiexec, case, opts.width, opts.batch, opts.timeout, budget)
        results.append(r)
        derive_all(results)
        loads += r["loadavg_1min"]
        p = r["mgrit"]["per_iter"]
        print(f"[{i:2d}/{len(cases)}] {case['step']:7s} ntime 2^{case['ntime'].bit_length() - 1:<2d} "
              f"ml {case['ml']:2d} cf {case['cf']} np {case['ranks']}: "
              f"{1e3 * r['derived']['iter_time']:8.3f} ms/iter (wall {1e3 * p['wall']:.3f}), "
              f"{p['sweeps_steps']:.3f} sweeps of steps, "
              f"{fmt(r['derived']['sweeps_time'], '.2f')} sweeps of time "
              f"({r['run_seconds']:.1f} s, cores busy before {r['cores_busy_before']:.0%})",
              file=sys.stderr, flush=True)
    prof = profile(exe, mpiexec) if opts.perf else None
    old = None
    if opts.merge and opts.out.exists():
        old = json.loads(opts.out.read_text())
        key = lambda c: (c["step"], c["ntime"], c["ml"], c["cf"], c["nprocs"])  # noqa: E731
        fresh = {key(c) for c in results}
        kept = [c for c in old.get("cases", []) if key(c) not in fresh]
        order = {(c["step"], c["ntime"], c["ml"], c["cf"], c["ranks"]): i
                 for i, c in enumerate(case_list(old.get("quick", False)))}
        results = sorted(kept + results, key=lambda c: order.get(key(c), len(order)))
        if prof is None:
            prof = old.get("profile")
        loads += [x for c in kept for x in c.get("loadavg_1min", [])]
    derive_all(results)

    cmd = ".venv/bin/python benchmarks/engine/run.py" + (" --quick" if opts.quick else "") + \
        (" --wait-idle %g" % opts.wait_idle if opts.wait_idle else "") + \
        (" --perf" if opts.perf else "") + \
        (f" --width {opts.width}" if opts.width != 64 else "") + \
        (f" --batch {opts.batch}" if opts.batch != 1 else "")
    doc = {
        "benchmark": "engine",
        "description": "MGRIT engine cost per iteration: step calls, callbacks, engine "
                       "overhead, MPI; trivial and dense step; 1 and 2 ranks",
        "command": old["command"] if old and "command" in old else cmd,
        "quick": opts.quick,
        "merged": bool(opts.merge),
        # a merge keeps the original command; what re-measured which cases is listed here
        "remeasured": ((old or {}).get("remeasured", []) + [
            {"command": cmd + (" --redo-disturbed" if opts.redo_disturbed else " --merge")
                + (f" --only {opts.only}" if opts.only else ""),
             "cases": len(cases),
             "seconds": round(time.monotonic() - t_start, 1)}]) if old else [],
        "machine": machine_info(),
        "loadavg_range": [min(loads), max(loads)] if loads else [0, 0],
        "total_seconds": (old.get("total_seconds") if old
                          else round(time.monotonic() - t_start, 1)),
        "cases": results,
        "profile": prof,
    }
    print(ideal_table(results))
    print("Trivial step\n\n" + table(results, "trivial"))
    print("Dense step\n\n" + table(results, "dense"))
    print(analysis(results, prof))
    if not opts.no_write:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(doc, indent=1) + "\n")
        if opts.quick:
            print(f"run.py: wrote {opts.out} in {doc['total_seconds']} s (a smoke run: "
                  f"{MARKDOWN.name} is left alone)", file=sys.stderr)
        else:
            write_markdown(doc)
            print(f"run.py: wrote {opts.out} and {MARKDOWN} in {doc['total_seconds']} s",
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
