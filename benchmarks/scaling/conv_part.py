"""Part ``conv`` of benchmarks/scaling/run.py: conv ResNets with spatial coarsening.

Two image sets, each lifted into C channels by a fixed random opening (u_0 = tanh(a_c x +
b_c), a_c ~ N(0, 4), b_c ~ N(0, 0.25), seed 0), then forward + backward through N = 1024 conv
layers (3x3, tanh, C x C kernels N(0, 1/(9 C))) with MGRIT, multilevel cf 4, F and FCF:

- ``digits``: scikit-learn's 8x8 digits, C = 8, batch 64; spatial coarsening S = 0, 1, 2;
- ``shapes32``: layerbraid.data.shapes (32x32 disc/square/ring/cross), C = 4, batch 16;
  S = 0, 1, 2, 3.

S halvings: coarse level l computes on images halved min(l, S) times (the library's default
kind: full-size states, low-resolution layer updates, SolverOptions::spatial_coarsen). The
iteration counts to a gradient error <= 1e-6 come from real 1-rank runs; the modelled runs on
cluster.xml reuse them with the calibrated costs of each resolution. One more real case per
set shows the other kind (``--spatial-states``: low-resolution coarse states, the engine's
braid_SetSpatialCoarsen), whose iterations grow like depth / cfactor, at depth 256.

The functions take ``R``, the run.py module (its cache, runners and settings).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

DEPTH = 1024
RANKS = (1, 4, 16, 64, 256)
SETS: dict[str, dict[str, Any]] = {
    "digits": {"image": (8, 8), "channels": 8, "batch": 64, "spatial": (0, 1, 2)},
    "shapes32": {"image": (32, 32), "channels": 4, "batch": 16, "spatial": (0, 1, 2, 3)},
}
STATES_DEPTH = 256    # the low-resolution-states kind, whose iterations grow with depth
INPUT_DIR = Path(tempfile.gettempdir()) / "layerbraid_scaling_inputs"


def images(name: str, batch: int) -> np.ndarray:
    """The first ``batch`` training images of the set, (batch, height, width) in [0, 1]."""
    from layerbraid import data

    d = data.digits() if name == "digits" else data.shapes(batch, 1, seed=0)
    return np.asarray(d.x_train[:batch, 0], dtype=np.float64)


def input_file(name: str) -> Path:
    """u_0 of the set as raw float64 NHWC (propagate --input), made on first use."""
    spec = SETS[name]
    c, b = spec["channels"], spec["batch"]
    f = INPUT_DIR / f"u0_{name}_b{b}_c{c}.f64"
    if not f.exists():
        rng = np.random.default_rng(0)
        a, off = rng.normal(0.0, 2.0, c), rng.normal(0.0, 0.5, c)
        u0 = np.tanh(images(name, b)[..., None] * a + off)      # (B, H, W, C)
        INPUT_DIR.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".tmp")
        tmp.write_bytes(np.ascontiguousarray(u0, dtype="<f8").tobytes())
        tmp.replace(f)
    return f


def digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


def base_settings(name: str) -> dict[str, Any]:
    spec = SETS[name]
    h, w = spec["image"]
    return {"network": "conv", "dataset": name, "channels": spec["channels"],
            "image": f"{h}x{w}", "batch": spec["batch"], "kernel": 3,
            "input_sha1": digest(input_file(name))}


def conv_args(s: dict[str, Any], computes: bool = True) -> list[str]:
    """propagate's options of a conv case (run.py's propagate_args adds the MGRIT ones);
    u_0 (--input) only for runs that compute (real mode)."""
    a = ["--network", "conv", "--channels", s["channels"], "--image", s["image"],
         "--kernel", s["kernel"], "--spatial", s.get("spatial", 0)]
    if computes:
        a += ["--input", input_file(s["dataset"])]
    if s.get("spatial_states"):
        a.append("--spatial-states")
    return [str(x) for x in a]


def costs_file(R: ModuleType, name: str) -> Path:
    return R.OUT_DIR / f"costs_conv_{name}.json"


def calibrate(R: ModuleType, name: str, refresh: bool = False) -> Path:
    """The conv cost table of the set (every resolution down to its largest S): the
    element-wise minimum of R.CAL_REPEAT calibrations, as run.py's dense tables."""
    f = costs_file(R, name)
    if f.exists() and not (refresh and R.FRESH):
        return f
    spec = SETS[name]
    s = dict(base_settings(name), spatial=max(spec["spatial"]))
    R.OUT_DIR.mkdir(parents=True, exist_ok=True)
    tables = []
    with tempfile.TemporaryDirectory() as d:
        for i in range(R.CAL_REPEAT):
            R.wait_quiet(limit=15)
            g = Path(d) / f"c{i}.json"
            args = ["--depth", str(DEPTH), "--batch", str(s["batch"]),
                    *conv_args(s, computes=False)]
            subprocess.run([str(R.REAL_BIN), *args, "--calibrate", str(g)], check=True,
                           env=R.thread_env(), stdout=subprocess.DEVNULL)
            tables.append(json.loads(g.read_text()))
    t = tables[0]
    t["costs"] = {k: min(x["costs"][k] for x in tables) for k in t["costs"]}
    f.write_text(json.dumps(t) + "\n")
    R.log(f"calibrate conv {name}: wrote {f.name}: step fwd {t['costs']['step_forward_fine']:.3g}"
          f" s, adj {t['costs']['step_adjoint_fine']:.3g} s")
    return f


def iterations(R: ModuleType, name: str, spatial: int, relax: str, *, depth: int = DEPTH,
               states: bool = False) -> dict[str, Any]:
    """Iterations to a gradient error <= 1e-6 (a real 1-rank run, tightened by 10x until
    it is), cached."""
    settings = dict(base_settings(name), depth=depth, levels=R.MULTI, cfactor=4, relax=relax,
                    spatial=spatial, target=R.GRAD_TARGET)
    if states:
        settings["spatial_states"] = True

    def compute() -> dict[str, Any]:
        tol = R.tol_start()
        tries = []
        for _ in range(4):
            s = dict(settings, tol=tol, serial_reference=True)
            s.pop("target")
            out = R.run_real(s)
            tries.append({"tol": tol, "error": out["gradient_rel_error"],
                          "iterations": [out["iterations_forward"], out["iterations_adjoint"]]})
            R.log(f"iterations conv {name} N={depth} S={spatial}{' states' if states else ''} "
                  f"{relax} tol={tol:g}: {out['iterations_forward']}/{out['iterations_adjoint']}"
                  f" error {out['gradient_rel_error']:.2e} ({out['host_time']:.0f} s)")
            if out["gradient_rel_error"] <= R.GRAD_TARGET:
                break
            tol /= 10
        return {"tol": tol, "tries": tries, **R.summarise(out)}
    return R.cached("iterations", settings, compute)


def modelled(R: ModuleType, name: str, spatial: int, relax: str, mode: str, ranks: int,
             platform: str = "cluster") -> dict[str, Any]:
    """One modelled SMPI case (mode "tol", "cap2" or "serial"), cached."""
    s: dict[str, Any] = dict(base_settings(name), depth=DEPTH, levels=R.MULTI, cfactor=4,
                             relax=relax, spatial=spatial, compute="modelled",
                             host_bursts="off", costs=str(costs_file(R, name)))
    if mode == "serial":
        s.update(levels=1, iters=1, spatial=0)
    elif mode.startswith("cap"):
        s["iters"] = int(mode[3:])
    else:
        it = iterations(R, name, spatial, relax)
        s.update(iters_forward=it["iterations_forward"], iters_adjoint=it["iterations_adjoint"])
    calibrate(R, name)
    key = dict(s, platform=platform, ranks=ranks, mode=mode,
               costs_sha1=digest(costs_file(R, name)))
    key.pop("costs")

    def compute() -> dict[str, Any]:
        out = R.run_smpi(s, platform, ranks)
        R.log(f"{platform} conv {name} P={ranks} S={spatial} {relax} {mode}: "
              f"{out['time']:.4g} s simulated, {out['host_time']:.0f} s host")
        return R.summarise(out)
    return R.cached("smpi", key, compute)


def validate_settings(R: ModuleType) -> dict[str, Any]:
    """The conv case validated real against simulated (run.py's part_validate): digits,
    S = 2, F, to tolerance."""
    return dict(base_settings("digits"), depth=DEPTH, levels=R.MULTI, cfactor=4, relax="F",
                spatial=2, costs=str(costs_file(R, "digits")))


def part_conv(R: ModuleType) -> None:
    for name, spec in SETS.items():
        calibrate(R, name, refresh=True)
        for spatial in spec["spatial"]:
            for relax in ("F", "FCF"):
                iterations(R, name, spatial, relax)
        iterations(R, name, 0, "FCF", depth=STATES_DEPTH)
        iterations(R, name, 1, "FCF", depth=STATES_DEPTH)
        iterations(R, name, 1, "FCF", depth=STATES_DEPTH, states=True)
        modelled(R, name, 0, "FCF", "serial", 1)
        if name == "digits":
            R.part_validate(validate_settings(R))
        for ranks in RANKS:
            for spatial in spec["spatial"]:
                for relax in ("F", "FCF"):
                    for mode in ("tol", "cap2"):
                        modelled(R, name, spatial, relax, mode, ranks)


# ------------------------------------------------------------------------------ reporting


def plot(R: ModuleType) -> list[str]:
    """conv_speedup.png: speedup over layer-serial against P, one panel per image set, one
    curve per S (F relaxation, to tolerance solid, capped at 2 iterations dashed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in SETS if _case(R, "smpi", dataset=n, mode="serial")]
    if not names:
        return []
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        ts = _case(R, "smpi", dataset=name, mode="serial")["time"]
        for spatial in SETS[name]["spatial"]:
            for mode, ls in (("tol", "-"), ("cap2", "--")):
                pts = [(p, r["time"]) for p in RANKS
                       if (r := _case(R, "smpi", dataset=name, spatial=spatial, relax="F",
                                      mode=mode, ranks=p))]
                if pts:
                    ax.plot([p for p, _ in pts], [ts / t for _, t in pts], ls, marker="o",
                            color=f"C{spatial}",
                            label=f"S={spatial} {'tol' if mode == 'tol' else 'capped 2'}")
        h, w = SETS[name]["image"]
        R.speedup_axis(ax, list(RANKS),
                       f"{name}: N = {DEPTH} conv, {h}x{w}, C = {SETS[name]['channels']}, F")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(R.OUT_DIR / "conv_speedup.png", dpi=110)
    plt.close(fig)
    return ["conv_speedup.png"]


def _case(R: ModuleType, kind: str, **match: Any) -> dict[str, Any] | None:
    """The conv case of these settings; the default kind (full-size states) unless
    spatial_states=True is asked for."""
    match.setdefault("spatial_states", None)
    found = R.cases(kind, network="conv", **match)
    return found[0] if found else None


def section(R: ModuleType) -> list[str]:
    """The BENCHMARKS.md lines of the conv part (empty when nothing was run)."""
    L: list[str] = []
    if not R.cases("smpi", network="conv"):
        return L
    L.append("**Conv networks with spatial coarsening** (cluster.xml, N = 1024 3x3 conv "
             "layers, tanh, multilevel cf 4; forward + backward; speedup over layer-serial on "
             "one rank; iterations to a gradient error <= 1e-6 from real 1-rank runs). S: "
             "coarse level l computes on images halved min(l, S) times (full-size states, "
             "low-resolution layer updates: the library's default kind).")
    L.append("")
    for name, spec in SETS.items():
        serial = _case(R, "smpi", dataset=name, mode="serial")
        if serial is None:
            continue
        ts = serial["time"]
        h, w = spec["image"]
        L.append(f"*{name}* ({h}x{w}, C = {spec['channels']}, batch {spec['batch']}; "
                 f"layer-serial {ts:.4g} s):")
        L.append("")
        rows = []
        for spatial in spec["spatial"]:
            for relax in ("F", "FCF"):
                it = _case(R, "iterations", dataset=name, spatial=spatial, relax=relax,
                           depth=DEPTH)
                row = [spatial, relax,
                       f"{it['iterations_forward']}+{it['iterations_adjoint']}" if it else "-",
                       f"{it['gradient_rel_error']:.1e}" if it else "-"]
                for mode in ("tol", "cap2"):
                    best = None
                    for ranks in RANKS:
                        r = _case(R, "smpi", dataset=name, spatial=spatial, relax=relax,
                                  mode=mode, ranks=ranks)
                        if r and (best is None or r["time"] < best[1]["time"]):
                            best = (ranks, r)
                    if best:
                        ranks, r = best
                        wait = r["wait_mean"] / r["time"]
                        row.append(f"{ts / r['time']:.1f}x at P={ranks} ({wait:.0%} waiting)")
                    else:
                        row.append("-")
                rows.append(row)
        L.append(R.table(["S", "relax", "iterations", "gradient error", "to tolerance",
                          "capped 2"], rows))
        L.append("")
    val = {(r["settings"]["ranks"], r["settings"]["how"]): r
           for r in R.cases("validate", network="conv", spatial_states=None)}
    if val:
        L.append("Real against simulated for this conv case on this machine (digits, S = 2, F, "
                 "to tolerance; the four ways of the dense validation above; per-rank steps, "
                 "coarsest steps, messages and bytes identical in all four, asserted):")
        L.append("")
        rows = []
        for ranks in (1, 2):
            base = val.get((ranks, "real-mpiexec"))
            if base is None:
                continue
            row = [ranks, f"{base['time']:.4f} s (load {base.get('load_before', 0):.1f})"]
            for how in ("modelled-mpiexec", "real-smpirun", "modelled-smpirun"):
                r = val.get((ranks, how))
                row.append(f"{r['time']:.4f} s ({r['time'] / base['time'] - 1:+.1%})" if r
                           else "-")
            rows.append(row)
        L.append(R.table(["ranks", "real, mpiexec", "modelled, mpiexec", "real, smpirun",
                          "modelled, smpirun"], rows))
        L.append("")
    states = []
    for name in SETS:
        r0 = _case(R, "iterations", dataset=name, spatial=0, relax="FCF", depth=STATES_DEPTH)
        r1 = _case(R, "iterations", dataset=name, spatial=1, relax="FCF", depth=STATES_DEPTH)
        rs = _case(R, "iterations", dataset=name, spatial=1, relax="FCF", depth=STATES_DEPTH,
                   spatial_states=True)
        if r0 and r1 and rs:
            states.append(f"{name}: S=0 {r0['iterations_forward']}, S=1 full-size states "
                          f"{r1['iterations_forward']}, S=1 low-resolution states "
                          f"{rs['iterations_forward']}")
    if states:
        L.append(f"The other kind, low-resolution coarse states (`spatial_states`, the engine's "
                 f"braid_SetSpatialCoarsen), at N = {STATES_DEPTH}, FCF, forward iterations: "
                 + "; ".join(states) + ". A residual layer carries fine detail along "
                 "undamped and a coarse grid of low-resolution states cannot correct it, so "
                 "that part converges only by relaxation, cf points per iteration.")
        L.append("")
    return L
