"""Issue 16: layer-parallel speedup at cluster scale, on simulated clusters (SimGrid SMPI).

Reproduce (from the repository root; ``make scaling`` builds what is needed first)::

    .venv/bin/python benchmarks/scaling/run.py                  # every part, resumable
    .venv/bin/python benchmarks/scaling/run.py --quick          # smoke test (tiny subset)
    .venv/bin/python benchmarks/scaling/run.py --parts strong,settings
    .venv/bin/python benchmarks/scaling/run.py --markdown-only  # plots + section from the JSON

Parts (``--parts``, default all, run in this order):

- ``calibrate``   cost tables (``propagate --calibrate``) for (width, batch) = (32, 256),
                  (64, 256), (16, 50); kept unless ``--fresh``.
- ``iterations``  real 1-rank runs (``mpiexec -n 1``, ``--compute real --serial-reference``)
                  giving the MGRIT iteration counts per (depth, width, levels, cfactor, relax),
                  each solved to an absolute residual tolerance chosen so that the gradient's
                  relative error against layer-serial backpropagation is <= 1e-6 (tightened by
                  10x per case until it is; the tolerance and the error are recorded).
- ``strong``      modelled runs on ``cluster.xml`` (64 nodes x 32 cores): depth
                  {1024, 4096, 16384} x width {32, 64} x ranks {1, ..., 1024} (<= depth / 4),
                  batch 256, multilevel (``--levels 30``) cf 4, F and FCF, to tolerance and
                  capped at 2 iterations per direction; layer-serial (``--levels 1``) for each.
- ``settings``    depth 4096, width 32, ranks {64, 256}: two-level vs multilevel, cf 2/4/8/16,
                  F vs FCF, to tolerance and capped.
- ``oneshot``     Peaks one-shot steps (depth 1024, width 16, batch 50, 2 iterations) on 1..1024
                  ranks, and time to 90 % validation from a real ``train_peaks`` run.
- ``gpu``         a few strong-scaling points on ``gpu.xml`` (16 nodes x 4 GPU-like ranks).
- ``validate``    real vs simulated on this machine (1 and 2 ranks): real under mpiexec, real
                  under smpirun (host.xml), modelled under smpirun; the same work in all three.
- ``conv``        conv ResNets (N = 1024, 3x3) on digits (8x8) and layerbraid.data.shapes
                  (32x32) with spatial coarsening S = 0..3 on the coarse levels, F and FCF, to
                  tolerance and capped, ranks 1..256 (benchmarks/scaling/conv_part.py).

Every finished case is cached in ``benchmarks/results/scaling.json`` under a key made of its
exact settings, so a re-run skips it (``--fresh`` reruns everything). Two instances may run at
once (say ``--parts iterations`` next to ``--parts strong``): the file is merged under a lock.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "python_driver"))

from _common import (RESULTS, machine_info, mpiexec, table, thread_env,  # noqa: E402
                     write_section)
from layerbraid.plan import load_platform  # noqa: E402  (the platform files, parsed as data)

import conv_part  # noqa: E402  (part conv: conv networks with spatial coarsening)

NAME = "scaling"
HEADING = "## Speedup at cluster scale (simulated clusters, SimGrid SMPI)"
JSON_PATH = RESULTS / "scaling.json"
OUT_DIR = RESULTS / "scaling"
#: the plain (real MPI) and SMPI build trees (--real-build, --smpi-build)
REAL_BIN = REPO / "build" / "benchmarks" / "scaling" / "propagate"
SMPI_BIN = REPO / "build" / "smpi" / "benchmarks" / "scaling" / "propagate"
TRAIN_BIN = REPO / "build" / "examples" / "cpp" / "train_peaks"
PLATFORMS = REPO / "python" / "layerbraid" / "platforms"
ALL_PARTS = ["calibrate", "iterations", "strong", "settings", "oneshot", "gpu", "validate",
             "conv"]
GRAD_TARGET = 1e-6
CAL_REPEAT = 3
CAL_LOADS: dict[tuple[int, int], list[float]] = {}
TOL_PROBE = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
MULTI = 30          # --levels 30: as many levels as cf and min_coarse 2 allow
RANKS = [1, 4, 16, 64, 256, 1024]
ALL_RANKS = tuple(RANKS)    # the tables' and plots' columns, whatever --max-ranks
WIDTHS = [32, 64]
DEPTHS = [1024, 4096, 16384]
CALIBRATIONS = [(32, 256), (64, 256), (16, 50)]

QUICK = False
FRESH = False


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------- the result cache


class Cache:
    """``scaling.json``: {"machine": ..., "cases": {key: record}}; each store merges under a
    lock, so concurrent instances do not lose each other's cases."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = self._read()

    def _read(self) -> dict[str, Any]:
        if self.path.exists():
            try:
                return json.loads(self.path.read_text())
            except json.JSONDecodeError:
                pass
        return {"cases": {}}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive flock on the JSON's folder (no lock file left behind)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def get(self, key: str) -> dict[str, Any] | None:
        self.data = self._read()
        return None if FRESH and key not in SEEN else self.data["cases"].get(key)

    def put(self, key: str, rec: dict[str, Any]) -> None:
        SEEN.add(key)
        with self._locked():
            data = self._read()
            data["cases"][key] = rec
            if "machine" not in data:
                data["machine"] = machine_info(1)
            tmp = self.path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
            tmp.replace(self.path)
            self.data = data

    def set_machine(self, info: dict[str, Any]) -> None:
        with self._locked():
            data = self._read()
            data["machine"] = info
            tmp = self.path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
            tmp.replace(self.path)
            self.data = data


SEEN: set[str] = set()
CACHE: Cache


def key_of(kind: str, settings: dict[str, Any]) -> str:
    return kind + ":" + json.dumps(settings, sort_keys=True, separators=(",", ":"))


def cached(kind: str, settings: dict[str, Any], compute: Callable[[], dict[str, Any]]
           ) -> dict[str, Any]:
    key = key_of(kind, settings)
    rec = CACHE.get(key)
    if rec is not None:
        return rec
    rec = {"kind": kind, "settings": settings, **compute()}
    CACHE.put(key, rec)
    return rec


# ------------------------------------------------------------------------------- running


def rel(path: Path) -> str:
    """path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def load_avg() -> float:
    return os.getloadavg()[0]


def wait_quiet(limit: float = 60.0, threshold: float = 1.5) -> float:
    t0 = time.time()
    while load_avg() >= threshold and time.time() - t0 < limit:
        time.sleep(5)
    return load_avg()


def propagate_args(s: dict[str, Any]) -> list[str]:
    conv = s.get("network") == "conv"
    computes = s.get("compute", "real") != "modelled"
    a = ["--depth", s["depth"],
         *(conv_part.conv_args(s, computes) if conv else ["--width", s["width"]]),
         "--batch", s["batch"], "--levels", s["levels"], "--cfactor", s["cfactor"],
         "--relax", s["relax"]]
    if s.get("iters") is not None:
        a += ["--iters", s["iters"]]
    elif s.get("iters_forward") is not None:
        a += ["--iters-forward", s["iters_forward"], "--iters-adjoint", s["iters_adjoint"]]
    else:
        a += ["--tol", repr(s["tol"])]
    if s.get("compute", "real") == "modelled" and conv:
        a += ["--compute", "modelled", "--costs", s["costs"]]
    elif s.get("compute", "real") == "modelled":
        calibrate(s["width"], s["batch"], refresh=False)
        a += ["--compute", "modelled", "--costs",
              str(costs_file(s["width"], s["batch"], s.get("costs_divided_by", 1)))]
    if s.get("serial_reference"):
        a += ["--serial-reference"]
    if s.get("no_skip"):
        a += ["--no-skip"]
    if s.get("repeat", 1) > 1:
        a += ["--repeat", s["repeat"]]
    return [str(x) for x in a]


def _run(cmd: list[str], cwd: Path, json_file: Path, timeout: float) -> dict[str, Any]:
    t0 = time.time()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=thread_env(),
                       timeout=timeout)
    host = time.time() - t0
    if p.returncode != 0 or not json_file.exists():
        tail = "\n".join((p.stdout + p.stderr).splitlines()[-20:])
        raise RuntimeError(f"failed ({p.returncode}): {' '.join(cmd)}\n{tail}")
    out = json.loads(json_file.read_text())
    out["host_time"] = round(host, 3)
    return out


def run_real(s: dict[str, Any], ranks: int = 1, timeout: float = 1800) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        j = Path(d) / "out.json"
        cmd = [MPIEXEC, "-n", str(ranks), str(REAL_BIN), *propagate_args(s), "--json", str(j)]
        return _run(cmd, Path(d), j, timeout)


def hostfile(platform: str, ranks: int, path: Path) -> None:
    p = load_platform(platform)
    per = p.cores_per_host
    need = math.ceil(ranks / per)
    if need > p.hosts:
        raise ValueError(f"{ranks} ranks do not fit {platform}.xml")
    path.write_text("".join(f"{name}:{per}\n" for name in p.host_names[:need]))


def host_bursts_cfg(s: dict[str, Any]) -> list[str]:
    """Modelled runs: only the injected costs are computation. SMPI's default also charges the
    host time between MPI calls, which on a core shared by hundreds of simulated ranks is
    cache-cold (5-20 us per burst against ~0.5 us per step on one rank) plus its own
    MPI_Comm_dup (up to 50 ms per rank at 1024 ranks): benchmarks/scaling/README.md."""
    return ["--cfg=smpi/simulate-computation:no"] if s.get("host_bursts") == "off" else []


def run_smpi(s: dict[str, Any], platform: str, ranks: int, timeout: float = 3600
             ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="scaling_smpi_") as d:
        j = Path(d) / "out.json"
        hf = Path(d) / "hosts"
        hostfile(platform, ranks, hf)
        (Path(d) / "tmp").mkdir()
        cmd = ["smpirun", "-np", str(ranks), "-platform", str(PLATFORMS / f"{platform}.xml"),
               "-hostfile", str(hf), "--cfg=smpi/host-speed:1Gf", f"--cfg=smpi/tmpdir:{d}/tmp",
               "--cfg=smpi/test:0", *host_bursts_cfg(s), str(SMPI_BIN), *propagate_args(s),
               "--json", str(j)]
        return _run(cmd, Path(d), j, timeout)


def summarise(out: dict[str, Any]) -> dict[str, Any]:
    """The fields kept per case: the run's JSON less the per-rank lists, plus their
    breakdown (mean and max over ranks)."""
    rec = {k: v for k, v in out.items() if k != "per_rank"}
    pr = out.get("per_rank") or {}
    if pr:
        t = out["time"]
        other = [t - a - b for a, b in zip(pr["time_step"], pr["time_wait"])]
        for name, vals in (("step", pr["time_step"]), ("step_coarsest", pr["time_step_coarsest"]),
                           ("wait", pr["time_wait"]), ("other", other),
                           ("steps", pr["steps"]), ("messages", pr["messages_sent"])):
            rec[f"{name}_mean"] = sum(vals) / len(vals)
            rec[f"{name}_max"] = max(vals)
        rec["steps_total"] = sum(pr["steps"])
        rec["messages_total"] = sum(pr["messages_sent"])
    return rec


# ------------------------------------------------------------------------------- the parts


# Host speed of each platform relative to the calibrating machine. propagate's modelled
# callbacks spend their time with smpi_execute_benched(seconds), which SimGrid converts to
# flops with the simulated host's own speed (seconds x speed), so a burst takes the same
# simulated time on any host: a faster platform's speed is not applied to them (it is to the
# engine's own measured code, which SMPI converts with smpi/host-speed). For such a platform
# the runs read a cost table divided by the factor (costs_w*_b*_div10.json, derived here).
def platform_speed(platform: str) -> int:
    """The platform's core speed over the calibrating machine's (gpu.xml: 10), from its file."""
    speed = load_platform(platform).speed
    if speed != round(speed) or speed < 1:
        raise ValueError(f"{platform}.xml: core speed {speed} x; the cost tables are divided "
                         f"by whole factors >= 1")
    return round(speed)


def costs_file(width: int, batch: int, divided_by: int = 1) -> Path:
    f = OUT_DIR / f"costs_w{width}_b{batch}.json"
    if divided_by == 1:
        return f
    g = OUT_DIR / f"costs_w{width}_b{batch}_div{divided_by}.json"
    t = json.loads(f.read_text())
    t["costs"] = {k: v / divided_by for k, v in t["costs"].items()}
    g.write_text(json.dumps(t) + "\n")
    return g


def part_calibrate() -> None:
    for w, b in CALIBRATIONS:
        calibrate(w, b)


def calibrate(w: int, b: int, refresh: bool = True) -> None:
    """The cost table for (w, b): kept if there is one (unless --fresh), else measured."""
    f = costs_file(w, b)
    if f.exists() and not refresh:
        return
    if f.exists() and not FRESH:
        log(f"calibrate w={w} b={b}: kept {f.name}")
    else:
        # The machine is shared: other processes only add time (contention for the core and
        # for memory bandwidth), so the table is the element-wise minimum of CAL_REPEAT
        # calibrations, each after waiting (up to 15 s) for a 1-minute load under 1.5.
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        tables, loads = [], []
        with tempfile.TemporaryDirectory() as d:
            for i in range(CAL_REPEAT):
                loads.append(round(wait_quiet(limit=15), 2))
                g = Path(d) / f"c{i}.json"
                subprocess.run([str(REAL_BIN), "--depth", "1024", "--width", str(w), "--batch",
                                str(b), "--calibrate", str(g)], check=True, env=thread_env(),
                               stdout=subprocess.DEVNULL)
                tables.append(json.loads(g.read_text()))
        t = tables[0]
        t["costs"] = {k: min(x["costs"][k] for x in tables) for k in t["costs"]}
        f.write_text(json.dumps(t) + "\n")
        CAL_LOADS[(w, b)] = loads
        log(f"calibrate w={w} b={b}: wrote {f.name} (min of {CAL_REPEAT}; loads {loads}): "
            f"step fwd {t['costs']['step_forward_fine']:.3g} s, "
            f"adj {t['costs']['step_adjoint_fine']:.3g} s")
    table_ = json.loads(f.read_text())
    rec = CACHE.data["cases"].get(key_of("calibrate", {"width": w, "batch": b}))
    if rec is None or rec.get("costs") != table_["costs"]:
        CACHE.put(key_of("calibrate", {"width": w, "batch": b}),
                  {"kind": "calibrate", "settings": {"width": w, "batch": b},
                   "file": rel(f), "repeats": CAL_REPEAT,
                   "loads": CAL_LOADS.get((w, b)), **table_})


def tol_start() -> float:
    """The loosest tolerance of TOL_PROBE whose gradient error is <= 1e-6 at depth 1024,
    width 32, multilevel cf 4, FCF and F (each probe is one real 1-rank run)."""
    def probe() -> dict[str, Any]:
        runs = []
        chosen = TOL_PROBE[-1]
        for tol in TOL_PROBE:
            errs = []
            for relax in ("FCF", "F"):
                s = dict(depth=1024, width=32, batch=256, levels=MULTI, cfactor=4, relax=relax,
                         tol=tol, serial_reference=True)
                out = run_real(s)
                errs.append(out["gradient_rel_error"])
                runs.append({"tol": tol, "relax": relax, "error": out["gradient_rel_error"],
                             "iterations": [out["iterations_forward"], out["iterations_adjoint"]]})
                log(f"tol probe {tol:g} {relax}: error {out['gradient_rel_error']:.2e} "
                    f"iterations {out['iterations_forward']}/{out['iterations_adjoint']}")
            if max(errs) <= GRAD_TARGET:
                chosen = tol
                break
        return {"tol": chosen, "probes": runs}
    return cached("tolprobe", {"depth": 1024, "width": 32, "levels": MULTI, "cfactor": 4,
                               "target": GRAD_TARGET}, probe)["tol"]


def iteration_batch(depth: int) -> int:
    return 64 if depth >= 16384 else 256


def iterations(depth: int, width: int, levels: int, cfactor: int, relax: str
               ) -> dict[str, Any]:
    """The case's iteration counts to tolerance (cached): a real 1-rank run, tightened until
    the gradient error is <= 1e-6."""
    batch = iteration_batch(depth)
    settings = dict(depth=depth, width=width, batch=batch, levels=levels, cfactor=cfactor,
                    relax=relax, target=GRAD_TARGET)

    def compute() -> dict[str, Any]:
        tol = tol_start()
        tries = []
        for _ in range(4):
            s = dict(settings, tol=tol, serial_reference=True)
            s.pop("target")
            out = run_real(s)
            tries.append({"tol": tol, "error": out["gradient_rel_error"],
                          "iterations": [out["iterations_forward"], out["iterations_adjoint"]]})
            log(f"iterations N={depth} W={width} L={levels} cf={cfactor} {relax} B={batch} "
                f"tol={tol:g}: {out['iterations_forward']}/{out['iterations_adjoint']} "
                f"error {out['gradient_rel_error']:.2e} ({out['host_time']:.0f} s)")
            if out["gradient_rel_error"] <= GRAD_TARGET:
                break
            tol /= 10
        return {"tol": tol, "tries": tries, **summarise(out)}
    return cached("iterations", settings, compute)


def modelled(depth: int, width: int, batch: int, levels: int, cfactor: int, relax: str,
             mode: str, platform: str, ranks: int, skip: bool = True
             ) -> dict[str, Any] | None:
    """One modelled SMPI case; mode "tol" (counts from part iterations), "cap2" (2 per
    direction) or "serial" (--levels 1)."""
    s: dict[str, Any] = dict(depth=depth, width=width, batch=batch, levels=levels,
                             cfactor=cfactor, relax=relax, compute="modelled", host_bursts="off")
    if not skip:        # full V-cycles from the first, as warm-started training solves
        s["no_skip"] = True
    if platform_speed(platform) != 1:
        s["costs_divided_by"] = platform_speed(platform)
    if mode == "serial":
        s.update(levels=1, iters=1)
    elif mode.startswith("cap"):       # capK: exactly K iterations per direction
        s["iters"] = int(mode[3:])
    else:
        it = iterations(depth, width, levels, cfactor, relax)
        s.update(iters_forward=it["iterations_forward"], iters_adjoint=it["iterations_adjoint"])
    label = (f"{platform} P={ranks} N={depth} W={width} B={batch} L={s['levels']} cf={cfactor} "
             f"{relax} {mode}")

    def compute() -> dict[str, Any]:
        out = run_smpi(s, platform, ranks)
        log(f"{label}: {out['time']:.4g} s simulated, {out['host_time']:.0f} s host")
        return summarise(out)
    calibrate(width, batch, refresh=False)
    digest = hashlib.sha1(costs_file(width, batch).read_bytes()).hexdigest()[:12]
    key_settings = dict(s, platform=platform, ranks=ranks, mode=mode, costs_sha1=digest)
    rec = cached("smpi", key_settings, compute)
    return rec


def part_strong(depths: Iterable[int], platform: str = "cluster",
                ranks_list: Iterable[int] | None = None,
                widths: Iterable[int] | None = None) -> None:
    ranks_list = list(RANKS if ranks_list is None else ranks_list)
    widths = list(WIDTHS if widths is None else widths)
    for depth in depths:
        for width in widths:
            modelled(depth, width, 256, 1, 4, "FCF", "serial", platform, 1)
            for ranks in ranks_list:
                if ranks > depth // 4:
                    continue
                for mode in ("cap2", "tol"):
                    for relax in ("FCF", "F"):
                        modelled(depth, width, 256, MULTI, 4, relax, mode, platform, ranks)


def settings_grid() -> list[tuple[int, int, str]]:
    if QUICK:
        return [(2, 4, "FCF"), (MULTI, 4, "FCF")]
    return [(lv, cf, relax) for lv in (2, MULTI) for cf in (2, 4, 8, 16) for relax in ("F", "FCF")]


def part_settings() -> None:
    depth, width = (1024, 32) if QUICK else (4096, 32)
    modelled(depth, width, 256, 1, 4, "FCF", "serial", "cluster", 1)
    for lv, cf, relax in settings_grid():
        iterations(depth, width, lv, cf, relax)
    for ranks in ([16] if QUICK else [64, 256]):
        for lv, cf, relax in settings_grid():
            for mode in ("cap2", "tol"):
                modelled(depth, width, 256, lv, cf, relax, mode, "cluster", ranks)


PEAKS = dict(depth=1024, width=16, batch=50, levels=MULTI, cfactor=4, relax="FCF")


#: The real Peaks training runs (train_peaks, 1 rank): name -> its MGRIT options. One-shot
#: with 2 iterations is what the issue asks for; 3 iterations and layer-serial are the
#: references it is measured against.
TRAININGS = {"iters2": ["--iters", "2", "--levels", str(MULTI), "--cfactor", "4"],
             "iters3": ["--iters", "3", "--levels", str(MULTI), "--cfactor", "4"],
             "iters3F": ["--iters", "3", "--levels", str(MULTI), "--cfactor", "4",
                         "--relax", "F"],
             "serial": ["--levels", "1"]}


def train_run(name: str) -> dict[str, Any]:
    """One real Peaks training (train_peaks, 1 rank); its log is kept and reused."""
    layers = 64 if QUICK else PEAKS["depth"]
    args = ["--layers", str(layers), "--width", str(PEAKS["width"]), *TRAININGS[name]]
    logf = OUT_DIR / f"train_peaks_L{layers}_W{PEAKS['width']}_{name}.log"

    def compute() -> dict[str, Any]:
        text = logf.read_text() if logf.exists() else ""
        if FRESH or "final:" not in text:
            log(f"train_peaks {' '.join(args)} (1 rank) ...")
            p = subprocess.run([str(TRAIN_BIN), *args], capture_output=True, text=True,
                               env=thread_env(), check=True)
            logf.parent.mkdir(parents=True, exist_ok=True)
            logf.write_text(p.stdout)
            text = p.stdout
        epochs = []
        for line in text.splitlines():
            if line.startswith("epoch"):
                f = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].split())
                epochs.append({"epoch": int(line.split()[1].rstrip(":")),
                               "val_accuracy": float(f["val_accuracy"]),
                               "train_accuracy": float(f["train_accuracy"]),
                               "loss": float(f["loss"]), "time": float(f["time"].rstrip("s"))})
        header = text.splitlines()[0]
        n_train = int(header.split(";")[1].split()[0])
        steps90 = next((e["epoch"] for e in epochs if e["val_accuracy"] >= 0.9), None)
        spe = math.ceil(n_train / PEAKS["batch"])
        log(f"train_peaks {name}: final val {epochs[-1]['val_accuracy']:.3f}, 90 % after "
            f"epoch {steps90}")
        return {"args": args, "log": rel(logf), "header": header,
                "epochs": epochs, "steps_per_epoch": spe,
                "steps_to_90": steps90 * spe if steps90 else None}
    return cached("train_peaks", {"name": name, "args": args}, compute)


#: The simulated one-shot steps: training run name -> (mode, relaxation).
ONESHOT_VARIANTS = {"iters2": ("cap2", "FCF"), "iters3": ("cap3", "FCF"),
                    "iters3F": ("cap3", "F")}


def part_oneshot() -> None:
    d = dict(PEAKS)
    if QUICK:
        d["depth"] = 64
    modelled(d["depth"], d["width"], d["batch"], 1, 4, "FCF", "serial", "cluster", 1)
    for mode, relax in ONESHOT_VARIANTS.values():
        for ranks in RANKS:
            if ranks <= d["depth"] // 4:
                modelled(d["depth"], d["width"], d["batch"], d["levels"], d["cfactor"],
                         relax, mode, "cluster", ranks, skip=False)
    for name in TRAININGS:
        train_run(name)


def part_gpu() -> None:
    if QUICK:
        part_strong([1024], "gpu", [1, 4], [32])
    else:
        part_strong([4096], "gpu", [p for p in (1, 4, 16, 64) if p in RANKS], WIDTHS)


VALIDATE = dict(depth=1024, width=32, batch=256, levels=4, cfactor=4, relax="FCF")


def part_validate(base: dict[str, Any] | None = None) -> None:
    """Real against simulated on this machine, 1 and 2 ranks, four ways (module docstring);
    base: the case (default VALIDATE, the dense one; conv_part gives a conv one)."""
    base = dict(VALIDATE if base is None else base)
    if QUICK:
        base["depth"] = 256
    tol = tol_start()
    for ranks in (1, 2):
        def real_m() -> dict[str, Any]:
            load = wait_quiet()
            out = run_real(dict(base, tol=tol, repeat=5), ranks)
            rec = summarise(out)
            rec["per_rank"] = out["per_rank"]
            rec["load_before"] = load
            rec["load_after"] = load_avg()
            log(f"validate real mpiexec -n {ranks}: {out['time']:.4f} s (load {load:.2f})")
            return rec
        real = cached("validate", dict(base, tol=tol, ranks=ranks, how="real-mpiexec"), real_m)

        def smpi_real() -> dict[str, Any]:
            out = run_smpi(dict(base, tol=tol, repeat=3), "host", ranks)
            rec = summarise(out)
            rec["per_rank"] = out["per_rank"]
            rec["load_before"] = load_avg()
            log(f"validate real smpirun -np {ranks}: {out['time']:.4f} s")
            return rec
        sreal = cached("validate", dict(base, tol=tol, ranks=ranks, how="real-smpirun"),
                       smpi_real)
        counts = dict(iters_forward=real["iterations_forward"],
                      iters_adjoint=real["iterations_adjoint"])

        def smpi_mod() -> dict[str, Any]:
            out = run_smpi(dict(base, **counts, compute="modelled", repeat=3,
                                host_bursts="off"), "host", ranks)
            rec = summarise(out)
            rec["per_rank"] = out["per_rank"]
            log(f"validate modelled smpirun -np {ranks}: {out['time']:.4f} s")
            return rec
        smod = cached("validate", dict(base, **counts, ranks=ranks, how="modelled-smpirun",
                                       host_bursts="off"), smpi_mod)

        def real_mod() -> dict[str, Any]:
            load = wait_quiet()
            out = run_real(dict(base, **counts, compute="modelled", repeat=5), ranks)
            rec = summarise(out)
            rec["per_rank"] = out["per_rank"]
            rec["load_before"] = load
            log(f"validate modelled mpiexec -n {ranks}: {out['time']:.4f} s (load {load:.2f})")
            return rec
        rmod = cached("validate", dict(base, **counts, ranks=ranks, how="modelled-mpiexec"),
                      real_mod)
        for name in ("steps", "steps_coarsest", "messages_sent", "messages_received",
                     "bytes_sent"):
            vals = [r["per_rank"][name] for r in (real, sreal, smod, rmod)]
            assert all(v == vals[0] for v in vals), f"validate {ranks} ranks: {name} differ: {vals}"


# ---------------------------------------------------------------------- reading the results


def cases(kind: str, **match: Any) -> list[dict[str, Any]]:
    out = []
    for rec in CACHE.data["cases"].values():
        if rec.get("kind") != kind:
            continue
        s = rec["settings"]
        if s.get("network") != match.get("network"):
            continue    # dense queries see dense cases, conv queries conv ones
        if kind == "smpi" and (s.get("host_bursts") != "off"
                               or s.get("no_skip", False) != (s.get("batch") == 50
                                                              and s["mode"].startswith("cap"))):
            continue    # superseded: simulated with host bursts, or one-shot Peaks with skip
        if all(s.get(k) == v for k, v in match.items()):
            out.append(rec)
    return out


def one(kind: str, **match: Any) -> dict[str, Any] | None:
    c = cases(kind, **match)
    return c[0] if c else None


def serial_time(depth: int, width: int, batch: int, platform: str = "cluster") -> float | None:
    r = one("smpi", depth=depth, width=width, batch=batch, mode="serial", platform=platform)
    return r["time"] if r else None


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def fmt_x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def strong_series(depth: int, width: int, relax: str, mode: str, platform: str = "cluster",
                  levels: int = MULTI, cfactor: int = 4, batch: int = 256
                  ) -> dict[int, dict[str, Any]]:
    recs = cases("smpi", depth=depth, width=width, batch=batch, levels=levels, cfactor=cfactor,
                 relax=relax, mode=mode, platform=platform)
    return {r["settings"]["ranks"]: r for r in recs}


# ------------------------------------------------------------------------------- plots


def speedup_axis(ax: Any, ranks: list[int], title: str,
                 xlabel: str = "simulated ranks P (cluster.xml)",
                 ylabel: str = "speedup over layer-serial") -> None:
    """The common frame of a speedup-against-P plot: log2 axes, the ideal P line, 1x."""
    ax.plot(ranks, ranks, "k:", lw=1, label="ideal (P)")
    ax.axhline(1, color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)


def plots() -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    made = conv_part.plot(sys.modules[__name__])
    # speedup vs P
    depths = [d for d in DEPTHS if cases("smpi", depth=d, platform="cluster", batch=256)]
    if depths:
        fig, axes = plt.subplots(1, len(depths), figsize=(5 * len(depths), 4.2), squeeze=False)
        for ax, depth in zip(axes[0], depths):
            for width in WIDTHS:
                ts = serial_time(depth, width, 256)
                if ts is None:
                    continue
                for mode, ls in (("tol", "-"), ("cap2", "--")):
                    for relax, mk in (("FCF", "o"), ("F", "s")):
                        ser = strong_series(depth, width, relax, mode)
                        if not ser:
                            continue
                        ps = sorted(ser)
                        ax.plot(ps, [ts / ser[p]["time"] for p in ps], ls, marker=mk,
                                label=f"W={width} {relax} {'tol' if mode == 'tol' else 'capped 2'}")
            ps = [p for p in ALL_RANKS if p <= depth // 4]
            speedup_axis(ax, ps, f"N = {depth}, batch 256, multilevel cf 4")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(OUT_DIR / "speedup.png", dpi=110)
        plt.close(fig)
        made.append("speedup.png")
    # breakdown, N=4096 W=32
    panels = [(relax, mode) for mode in ("tol", "cap2") for relax in ("FCF", "F")
              if strong_series(4096, 32, relax, mode)]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
        for ax, (relax, mode) in zip(axes[0], panels):
            ser = strong_series(4096, 32, relax, mode)
            ps = sorted(ser)
            x = range(len(ps))
            fine = [ser[p]["step_mean"] - ser[p]["step_coarsest_mean"] for p in ps]
            coarse = [ser[p]["step_coarsest_mean"] for p in ps]
            wait = [ser[p]["wait_mean"] for p in ps]
            other = [ser[p]["other_mean"] for p in ps]
            bottom = [0.0] * len(ps)
            times = [ser[p]["time"] for p in ps]
            for vals, lab in ((fine, "steps (finer levels)"), (coarse, "steps (coarsest)"),
                              (wait, "wait"), (other, "other")):
                share = [v / t for v, t in zip(vals, times)]
                ax.bar(x, share, bottom=bottom, label=lab)
                bottom = [b + v for b, v in zip(bottom, share)]
            for k, t in zip(x, times):
                ax.text(k, 1.02, f"{t:.3g} s", ha="center", fontsize=7)
            ax.set_xticks(list(x), [str(p) for p in ps])
            ax.set_ylim(0, 1.1)
            ax.set_xlabel("P")
            ax.set_ylabel("share of the time (mean over ranks)")
            ax.set_title(f"N=4096 W=32 {relax} {'to tol' if mode == 'tol' else 'capped 2'}")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=8)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
        fig.savefig(OUT_DIR / "breakdown_N4096_W32.png", dpi=110)
        plt.close(fig)
        made.append("breakdown_N4096_W32.png")
    # settings
    srecs = [r for r in cases("smpi", depth=4096, width=32, platform="cluster", batch=256)
             if r["settings"]["ranks"] in (64, 256) and r["settings"]["mode"] != "serial"]
    ts = serial_time(4096, 32, 256)
    if srecs and ts:
        configs = [(lv, cf, relax) for lv in (2, MULTI) for cf in (2, 4, 8, 16)
                   for relax in ("F", "FCF")]
        fig, axes = plt.subplots(2, 1, figsize=(11, 7), squeeze=False)
        for ax, ranks in zip(axes[:, 0], (64, 256)):
            w = 0.2
            for i, mode in enumerate(("tol", "cap2")):
                vals = []
                for lv, cf, relax in configs:
                    r = one("smpi", depth=4096, width=32, batch=256, levels=lv, cfactor=cf,
                            relax=relax, mode=mode, platform="cluster", ranks=ranks)
                    vals.append(ts / r["time"] if r else 0)
                ax.bar([k + (i - 0.5) * w * 2 for k in range(len(configs))], vals, width=2 * w,
                       label="to tolerance" if mode == "tol" else "capped 2")
            ax.set_xticks(range(len(configs)),
                          [f"{'2-lvl' if lv == 2 else 'ML'}\ncf{cf} {relax}"
                           for lv, cf, relax in configs], fontsize=7)
            ax.axhline(1, color="grey", lw=0.8)
            ax.set_ylabel("speedup over layer-serial")
            ax.set_title(f"N=4096 W=32, P={ranks} (cluster.xml)")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(OUT_DIR / "settings_N4096_W32.png", dpi=110)
        plt.close(fig)
        made.append("settings_N4096_W32.png")
    # one-shot Peaks
    ser = strong_series(PEAKS["depth"], PEAKS["width"], PEAKS["relax"], "cap2", batch=50)
    ts = serial_time(PEAKS["depth"], PEAKS["width"], 50)
    if ser and ts:
        ps = sorted(ser)
        fig, ax = plt.subplots(figsize=(5, 4))
        for md, relax in ONESHOT_VARIANTS.values():
            sr = strong_series(PEAKS["depth"], PEAKS["width"], relax, md, batch=50)
            q = sorted(sr)
            ax.plot(q, [ts / sr[p]["time"] for p in q], "o-",
                    label=f"one-shot step ({md[3:]}+{md[3:]} it., {relax})")
        speedup_axis(ax, ps, "Peaks N=1024 W=16 B=50", xlabel="simulated ranks P",
                     ylabel="speedup over layer-serial step")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(OUT_DIR / "oneshot_peaks.png", dpi=110)
        plt.close(fig)
        made.append("oneshot_peaks.png")
    return made


# ---------------------------------------------------------------------------- the section


def best(series: dict[int, dict[str, Any]], ts: float) -> tuple[int, float] | None:
    if not series:
        return None
    p = min(series, key=lambda q: series[q]["time"])
    return p, ts / series[p]["time"]


def section(made: list[str]) -> str:
    data = CACHE.data
    m = data.get("machine", {})
    L: list[str] = []
    L.append(HEADING)
    L.append(f"<!-- BEGIN {NAME} -->")
    L.append("")
    L.append("Reproduce (from the repository root; resumable, `--fresh` reruns every case, "
             "`--quick` is a smoke test):")
    L.append("")
    L.append("```\nmake scaling        # builds propagate + train_peaks in build/ and propagate "
             "in build/smpi, then:\n.venv/bin/python benchmarks/scaling/run.py [--parts "
             "calibrate,iterations,strong,settings,oneshot,gpu,validate] [--real-build DIR]\n```")
    L.append("")
    host_total = sum(r.get("host_time", 0) for r in data["cases"].values())
    L.append(f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('os', '?')}; "
             f"{m.get('date', '?')}, commit `{str(m.get('git_commit', '?'))[:12]}`. The cost "
             f"tables were calibrated on it (one core, `propagate --calibrate`), and the "
             f"simulated clusters use them 1:1 (`smpi/host-speed:1Gf`; gpu.xml's ranks are "
             f"10x faster). The machine was shared with other work (other simulations) while "
             f"these ran. The modelled runs use `smpi/simulate-computation:no`: only the "
             f"injected callback costs are computation (the engine's own host code and MPI "
             f"bookkeeping cost no simulated time), so their simulated times do not depend "
             f"on that load; the real runs' times do. "
             f"Host time of all cases: {host_total / 60:.0f} min. Everything is in "
             f"`benchmarks/results/scaling.json` (one record per case, keyed by its exact "
             f"settings); plots in `benchmarks/results/scaling/`.")
    L.append("")
    L.append("The problem is `benchmarks/scaling/propagate`'s: one forward and one backward "
             "(adjoint) propagation through a dense tanh ResNet of N layers (width W, batch B, "
             "T = 1), MGRIT over P ranks. *Simulated* runs use `--compute modelled`: the same "
             "engine, options and messages, the callbacks spending their calibrated durations, "
             "with the iteration counts of a real 1-rank run (MGRIT's iterations do not depend "
             "on P). *Layer-serial* is `--levels 1` on one rank (modelled too). *Multilevel* is "
             "`--levels 30` (as many levels as cf and a coarsest grid of >= 2 intervals allow). "
             "*To tol*: each direction solved to the absolute residual tolerance of part "
             "iterations (gradient error <= 1e-6); *capped 2*: exactly 2 iterations per "
             "direction (one-shot). Speedup = layer-serial time / time; efficiency = "
             "T_MGRIT(1 rank) / (P T_MGRIT(P)).")
    L.append("")
    # calibrate
    cal = cases("calibrate")
    if cal:
        L.append("**Cost tables** (seconds per call on one core of this machine; each value "
                 "the minimum over 3 calibrations, since load only adds time: on this shared "
                 "machine single calibrations differed by up to 2x in the steps and 4x in the "
                 "memory-bound sum/pack):")
        L.append("")
        names = ["step_forward_fine", "step_forward_coarse", "step_adjoint_fine",
                 "step_adjoint_coarse", "clone", "sum", "norm", "pack"]
        L.append(table(["W", "B"] + names + ["1-min loads"],
                       [[c["width"], c["batch"]] + [f"{c['costs'][n]:.3g}" for n in names]
                        + [", ".join(f"{x:.1f}" for x in (c.get("loads") or []))]
                        for c in sorted(cal, key=lambda c: (c["width"], c["batch"]))]))
        L.append("")
    # iterations
    its = sorted(cases("iterations"), key=lambda r: tuple(
        r["settings"][k] for k in ("depth", "width", "levels", "cfactor", "relax")))
    probe = cases("tolprobe")
    if its:
        L.append("**Iterations** (real runs, 1 rank, `--serial-reference`). ")
        if probe:
            pr = probe[0]
            L[-1] += ("Tolerance probe at N=1024 W=32 multilevel cf 4: " + ", ".join(
                f"tol {q['tol']:g} {q['relax']}: {q['iterations'][0]}+{q['iterations'][1]} it., "
                f"error {q['error']:.1e}" for q in pr["probes"])
                + f"; chosen start tolerance {pr['tol']:g}, tightened 10x per case where the "
                f"error exceeded 1e-6.")
        L.append("")
        L.append(table(["N", "W", "B", "levels (used)", "cf", "relax", "tol", "iters fwd+adj",
                        "gradient rel. error", "real time 1 rank", "layer-serial real"],
                       [[s["depth"], s["width"], f"{s['batch']}" + (" *" if s["batch"] != 256
                                                                    else ""),
                         f"{'2' if s['levels'] == 2 else 'ML'} ({r['levels_used']})",
                         s["cfactor"], s["relax"], f"{r['tol']:g}",
                         f"{r['iterations_forward']}+{r['iterations_adjoint']}",
                         f"{r['gradient_rel_error']:.1e}", fmt_s(r["time"]) + " s",
                         fmt_s(r["serial_time"]) + " s"]
                        for r in its for s in [r["settings"]]]))
        if any(r["settings"]["batch"] != 256 for r in its):
            L.append("")
            L.append("\\* batch 64 for the count (a real run at N=16384 and batch 256 is too "
                     "expensive here); the simulated runs use batch 256 with these counts.")
        L.append("")
    # strong
    for platform, plabel in (("cluster", "cluster.xml (64 nodes x 32 cores)"),
                             ("gpu", "gpu.xml (16 nodes x 4 GPU-like ranks, 10x faster; "
                                     "the modelled callbacks read the cost table divided by 10, "
                                     "since smpi_execute_benched ignores the host speed)")):
        depths = [d for d in DEPTHS if cases("smpi", depth=d, platform=platform, batch=256,
                                             levels=MULTI)]
        if not depths:
            continue
        L.append(f"**Strong scaling on {plabel}**, batch 256, multilevel cf 4. Simulated "
                 f"seconds for forward + backward; speedup over layer-serial (efficiency):")
        L.append("")
        ranks = [p for p in ALL_RANKS if any(p in strong_series(d, w, rl, md, platform)
                                         for d in depths for w in WIDTHS
                                         for rl in ("F", "FCF") for md in ("tol", "cap2"))]
        rows = []
        for d in depths:
            for w in WIDTHS:
                ts = serial_time(d, w, 256, platform)
                if ts is None:
                    continue
                for md in ("tol", "cap2"):
                    for rl in ("FCF", "F"):
                        ser = strong_series(d, w, rl, md, platform)
                        if not ser:
                            continue
                        t1 = ser.get(1, {}).get("time")
                        it = ser[min(ser)]
                        row = [d, w, rl, "tol" if md == "tol" else "capped 2",
                               f"{it['iterations_forward']}+{it['iterations_adjoint']}",
                               fmt_s(ts)]
                        for p in ranks:
                            if p in ser:
                                t = ser[p]["time"]
                                eff = f" ({t1 / (p * t):.0%})" if t1 else ""
                                row.append(f"{fmt_s(t)} / {ts / t:.2f}x{eff}")
                            else:
                                row.append("-")
                        rows.append(row)
        L.append(table(["N", "W", "relax", "solve", "iters", "layer-serial s"]
                       + [f"P={p}: s / speedup (eff.)" for p in ranks], rows))
        L.append("")
    # breakdown
    if strong_series(4096, 32, "FCF", "tol"):
        L.append("**Where the time goes**, N=4096 W=32 (cluster.xml): per-rank engine profile, "
                 "mean / max over ranks, simulated seconds. *steps*: all step callbacks (of "
                 "which *coarsest*: on the coarsest grid), *wait*: blocked on messages, "
                 "*other* = time - steps - wait (the other callbacks: clone, sum, norm, pack, "
                 "...; message transfer time outside waits; the exchanges around the "
                 "adjoint).")
        L.append("")
        rows = []
        for md in ("tol", "cap2"):
            for rl in ("FCF", "F"):
                ser = strong_series(4096, 32, rl, md)
                for p in sorted(ser):
                    r = ser[p]
                    rows.append([rl, "tol" if md == "tol" else "capped 2", p, fmt_s(r["time"]),
                                 f"{r['step_mean']:.3g} / {r['step_max']:.3g}",
                                 f"{r['step_coarsest_mean']:.3g} / {r['step_coarsest_max']:.3g}",
                                 f"{r['wait_mean']:.3g} / {r['wait_max']:.3g}",
                                 f"{r['other_mean']:.3g} / {r['other_max']:.3g}",
                                 f"{r['steps_max']:.0f}", f"{r['messages_max']:.0f}"])
        L.append(table(["relax", "solve", "P", "time", "steps", "coarsest", "wait", "other",
                        "max steps/rank", "max msgs/rank"], rows))
        L.append("")
    # settings
    ts = serial_time(4096, 32, 256)
    srows = []
    for lv in (2, MULTI):
        for cf in (2, 4, 8, 16):
            for rl in ("F", "FCF"):
                it = one("iterations", depth=4096, width=32, levels=lv, cfactor=cf, relax=rl)
                row = [("two-level" if lv == 2 else "multilevel")
                       + (f" ({it['levels_used']})" if it else ""), cf, rl,
                       f"{it['iterations_forward']}+{it['iterations_adjoint']}" if it else "-"]
                have = False
                for p in (64, 256):
                    for md in ("tol", "cap2"):
                        r = one("smpi", depth=4096, width=32, batch=256, levels=lv, cfactor=cf,
                                relax=rl, mode=md, platform="cluster", ranks=p)
                        if r and ts:
                            have = True
                            row.append(f"{fmt_s(r['time'])} / {ts / r['time']:.2f}x")
                        else:
                            row.append("-")
                if have:
                    srows.append(row)
    if srows:
        L.append(f"**MGRIT settings**, N=4096 W=32 batch 256 on cluster.xml: simulated s / "
                 f"speedup over layer-serial ({fmt_s(ts)} s):")
        L.append("")
        L.append(table(["levels (used)", "cf", "relax", "iters to tol",
                        "P=64 to tol", "P=64 capped 2", "P=256 to tol", "P=256 capped 2"],
                       srows))
        L.append("")
    # one-shot
    ts = serial_time(PEAKS["depth"], PEAKS["width"], 50)
    sers = {name: strong_series(PEAKS["depth"], PEAKS["width"], relax, md, batch=50)
            for name, (md, relax) in ONESHOT_VARIANTS.items()}
    tr = {r["settings"]["name"]: r for r in cases("train_peaks")}
    if sers["iters2"] and ts:
        L.append(f"**One-shot Peaks steps** (N={PEAKS['depth']}, width {PEAKS['width']}, batch "
                 f"{PEAKS['batch']} as train_peaks' default, multilevel cf 4, FCF or F relaxation, "
                 f"2 or 3 iterations per direction, `--no-skip`: full V-cycles from the first, as in "
                 f"the warm-started solves of training; cluster.xml): simulated time of one "
                 f"forward + "
                 f"backward (a training step's gradient; the optimiser update is not included). "
                 f"Layer-serial: {ts * 1e3:.3g} ms per step. *Time to 90 %*: steps to 90 % "
                 f"validation accuracy in the real training run below x the simulated time per "
                 f"step.")
        L.append("")
        s90 = {k: v.get("steps_to_90") for k, v in tr.items()}
        rows = []
        if s90.get("serial"):
            rows.append(["layer-serial", 1, f"{ts * 1e3:.3g} ms", "1.00x",
                         f"{s90['serial'] * ts:.3g} s ({s90['serial']} steps)"])
        for k, (md, relax) in ONESHOT_VARIANTS.items():
            for p in sorted(sers[k]):
                r = sers[k][p]
                t90 = (f"{s90[k] * r['time']:.3g} s ({s90[k]} steps, "
                       f"{s90['serial'] * ts / (s90[k] * r['time']):.2f}x)"
                       if s90.get(k) and s90.get("serial") else "not reached")
                rows.append([f"one-shot, {md[3:]} iterations {relax}", p,
                             f"{r['time'] * 1e3:.3g} ms", f"{ts / r['time']:.2f}x", t90])
        L.append(table(["method", "P", "time per step", "speedup per step",
                        "time to 90 % validation"], rows))
        L.append("")
        for k, t in sorted(tr.items()):
            accs = ", ".join(f"{e['val_accuracy'] * 100:.1f}" for e in t["epochs"])
            L.append(f"- Training `train_peaks {' '.join(t['args'])}` (real, 1 rank, Adam, "
                     f"{t['steps_per_epoch']} steps per epoch, log `{t['log']}`): validation "
                     f"accuracy % per epoch: {accs}; "
                     + (f"90 % first after {t['steps_to_90']} steps (epoch granularity)."
                        if t.get("steps_to_90") else "90 % not reached."))
        L.append("")
    # validate
    val = cases("validate")
    if val:
        L.append("**Real vs simulated on this machine** (N=1024 W=32 B=256, 4 levels cf 4 FCF, "
                 "to tol): real under mpiexec (fastest of 5), modelled under mpiexec (busy "
                 "waits, fastest of 5), real compute under smpirun on host.xml (fastest of 3), "
                 "modelled under smpirun on host.xml (fastest of 3; `simulate-computation:no` "
                 "as in the study, so the engine's own host code is not charged); modelled "
                 "runs use the real "
                 "run's iteration counts. The per-rank steps, coarsest steps, messages and "
                 "bytes are identical in all four (asserted). The machine was shared (the "
                 "1-minute load is given; 2 cores): the mpiexec runs, 2 ranks especially, "
                 "are slowed by it, the simulations hardly.")
        L.append("")
        rows = []
        for ranks in (1, 2):
            rr = {r["settings"]["how"]: r for r in val if r["settings"]["ranks"] == ranks}
            if "real-mpiexec" not in rr:
                continue
            base = rr["real-mpiexec"]["time"]
            row = [ranks, f"{base:.4f} s (load {rr['real-mpiexec'].get('load_before', 0):.1f}"
                   f"-{rr['real-mpiexec'].get('load_after', 0):.1f})"]
            for how in ("modelled-mpiexec", "real-smpirun", "modelled-smpirun"):
                r = rr.get(how)
                row.append(f"{r['time']:.4f} s ({r['time'] / base - 1:+.1%})" if r else "-")
            row.append(str(rr["real-mpiexec"]["per_rank"]["steps"]))
            rows.append(row)
        L.append(table(["ranks", "real, mpiexec (1-min load before-after)",
                        "modelled, mpiexec (busy waits)", "real, smpirun",
                        "modelled, smpirun", "steps per rank"], rows))
        L.append("")
    L.extend(conv_part.section(sys.modules[__name__]))
    # findings
    f = findings()
    if f:
        L.append("Findings:")
        L.append("")
        L.extend(f"- {x}" for x in f)
        L.append("")
    if made:
        L.append("Plots: " + ", ".join(f"`benchmarks/results/scaling/{p}`" for p in made) + ".")
        L.append("")
    L.append(f"<!-- END {NAME} -->")
    return "\n".join(L) + "\n"


def findings() -> list[str]:
    out = []
    for d in DEPTHS:
        for w in WIDTHS:
            ts = serial_time(d, w, 256)
            if ts is None:
                continue
            parts = []
            for md in ("tol", "cap2"):
                bests = []
                for rl in ("FCF", "F"):
                    b = best(strong_series(d, w, rl, md), ts)
                    if b:
                        bests.append((b[1], b[0], rl))
                if bests:
                    s, p, rl = max(bests)
                    one_rank = strong_series(d, w, rl, md).get(1)
                    extra = (f"; MGRIT on 1 rank is {one_rank['time'] / ts:.1f}x slower than "
                             f"layer-serial" if one_rank else "")
                    parts.append(f"{'to tolerance' if md == 'tol' else 'capped at 2'}: best "
                                 f"{s:.2f}x at P={p} ({rl}){extra}")
            if parts:
                out.append(f"N={d}, W={w} (layer-serial {fmt_s(ts)} s): " + "; ".join(parts)
                           + ".")
    ts = serial_time(4096, 32, 256)
    if ts:
        srecs = [r for r in cases("smpi", depth=4096, width=32, batch=256, platform="cluster")
                 if r["settings"]["mode"] in ("tol", "cap2")]
        for md in ("tol", "cap2"):
            rs = [r for r in srecs if r["settings"]["mode"] == md]
            if rs:
                r = min(rs, key=lambda r: r["time"])
                s = r["settings"]
                out.append(f"N=4096 W=32 {'to tolerance' if md == 'tol' else 'capped at 2'}, "
                           f"best over every setting simulated: {ts / r['time']:.2f}x at "
                           f"P={s['ranks']}, {'two-level' if s['levels'] == 2 else 'multilevel'}"
                           f" cf {s['cfactor']} {s['relax']} ({fmt_s(r['time'])} s).")
    for rl in ("FCF", "F"):
        ser = strong_series(4096, 32, rl, "tol")
        if len(ser) < 3:
            continue
        ps = sorted(ser)
        desc = "; ".join(
            f"P={p}: steps {ser[p]['step_mean'] / ser[p]['time']:.0%}, wait "
            f"{ser[p]['wait_mean'] / ser[p]['time']:.0%}, other "
            f"{ser[p]['other_mean'] / ser[p]['time']:.0%} of {fmt_s(ser[p]['time'])} s"
            for p in ps if p >= 16)
        big = ps[-1]
        r = ser[big]
        out.append(
            f"Where the time goes (N=4096 W=32 {rl} to tolerance, means over ranks): {desc}. "
            f"The coarsest grid is not the bottleneck (its steps take at most "
            f"{r['step_coarsest_max'] * 1e3:.2g} ms on any rank); the messages per rank stay "
            f"at {r['messages_max']:.0f} whatever P, but the time waiting for them grows "
            f"({ser[ps[1]]['wait_mean'] * 1e3:.3g} ms at P={ps[1]}, "
            f"{r['wait_mean'] * 1e3:.3g} ms at P={big}): once a rank holds a few layers, "
            f"each relaxation and restriction waits on its neighbours' messages in turn, "
            f"and *other* (the non-step callbacks, sends, the exchanges around the adjoint) "
            f"no longer shrinks.")
        break
    ser = strong_series(PEAKS["depth"], PEAKS["width"], PEAKS["relax"], "cap2", batch=50)
    ts = serial_time(PEAKS["depth"], PEAKS["width"], 50)
    if ser and ts:
        p, s = best(ser, ts)
        cal = one("calibrate", width=PEAKS["width"], batch=PEAKS["batch"])
        step = (f"{cal['costs']['step_forward_fine'] * 1e6:.1f} us" if cal else "a few us")
        out.append(f"One-shot Peaks step (N=1024 W=16 B=50, 2+2 iterations, full V-cycles): "
                   f"best {s:.2f}x over layer-serial at P={p} (N/4 = 256 is the most ranks "
                   f"here); at this small state (800 doubles) a step costs {step}, so the "
                   f"messages weigh more than at B=256. With 2 iterations the real 1024-layer "
                   f"training did not reach 90 % validation (it stalled near 60 %); with 3 it "
                   f"did, after as many steps as layer-serial with FCF relaxation, after more "
                   f"with F relaxation, whose steps are cheaper (see the table for time to 90 %"
                   f" per variant).")
    g = strong_series(4096, 32, "FCF", "tol", "gpu")
    tsg = serial_time(4096, 32, 256, "gpu")
    if g and tsg:
        p, s = best(g, tsg)
        c = strong_series(4096, 32, "FCF", "tol").get(p)
        ts_c = serial_time(4096, 32, 256)
        cmp_ = (f" (cluster.xml at the same P: {ts_c / c['time']:.2f}x)" if c and ts_c else "")
        out.append(f"gpu.xml, N=4096 W=32 FCF to tolerance: best {s:.2f}x over (GPU-speed) "
                   f"layer-serial at P={p}{cmp_}: with 10x faster steps and faster links "
                   f"(NVLink inside a node, NDR between nodes) the balance hardly moves at "
                   f"these rank counts; only absolute times shrink 10x.")
    return out


# ------------------------------------------------------------------------------- main


def main() -> None:
    global QUICK, FRESH, CACHE, MPIEXEC, JSON_PATH, OUT_DIR, RANKS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default=",".join(ALL_PARTS),
                    help="comma-separated subset of " + ",".join(ALL_PARTS))
    ap.add_argument("--quick", action="store_true",
                    help="tiny subset (its own JSON/plots under /tmp; no BENCHMARKS.md)")
    ap.add_argument("--fresh", action="store_true", help="rerun cases already cached")
    ap.add_argument("--markdown-only", action="store_true",
                    help="plots and BENCHMARKS.md section from the JSON, nothing run")
    ap.add_argument("--real-build", default="build",
                    help="plain build tree with propagate and train_peaks (default build)")
    ap.add_argument("--smpi-build", default="build/smpi",
                    help="SMPI build tree with propagate (default build/smpi)")
    ap.add_argument("--max-ranks", type=int, default=1024,
                    help="largest simulated rank count of parts strong, oneshot, gpu (default 1024)")
    ap.add_argument("--depths", default=",".join(map(str, DEPTHS)),
                    help="depths of part strong (default all)")
    args = ap.parse_args()
    QUICK, FRESH = args.quick, args.fresh
    global REAL_BIN, SMPI_BIN, TRAIN_BIN
    real, smpi = REPO / args.real_build, REPO / args.smpi_build
    REAL_BIN = real / "benchmarks" / "scaling" / "propagate"
    TRAIN_BIN = real / "examples" / "cpp" / "train_peaks"
    SMPI_BIN = smpi / "benchmarks" / "scaling" / "propagate"
    if QUICK:
        qd = Path(tempfile.gettempdir()) / "layerbraid_scaling_quick"
        JSON_PATH, OUT_DIR = qd / "scaling.json", qd / "scaling"
    CACHE = Cache(JSON_PATH)
    RANKS = [p for p in RANKS if p <= args.max_ranks]
    parts = [p for p in args.parts.split(",") if p]
    bad = set(parts) - set(ALL_PARTS)
    if bad:
        ap.error(f"unknown parts {sorted(bad)}")
    t0 = time.time()
    if not args.markdown_only:
        for b in (REAL_BIN, SMPI_BIN):
            if not b.exists():
                sys.exit(f"{b} is missing: run make scaling (or build it)")
        MPIEXEC = mpiexec()
        CACHE.set_machine(machine_info(1, {"simgrid": simgrid_version()}))
        if QUICK:
            global WIDTHS, TOL_PROBE
            RANKS, WIDTHS, TOL_PROBE = [1, 4, 16], [32], [1e-4]
        for part in [p for p in ALL_PARTS if p in parts]:
            log(f"part {part}")
            if part == "calibrate":
                part_calibrate()
            elif part == "iterations":
                depths = [1024] if QUICK else [int(d) for d in args.depths.split(",")]
                for d in depths:
                    for w in WIDTHS:
                        for relax in ("F", "FCF"):
                            iterations(d, w, MULTI, 4, relax)
                    if d == 4096 or QUICK:
                        for lv, cf, relax in settings_grid():
                            iterations(1024 if QUICK else 4096, 32, lv, cf, relax)
            elif part == "strong":
                part_strong([1024] if QUICK else [int(d) for d in args.depths.split(",")])
            elif part == "settings":
                part_settings()
            elif part == "oneshot":
                part_oneshot()
            elif part == "gpu":
                part_gpu()
            elif part == "validate":
                part_validate()
            elif part == "conv":
                conv_part.part_conv(sys.modules[__name__])
        log(f"parts done in {time.time() - t0:.0f} s")
    made = plots()
    if QUICK:
        print(section(made))
        log(f"quick run: results in {JSON_PATH.parent}")
    else:
        write_section(NAME, HEADING, section(made))


MPIEXEC = "mpiexec"


def simgrid_version() -> str:
    try:
        p = subprocess.run(["smpirun", "-version"], capture_output=True, text=True, timeout=30)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


if __name__ == "__main__":
    main()
