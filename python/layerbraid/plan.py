"""``layerbraid plan``: recommend MGRIT settings for a layer-parallel run and predict its time.

A cost model of one training step (a forward and an adjoint solve) on P ranks of a platform:

- **Costs** (:class:`CostTable`): seconds per engine callback (layer step forward/adjoint on
  the finest and on coarse levels, and the vector operations clone, sum, norm, init, pack,
  unpack on a state of ``batch * width`` doubles), measured on this machine by
  :func:`calibrate` (dense) or :func:`calibrate_conv` (convolutional) or read from a JSON file
  (the same layout as ``benchmarks/scaling/propagate --calibrate FILE`` writes). A conv table
  also has the costs at each halved image resolution s = 1..S (``<name>_s<s>``: coarse steps,
  vector operations, the 2x2 pooling ``coarsen_s<s>`` from s - 1 to s and the copy back
  ``refine_s<s>``) and ``kernel_coarsen`` (one Galerkin coarse kernel).
- **Platform** (:class:`Platform`): a SimGrid platform file (``platforms/host.xml``,
  ``cluster.xml``, ``gpu.xml`` shipped with the package, or a path) read as data: core speed
  relative to the calibrating machine, cores per host, link and loopback latency/bandwidth,
  fat-tree leaves.
- **Work** (:func:`rank_levels`, :func:`step_counts`): what extern/braid does on each rank,
  derived from its algorithm (grid.c, drive.c, relax.c, transfer.c): points blocked over the
  ranks, levels coarsened by cfactor while the coarse grid keeps min_coarse intervals, a
  V-cycle of relaxation, restriction with the FAS coarse step, the sequential coarsest-grid
  solve, interpolation (F-relaxation plus correction), the skipped first down-cycle, the final
  access sweep. The step counts equal the engine's own (``steps`` in the native solve infos).
- **Time** (:func:`predict`): a critical-path estimate, one function per term: for every
  sweep the slowest rank's work plus one neighbour message; the coarsest solve as a chain
  across the ranks holding coarse points; the residual norm and the final success vote as
  binomial-tree reductions (2 log2 P message latencies).

Spatial coarsening (conv networks, ``Settings.spatial`` = S, the native backend's
``SolverOptions.spatial_coarsen``): time level l steps on images halved s = min(l, S) times;
the step counts do not change. Two kinds (``Settings.spatial_states``, as the library):

- full-size states (the default): vectors, vector operations and messages stay full size; a
  coarse step at s > 0 costs the step at resolution s plus moving the state there and back
  (s poolings, a copy, a subtraction at s, s refinements).
- low-resolution states: vector operations and messages on level l cost what they cost at
  resolution s, and the engine adds its user coarsen (restriction: the restricted value and
  the FAS right-hand side at each C-point; the skipped first cycle: the initial guess at every
  coarse point of every level) and refine (interpolation: the correction at every coarse
  point) calls; from level l to l + 1 coarsen is a 2x2 pooling when l < S and a copy
  otherwise. Such solves need many more iterations (the coarse grid cannot correct fine
  detail), which the measured iteration counts show.

Either way, before the solves every rank coarsens its layers' kernels (S per layer) and, for
the adjoint, the layers' sigma'(z) at each s (:func:`spatial_setup`). Messages of
low-resolution states carry a 16-byte header (the state's resolution), others are the bare
state.

:func:`recommend` searches levels, cfactor, relaxation (one-shot cycles, and for conv networks
spatial coarsening) and says plainly when layer-serial training is faster.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "COST_NAMES", "SPATIAL_COST_NAMES", "CostTable", "ConvShape", "calibrate", "calibrate_conv",
    "load_costs", "save_costs",
    "Platform", "load_platform", "PLATFORMS",
    "Settings", "RankLevel", "rank_levels", "level_sizes", "step_counts",
    "Prediction", "predict", "serial_time", "spatial_setup", "measure_iterations",
    "Plan", "recommend", "format_plan", "add_arguments", "run",
]

#: The per-call costs of a cost table, in seconds, in the order the JSON file lists them.
COST_NAMES = ("step_forward_fine", "step_forward_coarse", "step_adjoint_fine",
              "step_adjoint_coarse", "clone", "sum", "norm", "init", "pack", "unpack")

#: The costs a conv table has at every halved resolution s = 1..spatial, as ``<name>_s<s>``
#: (coarsen: the 2x2 pooling from resolution s - 1 to s; refine: the copy from s to s - 1).
SPATIAL_COST_NAMES = ("step_forward_coarse", "step_adjoint_coarse", "clone", "sum", "norm",
                      "pack", "unpack", "coarsen", "refine")
#: Halvings of the image a conv table or plan may use (spatial_coarsen at most this).
MAX_SPATIAL = 3
#: Bytes a conv message with low-resolution states carries besides the state (the resolution it
#: was packed at); other messages are the bare state.
CONV_MESSAGE_HEADER = 16

#: The platform files shipped with the package (``--platform NAME``).
PLATFORMS = ("host", "cluster", "gpu")
PLATFORM_DIR = Path(__file__).resolve().parent / "platforms"

RELAXATIONS = {"F": 0, "FCF": 1}
_MAX_COST = 1e3           # seconds; a cost above it is not a per-call cost
_MAX_FILE = 1 << 20       # bytes of a cost table or platform file
_MAX_HOSTS = 1 << 22      # hosts a platform file may name (their names are kept)


# ------------------------------------------------------------------------------------------
# cost tables
# ------------------------------------------------------------------------------------------

def _cost_key(name: str, s: int = 0) -> str:
    return name if s == 0 else f"{name}_s{s}"


def _halvings(n: int) -> int:
    """How often n halves exactly (2x2 pooling needs even sizes), capped at MAX_SPATIAL."""
    k = 0
    while k < MAX_SPATIAL and n % 2 == 0 and n > 1:
        n //= 2
        k += 1
    return k


@dataclass(frozen=True)
class ConvShape:
    """A convolutional ResNet layer: ``channels`` x ``height`` x ``width`` NHWC images, same
    padded ``kernel`` x ``kernel`` convolutions (the native backend's Conv)."""

    channels: int
    height: int
    width: int
    kernel: int = 3

    def __post_init__(self) -> None:
        for name in ("channels", "height", "width", "kernel"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1 or v > 1 << 20:
                raise ValueError(f"conv {name} must be a positive integer, got {v!r}")
        if self.kernel % 2 == 0:
            raise ValueError(f"conv kernel must be odd (same padding), got {self.kernel}")

    @property
    def features(self) -> int:
        """Doubles of one image: channels * height * width (the cost table's width)."""
        return self.channels * self.height * self.width

    @property
    def max_spatial(self) -> int:
        """The most halvings spatial coarsening may use: height and width stay even at every
        2x2 pooling, at most MAX_SPATIAL."""
        return min(_halvings(self.height), _halvings(self.width))

    def image(self, s: int = 0) -> tuple[int, int]:
        """(height, width) of the images halved s times."""
        return self.height >> s, self.width >> s

    def __str__(self) -> str:
        return f"{self.channels}x{self.height}x{self.width} k{self.kernel}"


@dataclass(frozen=True)
class CostTable:
    """Seconds per callback for one network and batch: dense tanh layers of ``width``, or
    (network "conv") conv tanh layers of ``channels`` x ``height`` x ``image_width`` images,
    ``kernel`` x ``kernel``, with the costs at resolutions 0..``spatial`` (see
    :data:`SPATIAL_COST_NAMES`); ``width`` is then channels * height * image_width."""

    host: str
    width: int
    batch: int
    costs: Mapping[str, float]
    network: str = "dense"
    activation: str = "tanh"
    notes: tuple[str, ...] = ()
    channels: int = 0          # conv only, as are the fields below
    height: int = 0
    image_width: int = 0
    kernel: int = 0
    spatial: int = 0           # resolutions 1..spatial are in costs

    @property
    def state_size(self) -> int:
        return self.width * self.batch

    @property
    def conv(self) -> ConvShape | None:
        if self.network != "conv":
            return None
        return ConvShape(self.channels, self.height, self.image_width, self.kernel)

    def state_size_at(self, s: int = 0) -> int:
        """Doubles of a state on images halved s times (dense: the state size)."""
        if self.network != "conv" or s == 0:
            return self.state_size
        return self.batch * self.channels * (self.height >> s) * (self.image_width >> s)

    @property
    def message_bytes(self) -> int:
        """Bytes of one engine message: a state of float64."""
        return self.message_bytes_at(0)

    def message_bytes_at(self, s: int = 0, header: bool = False) -> int:
        """Bytes of one engine message at resolution s: a state of float64, and with
        ``header`` (conv, low-resolution states) CONV_MESSAGE_HEADER bytes more."""
        return 8 * self.state_size_at(s) + (CONV_MESSAGE_HEADER if header else 0)

    def key(self, name: str, s: int = 0) -> str:
        """The cost of callback `name` at resolution s (its name, or ``<name>_s<s>``)."""
        return _cost_key(name, s)

    def names(self) -> tuple[str, ...]:
        """Every cost this table has, in the order its JSON lists them."""
        out = list(COST_NAMES)
        for s in range(1, self.spatial + 1):
            out += [self.key(n, s) for n in SPATIAL_COST_NAMES]
        if "kernel_coarsen" in self.costs or self.spatial > 0:
            out.append("kernel_coarsen")
        return tuple(out)

    def __getitem__(self, name: str) -> float:
        return float(self.costs[name])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"host": self.host, "width": self.width, "batch": self.batch,
                             "network": self.network, "activation": self.activation}
        if self.network == "conv":
            d.update(channels=self.channels, height=self.height, image_width=self.image_width,
                     kernel=self.kernel, spatial=self.spatial)
        d["state_size"] = self.state_size
        d["costs"] = {k: float(self.costs[k]) for k in self.names()}
        if self.notes:
            d["notes"] = "; ".join(self.notes)   # a string: propagate's reader takes no arrays
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "cost table") -> "CostTable":
        """Check every field; ValueError naming the bad one."""
        def bad(what: str) -> ValueError:
            return ValueError(f"{source}: {what}")

        if not isinstance(d, dict):
            raise bad("not a JSON object")
        if "network" not in d:
            raise bad("no 'network' field (dense or conv)")
        network = d["network"]
        if network not in ("dense", "conv"):
            raise bad(f"network must be 'dense' or 'conv' (the kinds the planner models), got "
                      f"{network!r}")
        base = ("host", "width", "batch", "network", "activation", "state_size", "costs")
        geometry = ("channels", "height", "image_width", "kernel", "spatial")
        required = base + (geometry if network == "conv" else ())
        allowed = set(required) | {"notes"}
        extra = sorted(set(d) - allowed)
        if extra:
            raise bad(f"unknown field(s) {', '.join(map(repr, extra))}; a {network} cost table "
                      f"has {', '.join(sorted(allowed))}")
        missing = [k for k in required if k not in d]
        if missing:
            raise bad(f"no {', '.join(map(repr, missing))} field"
                      + ("s" if len(missing) > 1 else "")
                      + (f" (a conv cost table has {', '.join(geometry)})"
                         if network == "conv" else ""))
        if not isinstance(d["host"], str):
            raise bad(f"host must be a string, got {d['host']!r}")
        ints = {}
        for key in ("width", "batch", "state_size") + (geometry if network == "conv" else ()):
            v = d[key]
            low = 0 if key == "spatial" else 1
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or v != int(v) or v < low or v > 1 << 40:
                raise bad(f"{key} must be a {'non-negative' if low == 0 else 'positive'} "
                          f"integer, got {v!r}")
            ints[key] = int(v)
        if ints["state_size"] != ints["width"] * ints["batch"]:
            raise bad(f"state_size {ints['state_size']} is not width * batch = "
                      f"{ints['width']} * {ints['batch']} = {ints['width'] * ints['batch']}")
        spatial = 0
        if network == "conv":
            try:
                shape = ConvShape(ints["channels"], ints["height"], ints["image_width"],
                                  ints["kernel"])
            except ValueError as e:
                raise bad(str(e)) from None
            if ints["width"] != shape.features:
                raise bad(f"width {ints['width']} is not channels * height * image_width = "
                          f"{shape.features}")
            spatial = ints["spatial"]
            if spatial > shape.max_spatial:
                raise bad(f"spatial {spatial}: {shape.height}x{shape.width} images halve "
                          f"{shape.max_spatial} time(s) at most (even sizes, <= {MAX_SPATIAL})")
        if d["activation"] != "tanh":
            raise bad(f"activation must be 'tanh', got {d['activation']!r}")
        costs = d["costs"]
        if not isinstance(costs, dict):
            raise bad("costs must be an object of seconds per call")
        names = list(COST_NAMES)
        for s in range(1, spatial + 1):
            names += [_cost_key(n, s) for n in SPATIAL_COST_NAMES]
        optional = []
        if spatial > 0:
            names.append("kernel_coarsen")
        elif network == "conv":
            optional.append("kernel_coarsen")
        missing = [k for k in names if k not in costs]
        if missing:
            raise bad(f"costs lacks {', '.join(missing)}")
        unknown = sorted(set(costs) - set(names) - set(optional))
        if unknown:
            raise bad(f"costs has unknown entries {', '.join(map(repr, unknown))}; expected "
                      f"{', '.join(names + optional)}")
        checked = {}
        for k in names + [k for k in optional if k in costs]:
            v = costs[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or not 0 <= v <= _MAX_COST:
                raise bad(f"costs.{k} must be a time in seconds in [0, {_MAX_COST:g}], "
                          f"got {v!r}")
            checked[k] = float(v)
        notes = d.get("notes", "")
        if not isinstance(notes, str):
            raise bad(f"notes must be a string, got {notes!r}")
        conv = {}
        if network == "conv":
            conv = {k: ints[k] for k in geometry}
        return cls(host=d["host"], width=ints["width"], batch=ints["batch"], costs=checked,
                   network=network, notes=tuple(n for n in notes.split("; ") if n), **conv)


def _no_constants(value: str) -> float:
    raise ValueError(f"{value} is not a number of seconds")


def load_costs(path: str | Path) -> CostTable:
    """Read and check a cost table (JSON, data only)."""
    p = Path(path)
    try:
        if p.stat().st_size > _MAX_FILE:
            raise ValueError(f"{p}: larger than {_MAX_FILE} bytes; not a cost table")
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"{p}: cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not UTF-8 text; a cost table is a JSON file") from None
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") \
            from None
    except ValueError as e:
        raise ValueError(f"{p}: {e}") from None
    return CostTable.from_dict(data, str(p))


def save_costs(table: CostTable, path: str | Path) -> None:
    Path(path).write_text(json.dumps(table.to_dict(), indent=1) + "\n", encoding="utf-8")


def _per_call(fn: Callable[[], None], calls: int, repeats: int) -> float:
    """Median over repeats of the mean seconds per call of fn (calls calls per repeat)."""
    samples = []
    fn()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - t0) / calls)
    return statistics.median(samples)


def _native_solver_options(m: Any, levels: int, cfactor: int, nrelax: int, tol: float,
                           max_iter: int, profile: bool) -> Any:
    o = m.SolverOptions()
    o.max_levels, o.cfactor, o.nrelax, o.min_coarse = levels, cfactor, nrelax, 2
    o.abs_tol, o.max_iter, o.profile, o.print_level = tol, max_iter, profile, 0
    return o


class _NativeNet:
    """A dense or conv tanh network of the native backend on one rank (MPI.COMM_SELF), with
    the weights and input of benchmarks/scaling/propagate: N(0, 1/fan_in) weights and biases
    (dense: fan_in = width; conv: channels * kernel^2), N(0, 1) u_0, lambda_N = u_N (the
    gradient of 0.5 |u_N|^2)."""

    def __init__(self, depth: int, width: int | ConvShape, batch: int, forward: Any,
                 adjoint: Any, seed: int = 0) -> None:
        from mpi4py import MPI

        from .native import _module

        m = _module()
        rng = np.random.default_rng(seed)
        if isinstance(width, ConvShape):
            c, k = width.channels, width.kernel
            kind, dims, shape = "conv", [c, width.height, width.width, k], [c, c, k, k]
            fan_in, nbias, n = c * k * k, c, width.features
        else:
            kind, dims, shape = "dense", [width], [width, width]
            fan_in, nbias, n = width, width, width
        self.prop = m.Propagation64(kind, dims, "tanh", depth, 1.0, batch,
                                    MPI.COMM_SELF.py2f(), forward, adjoint, shape)
        s = 1.0 / math.sqrt(fan_in)
        self.w = [rng.normal(size=shape) * s for _ in range(depth)]
        self.b = [rng.normal(size=nbias) * s for _ in range(depth)]
        self.u0 = rng.normal(size=batch * n)

    def solve(self) -> tuple[dict[str, Any], dict[str, Any]]:
        fwd = self.prop.forward(self.w, self.b, self.u0)
        adj = self.prop.adjoint(np.array(self.prop.final_state()))
        return fwd, adj


def _step_costs(net: Any, net2: Any, repeats: int, notes: list[str]) -> dict[str, float]:
    """The four step costs (seconds) from the engine's step timers: serial sweeps of ``net``
    (one level: every step a fine step) and 2-level solves of ``net2`` (the coarse level's
    steps), forward and adjoint, medians over ``repeats``."""
    samples: dict[str, list[float]] = {k: [] for k in COST_NAMES[:4]}
    net.solve()  # warm-up: caches, BLAS threads
    net2.solve()
    for _ in range(repeats):
        # serial sweeps and 2-level solves interleaved, so that both see the same machine load
        fwd, adj = net.solve()
        samples["step_forward_fine"].append(fwd["time_step"] / max(fwd["steps"], 1))
        samples["step_adjoint_fine"].append(adj["time_step"] / max(adj["steps"], 1))
        fwd, adj = net2.solve()
        for name, info in (("step_forward_coarse", fwd), ("step_adjoint_coarse", adj)):
            if info["steps_coarsest"] > 0 and info["time_step_coarsest"] > 0:
                samples[name].append(info["time_step_coarsest"] / info["steps_coarsest"])
    for name, fine in (("step_forward_coarse", "step_forward_fine"),
                       ("step_adjoint_coarse", "step_adjoint_fine")):
        if not samples[name]:
            # an engine without step timers: the fine step less its cache writes, estimated
            samples[name] = [0.9 * statistics.median(samples[fine])]
            notes.append(f"{name} estimated as 0.9 x {fine} (no coarse step timer)")
    costs = {k: statistics.median(v) for k, v in samples.items()}
    if costs["step_forward_fine"] <= 0:
        raise RuntimeError("calibrate: the native module reported no step times; was it built "
                           "with the engine's profile (layerbraid_GetProfile)?")
    return costs


def _vector_costs(n: int, repeats: int) -> dict[str, float]:
    """NumPy passes with the memory traffic of the C++ callbacks on n doubles (clone: allocate
    + copy; sum: y = a x + b y, one read of x and y and one write; norm: a dot product; init:
    a zero fill; pack/unpack: a copy)."""
    rng = np.random.default_rng(1)
    x, y, buf = rng.normal(size=n), rng.normal(size=n), np.empty(n)
    calls = max(20, min(2000, int(2e7 // max(n, 1))))
    return {"clone": _per_call(lambda: np.copyto(np.empty(n), x), calls, repeats),
            "sum": _per_call(lambda: np.add(x, y, out=y), calls, repeats),
            "norm": _per_call(lambda: math.sqrt(float(np.dot(x, x))), calls, repeats),
            "init": _per_call(lambda: buf.fill(0.0), calls, repeats),
            "pack": _per_call(lambda: np.copyto(buf, x), calls, repeats),
            "unpack": _per_call(lambda: np.copyto(y, buf), calls, repeats)}


def calibrate(width: int, batch: int, *, depth: int = 128, repeats: int = 9,
              log: Callable[[str], None] | None = None) -> CostTable:
    """Measure the per-callback costs of the native backend for this width and batch.

    Steps: the engine's own step timers (SolverOptions.profile) in serial sweeps (one level:
    every step is a fine step) and in 2-level solves (the coarse level's steps), forward and
    adjoint, medians over ``repeats``. Vector operations: NumPy passes with the memory traffic
    of the C++ callbacks (clone: allocate + copy; sum: y = a x + b y, one read of x and y and
    one write; norm: a dot product; init: a zero fill; pack/unpack: a copy).
    """
    from .native import _module

    if width < 1 or batch < 1 or depth < 4:
        raise ValueError(f"calibrate: width ({width}) and batch ({batch}) must be >= 1 and "
                         f"depth ({depth}) >= 4")
    m = _module()
    say = log or (lambda s: None)
    from mpi4py import MPI

    serial = _native_solver_options(m, 1, 2, 1, 1e-300, 1, True)
    two = _native_solver_options(m, 2, 4, 1, 1e-300, 2, True)
    net = _NativeNet(depth, width, batch, serial, serial)
    net2 = _NativeNet(depth, width, batch, two, two)
    notes: list[str] = []
    costs = _step_costs(net, net2, repeats, notes)
    costs.update(_vector_costs(width * batch, repeats))
    notes.append("vector operations timed as NumPy passes of the same memory traffic")
    say(f"calibrated width={width} batch={batch}: step forward {costs['step_forward_fine']:.3g}"
        f" s (coarse {costs['step_forward_coarse']:.3g} s), adjoint "
        f"{costs['step_adjoint_fine']:.3g} s (coarse {costs['step_adjoint_coarse']:.3g} s), "
        f"sum {costs['sum']:.3g} s")
    return CostTable(host=MPI.Get_processor_name(), width=width, batch=batch, costs=costs,
                     notes=tuple(notes))


def _pooling_costs(batch: int, channels: int, height: int, width: int, repeats: int
                   ) -> tuple[float, float]:
    """(coarsen, refine) seconds between (height, width) images and their 2x2-halved ones, as
    NumPy passes: coarsen the 2x2 mean into a new coarse state, refine the copy of each coarse
    pixel to its 2x2 block of a new fine state."""
    h2, w2 = height // 2, width // 2
    rng = np.random.default_rng(2)
    fine = rng.normal(size=(batch, height, width, channels))
    coarse = rng.normal(size=(batch, h2, w2, channels))
    blocks = fine.reshape(batch, h2, 2, w2, 2, channels)

    def pool() -> None:
        out = np.add(blocks[:, :, 0, :, 0], blocks[:, :, 0, :, 1])
        out += blocks[:, :, 1, :, 0]
        out += blocks[:, :, 1, :, 1]
        out *= 0.25

    def refine() -> None:
        out = np.empty((batch, h2, 2, w2, 2, channels))
        out[...] = coarse[:, :, None, :, None, :]

    calls = max(5, min(500, int(5e6 // max(fine.size, 1))))
    return _per_call(pool, calls, repeats), _per_call(refine, calls, repeats)


def _kernel_coarsen_cost(channels: int, kernel: int, repeats: int) -> float:
    """Seconds of one Galerkin coarse kernel (C_out, C_in, k, k): each k x k kernel mapped by
    a k x k offset matrix on both sides, as a NumPy pass."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(channels, channels, kernel, kernel))
    a = rng.normal(size=(kernel, kernel))
    calls = max(20, min(2000, int(2e6 // max(w.size, 1))))
    return _per_call(lambda: np.matmul(np.matmul(a, w), a.T), calls, repeats)


def calibrate_conv(shape: ConvShape, batch: int, *, spatial: int | None = None,
                   depth: int = 16, repeats: int = 5,
                   log: Callable[[str], None] | None = None) -> CostTable:
    """Measure the per-callback costs of the native backend's conv layers for this image
    shape and batch, at full resolution and at every halved one s = 1..spatial (default: the
    most the image allows, :attr:`ConvShape.max_spatial`).

    Steps: the engine's own step timers as in :func:`calibrate`, on conv networks of images
    halved s times: serial sweeps (the fine steps, full resolution) and 2-level solves (the
    coarse level's steps: a coarse step is a fine step without its cache writes; on images
    halved s times it is the step of a network of those images, so that is what is timed).
    Vector operations at each resolution: NumPy passes as in :func:`calibrate`. coarsen_s<s>
    and refine_s<s>: the 2x2 mean / the 2x2 copy as NumPy passes (allocation included);
    kernel_coarsen: one coarse kernel as a NumPy pass. The NumPy estimates are only meant to
    be sensible; the scaling driver (benchmarks/scaling/propagate --calibrate) times the
    library's own kernels.
    """
    from mpi4py import MPI

    from .native import _module

    if batch < 1 or depth < 4:
        raise ValueError(f"calibrate_conv: batch ({batch}) must be >= 1 and depth ({depth}) "
                         f">= 4")
    S = shape.max_spatial if spatial is None else spatial
    if not 0 <= S <= shape.max_spatial:
        raise ValueError(f"calibrate_conv: spatial={S}: {shape.height}x{shape.width} images "
                         f"halve 0..{shape.max_spatial} times")
    m = _module()
    say = log or (lambda s: None)
    serial = _native_solver_options(m, 1, 2, 1, 1e-300, 1, True)
    two = _native_solver_options(m, 2, 4, 1, 1e-300, 2, True)
    notes: list[str] = []
    costs = _step_costs(_NativeNet(depth, shape, batch, serial, serial),
                        _NativeNet(depth, shape, batch, two, two), repeats, notes)
    costs.update(_vector_costs(shape.features * batch, repeats))
    for s in range(1, S + 1):
        h, w = shape.image(s)
        small = ConvShape(shape.channels, h, w, shape.kernel)
        net2 = _NativeNet(depth, small, batch, two, two)
        net2.solve()
        fwd_c, adj_c = [], []
        for _ in range(repeats):
            fwd, adj = net2.solve()
            for out, info in ((fwd_c, fwd), (adj_c, adj)):
                if info["steps_coarsest"] > 0 and info["time_step_coarsest"] > 0:
                    out.append(info["time_step_coarsest"] / info["steps_coarsest"])
        pixels = (h * w) / (shape.height * shape.width)
        for name, got in (("step_forward_coarse", fwd_c), ("step_adjoint_coarse", adj_c)):
            if got:
                costs[f"{name}_s{s}"] = statistics.median(got)
            else:
                costs[f"{name}_s{s}"] = costs[name] * pixels
                notes.append(f"{name}_s{s} scaled from {name} by the pixels (no step timer)")
        vec = _vector_costs(small.features * batch, repeats)
        for name in ("clone", "sum", "norm", "pack", "unpack"):
            costs[f"{name}_s{s}"] = vec[name]
        hf, wf = shape.image(s - 1)
        costs[f"coarsen_s{s}"], costs[f"refine_s{s}"] = _pooling_costs(
            batch, shape.channels, hf, wf, repeats)
    costs["kernel_coarsen"] = _kernel_coarsen_cost(shape.channels, shape.kernel, repeats)
    notes.append("vector operations, 2x2 pooling/copy and kernel coarsening timed as NumPy "
                 "passes")
    say(f"calibrated conv {shape} batch={batch} spatial={S}: step forward "
        f"{costs['step_forward_fine']:.3g} s (coarse "
        + ", ".join(f"s{s} {costs[_cost_key('step_forward_coarse', s)]:.3g}"
                    for s in range(S + 1))
        + f" s), adjoint {costs['step_adjoint_fine']:.3g} s, sum {costs['sum']:.3g} s")
    return CostTable(host=MPI.Get_processor_name(), width=shape.features, batch=batch,
                     costs=costs, network="conv", notes=tuple(notes), channels=shape.channels,
                     height=shape.height, image_width=shape.width, kernel=shape.kernel,
                     spatial=S)


# ------------------------------------------------------------------------------------------
# platforms
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Platform:
    """What the model needs of a SimGrid cluster platform.

    speed is relative to the calibrating machine (``speed / 1Gf``: smpirun runs with
    ``--cfg=smpi/host-speed:1Gf``, so a speed of 1Gf simulates a core as fast as the one the
    costs were measured on). Latencies in seconds, bandwidths in bytes per second.
    """

    name: str
    hosts: int
    cores_per_host: int
    speed: float
    link_latency: float
    link_bandwidth: float
    loopback_latency: float
    loopback_bandwidth: float
    hosts_per_leaf: int = 0        # fat tree: hosts under one leaf switch; 0: no fat tree
    host_names: tuple[str, ...] = ()  # the hosts in order (prefix + radical + suffix)

    @property
    def ranks(self) -> int:
        return self.hosts * self.cores_per_host

    def host_of(self, rank: int) -> int:
        """Ranks fill the hosts in order, cores_per_host ranks per host."""
        return rank // self.cores_per_host

    def hops(self, a: int, b: int) -> int:
        """Links a message from rank a to rank b crosses (0: the same host, loopback):
        2 inside a leaf switch (or in a cluster without topology), 4 through a spine."""
        ha, hb = self.host_of(a), self.host_of(b)
        if ha == hb:
            return 0
        if self.hosts_per_leaf and ha // self.hosts_per_leaf != hb // self.hosts_per_leaf:
            return 4
        return 2

    def message_time(self, a: int, b: int, nbytes: float) -> float:
        """Seconds for one message of nbytes from rank a to rank b: latency of every link
        crossed plus nbytes over the (uniform) link bandwidth."""
        h = self.hops(a, b)
        if h == 0:
            return self.loopback_latency + nbytes / self.loopback_bandwidth
        return h * self.link_latency + nbytes / self.link_bandwidth


_UNITS = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
          "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30, "Ti": 2.0 ** 40}
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}
_NUMBER = r"([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"
_DOCTYPE = re.compile(r'<!DOCTYPE\s+platform\s+SYSTEM\s+"https?://simgrid\.org/simgrid\.dtd"\s*>')


def _quantity(text: str | None, what: str, source: str, kind: str) -> float:
    """A SimGrid number with unit: kind "speed" (f, flops), "bw" (Bps, bps), "lat" (s)."""
    if text is None:
        raise ValueError(f"{source}: the cluster has no {what}")
    s = text.strip()
    if kind == "lat":
        m = re.fullmatch(_NUMBER + r"(s|ms|us|ns|ps)?", s)
        value = float(m.group(1)) * _TIME_UNITS[m.group(2) or "s"] if m else None
    else:
        suffix = {"speed": r"(f|flops)", "bw": r"(Bps|bps)"}[kind]
        m = re.fullmatch(_NUMBER + r"(k|K|M|G|T|P|Ki|Mi|Gi|Ti)?" + suffix, s)
        value = None
        if m:
            value = float(m.group(1)) * _UNITS[m.group(2) or ""]
            if kind == "bw" and m.group(3) == "bps":
                value /= 8.0
    if value is None or not math.isfinite(value) or value <= 0:
        example = {"lat": "time (e.g. 0.5us)", "speed": "speed (e.g. 1Gf)",
                   "bw": "bandwidth (e.g. 12.5GBps)"}[kind]
        raise ValueError(f"{source}: {what}={text!r} is not a positive {example}")
    return value


def _count(text: str | None, what: str, source: str) -> int:
    if text is None or not re.fullmatch(r"[0-9]+", text.strip()) or int(text) < 1:
        raise ValueError(f"{source}: {what}={text!r} is not a positive integer")
    return int(text)


def load_platform(name_or_path: str | Path) -> Platform:
    """A shipped platform by name (host, cluster, gpu) or a SimGrid platform file: one
    <cluster> (radical, speed, core, lat, bw, loopback_lat, loopback_bw; FAT_TREE
    topology optional). Parsed as data: no entities, no DOCTYPE but SimGrid's."""
    s = str(name_or_path)
    path = PLATFORM_DIR / f"{s}.xml" if s in PLATFORMS else Path(s)
    source = str(path)
    try:
        if path.stat().st_size > _MAX_FILE:
            raise ValueError(f"{source}: larger than {_MAX_FILE} bytes; not a platform file")
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"platform {s!r}: cannot read {source} ({e.strerror or e}); use one "
                         f"of {', '.join(PLATFORMS)} or a SimGrid platform file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{source}: not UTF-8 text; not a platform file") from None
    stripped = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    if "<!ENTITY" in stripped or "<!ELEMENT" in stripped or "<!ATTLIST" in stripped:
        raise ValueError(f"{source}: declares entities or a DTD; platform files are read as "
                         f"plain data")
    doctypes = re.findall(r"<!DOCTYPE[^>]*>", stripped)
    if len(doctypes) > 1 or (doctypes and not _DOCTYPE.fullmatch(doctypes[0])):
        raise ValueError(f"{source}: only the standard DOCTYPE <!DOCTYPE platform SYSTEM "
                         f"\"https://simgrid.org/simgrid.dtd\"> is accepted, got "
                         f"{doctypes[0][:80]!r}")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f"{source}: not well-formed XML ({e})") from None
    if root.tag != "platform":
        raise ValueError(f"{source}: the root element is <{root.tag}>, not <platform>")
    clusters = root.findall(".//cluster")
    if len(clusters) != 1:
        raise ValueError(f"{source}: the planner reads platforms of exactly one <cluster>, "
                         f"found {len(clusters)}")
    c = clusters[0].attrib
    radical = c.get("radical", "")
    numbers: list[int] = []
    for part in radical.split(","):
        m = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"{source}: radical={radical!r} is not a list of host numbers "
                             f"or ranges (e.g. 0-63)")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        if len(numbers) + last - first + 1 > _MAX_HOSTS:
            raise ValueError(f"{source}: radical={radical!r} names more than {_MAX_HOSTS} "
                             f"hosts")
        numbers.extend(range(first, last + 1))
    hosts = len(numbers)
    names = tuple(f"{c.get('prefix', '')}{k}{c.get('suffix', '')}" for k in numbers)
    cores = _count(c.get("core", "1"), "core", source)
    speed = _quantity(c.get("speed"), "speed", source, "speed") / 1e9
    lat = _quantity(c.get("lat"), "lat", source, "lat")
    bw = _quantity(c.get("bw"), "bw", source, "bw")
    lb_lat = _quantity(c.get("loopback_lat", c.get("lat")), "loopback_lat", source, "lat")
    lb_bw = _quantity(c.get("loopback_bw", c.get("bw")), "loopback_bw", source, "bw")
    per_leaf = 0
    topology = c.get("topology", "FLAT").upper()
    if topology == "FAT_TREE":
        params = c.get("topo_parameters", "")
        m = re.fullmatch(r"\s*2\s*;\s*([0-9]+)\s*,\s*([0-9]+)\s*;\s*([0-9]+)\s*,\s*([0-9]+)"
                         r"\s*;\s*([0-9]+)\s*,\s*([0-9]+)\s*", params)
        if not m or int(m.group(1)) < 1:
            raise ValueError(f"{source}: topo_parameters={params!r}: the planner reads "
                             f"two-level fat trees \"2;down1,down2;up1,up2;par1,par2\"")
        per_leaf = int(m.group(1))
    elif topology not in ("FLAT",):
        raise ValueError(f"{source}: topology={topology!r} is not modelled (FLAT or FAT_TREE)")
    name = path.stem if s in PLATFORMS else s
    return Platform(name=name, hosts=hosts, cores_per_host=cores, speed=speed,
                    link_latency=lat, link_bandwidth=bw, loopback_latency=lb_lat,
                    loopback_bandwidth=lb_bw, hosts_per_leaf=per_leaf, host_names=names)


# ------------------------------------------------------------------------------------------
# the engine's work per rank
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """MGRIT settings of both solves (the native backend's options)."""

    max_levels: int
    cfactor: int
    relax: str = "FCF"          # "F" (nrelax 0) or "FCF" (nrelax 1), every level
    min_coarse: int = 2
    spatial: int = 0            # conv: images halved on levels 1..spatial (spatial_coarsen)
    spatial_states: bool = False  # conv: the coarse levels' states are the small images too

    def __post_init__(self) -> None:
        if self.max_levels < 1 or self.cfactor < 2 or self.min_coarse < 1 \
                or not 0 <= self.spatial <= MAX_SPATIAL:
            raise ValueError(f"bad settings {self}: max_levels >= 1, cfactor >= 2, "
                             f"min_coarse >= 1, 0 <= spatial <= {MAX_SPATIAL}")
        if self.spatial_states and self.spatial > 0 and self.relax == "F":
            raise ValueError(f"bad settings {self}: spatial_states with F-relaxation never "
                             f"corrects the C-points' fine detail (the library refuses it); "
                             f"use FCF")
        if self.relax not in RELAXATIONS:
            raise ValueError(f"relax={self.relax!r}: use F or FCF")

    @property
    def nrelax(self) -> int:
        return RELAXATIONS[self.relax]


def level_sizes(depth: int, settings: Settings) -> list[int]:
    """The last index (gupper) of every level the engine builds for depth layers."""
    g = [depth]
    while len(g) < min(settings.max_levels, 30) and g[-1] // settings.cfactor >= \
            settings.min_coarse:
        g.append(g[-1] // settings.cfactor)
    return g


@dataclass(frozen=True)
class RankLevel:
    """One level's points on every rank (arrays over ranks, in rank order)."""

    gupper: int
    cfactor: int          # the level's C-point spacing (gupper + 1 on the coarsest)
    lo: np.ndarray
    hi: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return np.maximum(self.hi - self.lo + 1, 0)

    @property
    def has_first(self) -> np.ndarray:
        """1 on the rank holding point 0 (the initial condition: never stepped)."""
        return ((self.lo == 0) & (self.n > 0)).astype(np.int64)

    @property
    def stepped(self) -> np.ndarray:
        """Steps of a sweep that also steps the C-points (relaxation, restriction)."""
        return self.n - self.has_first

    @property
    def cpoints(self) -> np.ndarray:
        c = self.cfactor
        k = np.floor_divide(self.hi, c) - (-np.floor_divide(-self.lo, c)) + 1
        return np.where(self.n > 0, np.maximum(k, 0), 0)

    @property
    def fpoints(self) -> np.ndarray:
        return self.n - self.cpoints

    def holders(self) -> np.ndarray:
        """The ranks with points on this level, in time order."""
        order = np.argsort(self.lo, kind="stable")
        return order[self.n[order] > 0]


def rank_levels(depth: int, ranks: int, settings: Settings, reverted: bool = False
                ) -> list[RankLevel]:
    """Every level's block of points on each rank: the fine grid's depth + 1 points blocked
    (the first (depth + 1) % ranks ranks one more), mirrored for the adjoint (reverted ranks),
    coarse blocks the C-points of the finer block."""
    if ranks < 1 or ranks > depth + 1:
        raise ValueError(f"{ranks} ranks cannot share {depth} layers ({depth + 1} points); use "
                         f"1 to {depth + 1} ranks")
    npts = depth + 1
    r = np.arange(ranks, dtype=np.int64)
    quo, rem = divmod(npts, ranks)
    lo = r * quo + np.minimum(r, rem)
    hi = lo + quo + (r < rem) - 1
    if reverted:
        lo, hi = depth - hi, depth - lo
    sizes = level_sizes(depth, settings)
    out = []
    for l, g in enumerate(sizes):
        cf = settings.cfactor if l < len(sizes) - 1 else g + 1
        out.append(RankLevel(g, cf, lo, hi))
        lo = -np.floor_divide(-lo, settings.cfactor)
        hi = np.floor_divide(hi, settings.cfactor)
    return out


def _vcycle_steps(lv: Sequence[RankLevel], nrelax: int) -> tuple[np.ndarray, np.ndarray]:
    L = len(lv)
    total = np.zeros_like(lv[0].n)
    for l in range(L - 1):
        total += (nrelax + 1) * lv[l].stepped + lv[l + 1].stepped
    for l in range(1, L - 1):
        total += lv[l].fpoints
    coarsest = lv[-1].stepped * 2 if L > 1 else np.zeros_like(total)
    total += lv[-1].stepped
    return total, coarsest


def step_counts(depth: int, ranks: int, settings: Settings, iterations: int, *,
                skip_first: bool = True, adjoint: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per rank: (steps, steps on the coarsest level) of one solve of ``iterations`` MGRIT
    iterations (the engine's count, the skipped first cycle included), the final access sweep
    included: what the native solve infos report as ``steps`` / ``steps_coarsest``."""
    lv = rank_levels(depth, ranks, settings, reverted=adjoint)
    if len(lv) == 1:
        return lv[0].stepped.copy(), lv[0].stepped.copy()
    v, vc = _vcycle_steps(lv, settings.nrelax)
    steps = np.zeros_like(v)
    coarsest = np.zeros_like(v)
    if iterations > 0:
        if skip_first:
            steps += lv[-1].stepped + sum((lv[l].fpoints for l in range(1, len(lv) - 1)),
                                          np.zeros_like(v))
            coarsest += lv[-1].stepped
            steps += (iterations - 1) * v
            coarsest += (iterations - 1) * vc
        else:
            steps += iterations * v
            coarsest += iterations * vc
    steps += lv[0].fpoints   # the final access sweep
    return steps, coarsest


# ------------------------------------------------------------------------------------------
# the time model: one function per term
# ------------------------------------------------------------------------------------------

@dataclass
class Breakdown:
    """Seconds on the critical path by kind (one solve or a sum of solves)."""

    relaxation: float = 0.0      # sweeps on every level but the coarsest: slowest rank's work
    coarsest: float = 0.0        # the sequential coarsest-grid solve, its messages included
    communication: float = 0.0   # one neighbour message per sweep of the other levels
    norm: float = 0.0            # residual-norm reductions and the final success vote
    coarsening: float = 0.0      # spatial coarsening outside the sweeps (spatial_setup,
    #                              the skipped cycle's coarsened initial guess)

    @property
    def total(self) -> float:
        return self.relaxation + self.coarsest + self.communication + self.norm \
            + self.coarsening

    def __iadd__(self, other: "Breakdown") -> "Breakdown":
        for k in ("relaxation", "coarsest", "communication", "norm", "coarsening"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self


@dataclass(frozen=True)
class _Ctx:
    costs: CostTable
    platform: Platform
    adjoint: bool
    spatial: int = 0         # coarse steps on images halved min(level, spatial) times
    low_states: bool = False  # spatial_states: the coarse levels' vectors are the small images

    def step_res(self, level: int) -> int:
        """The resolution (halvings) level `level` steps on."""
        return min(level, self.spatial)

    def res(self, level: int) -> int:
        """The resolution of the vectors of level `level` (full size unless low_states)."""
        return self.step_res(level) if self.low_states else 0

    def step(self, level: int) -> float:
        """A step on `level`. Coarse levels step on images halved s = min(level, spatial)
        times; with full-size states (not low_states) such a step also moves the state there
        and back: s poolings, a copy (pack) of the small image, the step, a subtraction (sum)
        at s and s refinements of the update (the library's low-resolution update)."""
        d = "adjoint" if self.adjoint else "forward"
        if level == 0:
            return self.costs[f"step_{d}_fine"] / self.platform.speed
        s = self.step_res(level)
        t = self.costs[self.costs.key(f"step_{d}_coarse", s)]
        if s > 0 and not self.low_states:
            t += sum(self.costs[f"coarsen_s{k}"] + self.costs[f"refine_s{k}"]
                     for k in range(1, s + 1))
            t += self.costs[f"pack_s{s}"] + self.costs[f"sum_s{s}"]
        return t / self.platform.speed

    def op(self, name: str, level: int = 0) -> float:
        """A vector operation on a vector of level `level`."""
        return self.costs[self.costs.key(name, self.res(level))] / self.platform.speed

    def message_bytes(self, level: int) -> float:
        """Low-resolution states: the state at the level's resolution and its 16-byte header;
        otherwise the bare full-size state (as dense messages)."""
        return self.costs.message_bytes_at(self.res(level), header=self.low_states)

    def coarsen(self, level: int) -> float:
        """One vector from level to level + 1 (_braid_CoarsenInto): without the engine's
        spatial coarsening (spatial 0, or full-size states) a copy into the coarse vector (a
        sum); with low-resolution states the user's coarsen, a 2x2 pooling while level <
        spatial, a copy into a new vector (a clone) after."""
        if self.spatial == 0 or not self.low_states:
            return self.op("sum", level)
        if level < self.spatial:
            return self.op(f"coarsen_s{level + 1}")
        return self.op("clone", level)

    def refine(self, level: int) -> float:
        """One correction from level to level - 1 (_braid_RefineNew): nothing without the
        engine's spatial coarsening (the coarse vector is added directly); with
        low-resolution states the 2x2 copy while level <= spatial, else a clone."""
        if self.spatial == 0 or not self.low_states:
            return 0.0
        if level <= self.spatial:
            return self.op(f"refine_s{level}")
        return self.op("clone", level)


def sweep_work(ctx: _Ctx, level: int, lv: RankLevel, steps: np.ndarray, *, clones: np.ndarray,
               sums: np.ndarray, norms: np.ndarray | int = 0) -> float:
    """The slowest rank's computation in a sweep without chains (the FAS coarse step): its
    steps, clones, sums and norms, and pack + unpack of its one neighbour message."""
    work = (steps * ctx.step(level) + clones * ctx.op("clone", level)
            + sums * ctx.op("sum", level) + np.asarray(norms) * ctx.op("norm", level))
    if len(lv.holders()) > 1:
        work = work + (lv.n > 0) * (ctx.op("pack", level) + ctx.op("unpack", level))
    return float(work.max()) if work.size else 0.0


def message_times(platform: Platform, a: np.ndarray, b: np.ndarray, nbytes: float
                  ) -> np.ndarray:
    """Seconds of one message from each rank of a to the rank of b (vectorised
    :meth:`Platform.message_time`)."""
    ha, hb = a // platform.cores_per_host, b // platform.cores_per_host
    hops = np.where(ha == hb, 0, 2)
    if platform.hosts_per_leaf:
        leaf = platform.hosts_per_leaf
        hops = np.where((hops > 0) & (ha // leaf != hb // leaf), 4, hops)
    return np.where(hops == 0, platform.loopback_latency + nbytes / platform.loopback_bandwidth,
                    hops * platform.link_latency + nbytes / platform.link_bandwidth)


def neighbour_message(ctx: _Ctx, level: int, lv: RankLevel) -> float:
    """One message between consecutive ranks holding points of the level (the slowest pair)."""
    h = lv.holders()
    if len(h) < 2:
        return 0.0
    return float(message_times(ctx.platform, h[:-1], h[1:], ctx.message_bytes(level)).max())


def sweep_path(ctx: _Ctx, level: int, lv: RankLevel, *, cprop: bool, step_extra: float = 0.0,
               point_extra: float = 0.0, cpoint_extra: float = 0.0) -> tuple[float, float]:
    """(slowest rank's work, critical path) of one sweep of relax.c's _braid_Sweep.

    Each rank first steps its trailing F-points (right of its last C-point) and sends the
    result right, then its other intervals; its leftmost interval waits for the left
    neighbour's value. A rank without a C-point of its own (an interval spanning ranks; on
    the coarsest level every rank but the first) waits for its left neighbour before it can
    start: such ranks form a chain. cprop: the sweep also steps to the C-points (relaxation,
    restriction) rather than only the F-points (interpolation, access, coarsest solve).
    Extras (seconds): per step (the FAS sum), per point (corrections), per C-point
    (restriction's copies and residual norm).
    """
    h = lv.holders()
    if len(h) == 0:
        return 0.0, 0.0
    lo, hi, n = lv.lo[h], lv.hi[h], lv.n[h]
    cf = lv.cfactor
    cl = -np.floor_divide(-lo, cf) * cf
    cu = np.floor_divide(hi, cf) * cf
    hasc = cl <= cu
    ncp = np.where(hasc, (cu - cl) // cf + 1, 0)
    step = ctx.step(level) + step_extra
    clone = ctx.op("clone", level)
    steps = n - (lo == 0) if cprop else n - ncp
    msg_ops = ctx.op("pack", level) + ctx.op("unpack", level) if len(h) > 1 else 0.0
    work = steps * step + n * point_extra + ncp * (cpoint_extra + clone) + msg_ops
    trail = np.where(hasc, (hi - cu) * (step + point_extra) + (hi > cu) * clone, work)
    first_c = (step if cprop else 0.0) + point_extra + cpoint_extra
    first = np.where(hasc & (cl > 0), (cl - lo) * (step + point_extra) + first_c, 0.0)
    msg = message_times(ctx.platform, h[:-1], h[1:], ctx.message_bytes(level))
    msg_in = np.concatenate(([0.0], msg))
    # t_send: when each rank's value for its right neighbour is ready
    cs = np.cumsum(np.where(hasc, 0.0, msg_in + work))
    last_c = np.maximum.accumulate(np.where(hasc, np.arange(len(h)), 0))
    t_send = cs + (trail - cs)[last_c]
    arrive = np.concatenate(([0.0], t_send[:-1] + msg))
    finish = np.where(hasc, np.maximum(work - first, arrive) + first, t_send)
    return float(work.max()), float(finish.max())


def _add_sweep(b: Breakdown, path: tuple[float, float], times: int = 1) -> None:
    """A sweep's work under relaxation, the rest of its critical path (messages and waits
    along chains) under communication."""
    b.relaxation += times * path[0]
    b.communication += times * (path[1] - path[0])


def relaxation_sweep(ctx: _Ctx, level: int, lv: RankLevel) -> tuple[float, float]:
    """One FC sweep of FCRelax (FAS sum per step on coarse levels)."""
    return sweep_path(ctx, level, lv, cprop=True,
                      step_extra=ctx.op("sum", level) if level > 0 else 0.0)


def restriction_sweep(ctx: _Ctx, level: int, lv: RankLevel) -> tuple[float, float]:
    """FRestrict's sweep: F-relaxation and the step to each C-point, whose value is moved to
    level + 1 (the restricted value and the FAS term: :meth:`_Ctx.coarsen` each, the user's
    coarsen with spatial coarsening, else copies; the coarse point: a copy at the coarse
    resolution) and on level 0 gives the residual (a sum and a norm)."""
    extra = 2 * ctx.coarsen(level) + ctx.op("sum", level + 1) \
        + (ctx.op("sum") + ctx.op("norm") if level == 0 else 0.0)
    return sweep_path(ctx, level, lv, cprop=True,
                      step_extra=ctx.op("sum", level) if level > 0 else 0.0,
                      cpoint_extra=extra)


def coarse_rhs(ctx: _Ctx, level: int, lv: RankLevel) -> float:
    """The FAS right-hand side on coarse level `level`: a clone, a step and a sum per point;
    no chain (each point needs only the restricted value before it)."""
    return sweep_work(ctx, level, lv, lv.stepped, clones=lv.stepped, sums=lv.stepped) \
        + neighbour_message(ctx, level, lv)


def _correction(ctx: _Ctx, level: int) -> float:
    """FInterp's correction at a point of `level`: e = u - v (a sum on this level), e on the
    finer level (:meth:`_Ctx.refine`; nothing without spatial coarsening) added to its C-point
    (a sum there)."""
    return ctx.op("sum", level) + ctx.refine(level) + ctx.op("sum", level - 1)


def interpolation(ctx: _Ctx, level: int, lv: RankLevel) -> tuple[float, float]:
    """FInterp on a level between the finest and the coarsest: F-relaxation (with the FAS
    sum) and the correction of the finer level at every point."""
    return sweep_path(ctx, level, lv, cprop=False, step_extra=ctx.op("sum", level),
                      point_extra=_correction(ctx, level))


def coarsest_solve(ctx: _Ctx, level: int, lv: RankLevel) -> float:
    """The sequential solve on the coarsest level (FInterp there: one interval over the whole
    level, so a chain through every rank holding its points, with the FAS sum per step and
    the correction per point); on one level, the plain serial sweep."""
    if level == 0:
        return sweep_path(ctx, 0, lv, cprop=False)[1]
    return sweep_path(ctx, level, lv, cprop=False, step_extra=ctx.op("sum", level),
                      point_extra=_correction(ctx, level))[1]


def reduction(ctx: _Ctx, ranks: int, nbytes: float = 64.0) -> float:
    """A binomial-tree reduction to rank 0 and the broadcast back (reduce.c): at each round
    the message between ranks `mask` apart, up then down."""
    t, mask = 0.0, 1
    while mask < ranks:
        t += 2 * ctx.platform.message_time(0, mask, nbytes)
        mask <<= 1
    return t


def vcycle_time(ctx: _Ctx, lv: Sequence[RankLevel], nrelax: int, ranks: int) -> Breakdown:
    """One V-cycle from the finest level: per level relaxation, restriction (with the residual
    norm on level 0), the FAS coarse step, the coarsest solve, interpolation."""
    b = Breakdown()
    L = len(lv)
    for l in range(L - 1):
        _add_sweep(b, relaxation_sweep(ctx, l, lv[l]), nrelax)
        _add_sweep(b, restriction_sweep(ctx, l, lv[l]))
        rhs = coarse_rhs(ctx, l + 1, lv[l + 1])
        if l + 1 == L - 1:
            b.coarsest += rhs
        else:
            b.relaxation += rhs
        if l == 0:
            b.norm += reduction(ctx, ranks)
    b.coarsest += coarsest_solve(ctx, L - 1, lv[-1])
    for l in range(1, L - 1):
        _add_sweep(b, interpolation(ctx, l, lv[l]))
    return b


def inject_initial_guess(ctx: _Ctx, lv: Sequence[RankLevel]) -> float:
    """The skipped cycle's start with low-resolution states: every coarse point of every level
    takes the finer level's value through the user's coarsen (and its C-points a copy); the
    slowest rank's work, no messages. Otherwise these are copies the model leaves out (0)."""
    if ctx.spatial == 0 or not ctx.low_states:
        return 0.0
    work = np.zeros(len(lv[0].n))
    for l in range(1, len(lv)):
        work = work + lv[l].n * ctx.coarsen(l - 1) + lv[l].cpoints * ctx.op("sum", l)
    return float(work.max()) if work.size else 0.0


def skip_cycle_time(ctx: _Ctx, lv: Sequence[RankLevel]) -> Breakdown:
    """The first cycle with skip: the coarsest solve and interpolation up, no relaxation
    (with spatial coarsening, the initial guess coarsened to every level first)."""
    b = Breakdown()
    b.coarsening += inject_initial_guess(ctx, lv)
    b.coarsest += coarsest_solve(ctx, len(lv) - 1, lv[-1])
    for l in range(len(lv) - 2, 0, -1):
        _add_sweep(b, interpolation(ctx, l, lv[l]))
    return b


def final_time(ctx: _Ctx, lv: Sequence[RankLevel], ranks: int) -> Breakdown:
    """After the last cycle: the access sweep on the finest level (its F-points stepped) and
    the success vote (a reduction)."""
    b = Breakdown()
    _add_sweep(b, sweep_path(ctx, 0, lv[0], cprop=False))
    b.norm += reduction(ctx, ranks)
    return b


def spatial_setup(ctx: _Ctx, lv0: RankLevel) -> float:
    """Before a solve with spatial coarsening, each rank's layers (those stepping to its
    points) on the coarse images: S coarse kernels per layer (kernel_coarsen), and before the
    adjoint also the layer's sigma'(z) pooled to each resolution s = 1..S (coarsen_s<s>). The
    slowest rank's work (no messages)."""
    S = ctx.spatial
    if S == 0:
        return 0.0
    per_layer = S * ctx.op("kernel_coarsen")
    if ctx.adjoint:
        per_layer += sum(ctx.op(f"coarsen_s{s}") for s in range(1, S + 1))
    layers = lv0.stepped
    return float(layers.max() * per_layer) if layers.size else 0.0


def solve_time(ctx: _Ctx, depth: int, ranks: int, settings: Settings, iterations: int,
               skip_first: bool) -> Breakdown:
    """One solve: the spatial setup, its cycles (the first skipped when skip_first), the
    final access sweep."""
    lv = rank_levels(depth, ranks, settings, reverted=ctx.adjoint)
    b = Breakdown()
    b.coarsening += spatial_setup(ctx, lv[0])
    if len(lv) == 1:
        b.coarsest = coarsest_solve(ctx, 0, lv[0])
        b.norm = reduction(ctx, ranks)
        return b
    v = vcycle_time(ctx, lv, settings.nrelax, ranks)
    for k in range(iterations):
        if k == 0 and skip_first:
            b += skip_cycle_time(ctx, lv)
        else:
            b += v
    b += final_time(ctx, lv, ranks)
    return b


def serial_time(depth: int, costs: CostTable, speed: float = 1.0) -> float:
    """Layer-serial forward + backward on one rank: depth fine steps each way, plus the clone
    and init of each solve."""
    c = costs
    return (depth * (c["step_forward_fine"] + c["step_adjoint_fine"])
            + 2 * (c["clone"] + c["init"])) / speed


@dataclass(frozen=True)
class Prediction:
    """Predicted seconds of one training step (forward + adjoint solve) on ``ranks`` ranks."""

    settings: Settings
    ranks: int
    levels: int
    iterations: tuple[int, int]     # forward, adjoint
    skip_first: bool
    forward: float
    adjoint: float
    relaxation: float
    coarsest: float
    communication: float
    norm: float
    serial: float                   # layer-serial on one rank
    coarsening: float = 0.0         # spatial setup and the coarsened initial guess

    @property
    def total(self) -> float:
        return self.forward + self.adjoint

    @property
    def speedup(self) -> float:
        return self.serial / self.total if self.total > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"] = asdict(self.settings)
        d["iterations"] = list(self.iterations)
        d["total"] = self.total
        d["speedup"] = self.speedup
        return d


def predict(depth: int, ranks: int, settings: Settings, iterations: tuple[int, int],
            costs: CostTable, platform: Platform, *, skip_first: bool = True) -> Prediction:
    """Predict a forward + adjoint solve pair on ``ranks`` ranks of ``platform``.

    iterations: the engine's MGRIT iteration counts (forward, adjoint); skip_first: the first
    cycle skips its down-cycle (solves that start from zero: tolerance mode; warm-started
    one-shot solves do not).
    """
    if ranks > platform.ranks:
        raise ValueError(f"{ranks} ranks do not fit platform {platform.name!r} "
                         f"({platform.hosts} hosts x {platform.cores_per_host} cores = "
                         f"{platform.ranks} ranks)")
    if any(i < 0 for i in iterations):
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if settings.spatial > costs.spatial:
        raise ValueError(f"spatial coarsening {settings.spatial} needs a conv cost table with "
                         f"the costs of {settings.spatial} halved resolutions; this "
                         + (f"one has {costs.spatial}" if costs.network == "conv"
                            else "one is for a dense network"))
    parts = []
    for k, adjoint in enumerate((False, True)):
        ctx = _Ctx(costs, platform, adjoint, settings.spatial,
                   settings.spatial_states and settings.spatial > 0)
        parts.append(solve_time(ctx, depth, ranks, settings, iterations[k], skip_first))
    total = Breakdown()
    for p in parts:
        total += p
    return Prediction(settings=settings, ranks=ranks,
                      levels=len(level_sizes(depth, settings)),
                      iterations=(int(iterations[0]), int(iterations[1])),
                      skip_first=skip_first, forward=parts[0].total, adjoint=parts[1].total,
                      relaxation=total.relaxation, coarsest=total.coarsest,
                      communication=total.communication, norm=total.norm,
                      serial=serial_time(depth, costs, platform.speed),
                      coarsening=total.coarsening)


# ------------------------------------------------------------------------------------------
# iterations and the search
# ------------------------------------------------------------------------------------------

def measure_iterations(depth: int, width: int | ConvShape, batch: int, settings: Settings,
                       tol: float, *, max_iter: int = 100, seed: int = 0) -> tuple[int, int]:
    """MGRIT iterations of a forward and an adjoint solve to abs tolerance ``tol`` on one rank
    (they do not depend on the number of ranks), with the scaling driver's random network:
    dense of ``width``, or conv of the :class:`ConvShape` ``width`` (with the settings'
    spatial coarsening)."""
    from .native import _module

    m = _module()
    o = _native_solver_options(m, settings.max_levels, settings.cfactor, settings.nrelax, tol,
                               max_iter, False)
    o.min_coarse = settings.min_coarse
    if settings.spatial:
        if not isinstance(width, ConvShape):
            raise ValueError("spatial coarsening is for conv networks")
        if not hasattr(o, "spatial_coarsen"):
            raise RuntimeError("this build of the native backend has no spatial coarsening "
                               "(SolverOptions.spatial_coarsen); rebuild layerbraid")
        o.spatial_coarsen = settings.spatial
        o.spatial_states = settings.spatial_states
    fwd, adj = _NativeNet(depth, width, batch, o, o, seed).solve()
    return int(fwd["iterations"]), int(adj["iterations"])


def candidate_settings(depth: int, min_coarse: int = 2,
                       cfactors: Iterable[int] = (2, 4, 8, 16), max_spatial: int = 0,
                       spatial_states: bool = False) -> list[Settings]:
    """Levels 2, 3, 4 and the most the engine builds (down to min_coarse), every cfactor,
    F and FCF; spatial coarsening 0..min(max_spatial, levels - 1) for each (with
    spatial_states: low-resolution states, FCF only)."""
    out = []
    for cf in cfactors:
        most = len(level_sizes(depth, Settings(30, cf, "F", min_coarse)))
        for levels in sorted({min(2, most), min(3, most), min(4, most), most} - {1}):
            for relax in ("F", "FCF"):
                for spatial in range(min(max_spatial, levels - 1) + 1):
                    states = spatial_states and spatial > 0
                    if states and relax == "F":
                        continue
                    out.append(Settings(levels, cf, relax, min_coarse, spatial, states))
    return out


@dataclass
class Plan:
    depth: int
    width: int
    batch: int
    ranks: int
    platform: Platform
    mode: str
    costs: CostTable
    serial: float
    candidates: list[Prediction] = field(default_factory=list)
    verdict: str = ""
    notes: list[str] = field(default_factory=list)
    by_cycles: dict[int, Prediction] = field(default_factory=dict)   # one-shot: best per K
    conv: ConvShape | None = None        # a conv network (width: its features)
    max_spatial: int = 0                 # spatial coarsening searched 0..max_spatial

    @property
    def best(self) -> Prediction | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self, top: int = 5) -> dict[str, Any]:
        best = self.best
        network: dict[str, Any] = {"network": "conv" if self.conv else "dense"}
        if self.conv:
            network.update(conv=asdict(self.conv), max_spatial=self.max_spatial,
                           spatial_coarsen=best.settings.spatial if best else 0,
                           spatial_states=best.settings.spatial_states if best else False,
                           spatial_levels=_spatial_levels(best.settings) if best else [])
        return {**network, "depth": self.depth, "width": self.width, "batch": self.batch,
                "ranks": self.ranks, "platform": asdict(self.platform), "mode": self.mode,
                "costs": self.costs.to_dict(), "serial_time": self.serial,
                "layer_serial_faster": self.best is None or self.best.speedup <= 1.0,
                "verdict": self.verdict, "notes": self.notes,
                "best_by_cycles": {str(k): p.to_dict() for k, p in self.by_cycles.items()},
                "recommendations": [p.to_dict() for p in self.candidates[:top]]}


def _reason(p: Prediction, plan: Plan) -> str:
    """Why the best layer-parallel setting still loses."""
    if plan.ranks == 1:
        return (f"one rank: MGRIT only adds work to layer-serial stepping (the best setting, "
                f"{_describe(p.settings)}, {p.iterations[0]}+{p.iterations[1]} iterations, "
                f"does {p.total / p.serial:.1f}x the work of layer-serial); use more ranks or "
                f"train layer-serial")
    parts = {"relaxation work (too few ranks for the depth and the "
             f"{p.iterations[0]}+{p.iterations[1]} iterations)": p.relaxation,
             "the sequential coarsest-grid solve": p.coarsest,
             "communication latency against the step cost": p.communication,
             "the residual-norm reductions": p.norm}
    name, value = max(parts.items(), key=lambda kv: kv[1])
    return (f"the best setting ({_describe(p.settings)}) takes {p.total * 1e3:.3g} ms against "
            f"{p.serial * 1e3:.3g} ms layer-serial; its largest part is {name}, "
            f"{value * 1e3:.3g} ms")


def _describe(s: Settings) -> str:
    return f"{s.max_levels} levels, cfactor {s.cfactor}, {s.relax}" \
        + (f", spatial {s.spatial}" + (" (low-resolution states)" if s.spatial_states else "")
           if s.spatial else "")


def _spatial_levels(s: Settings) -> list[int]:
    """The levels computing on halved images."""
    return list(range(1, s.spatial + 1))


def _spatial_text(plan: "Plan", s: Settings) -> str:
    """The plan's line on spatial coarsening (conv networks)."""
    conv = plan.conv
    assert conv is not None
    if s.spatial == 0:
        return (f"spatial coarsening: none (searched 0..{plan.max_spatial}); every level "
                f"computes on {conv.height}x{conv.width} images")
    levels = "1" if s.spatial == 1 else f"1..{s.spatial}"
    h, w = conv.image(s.spatial)
    return (f"spatial coarsening: images halved on levels {levels} (spatial_coarsen "
            f"{s.spatial}: {conv.height}x{conv.width} -> {h}x{w} images; "
            + ("the coarse levels' states are the small images, spatial_states"
               if s.spatial_states else "full-size states, the coarse steps on the small "
               "images") + ")")


def recommend(depth: int, width: int | ConvShape, batch: int, ranks: int, platform: Platform,
              costs: CostTable, *, mode: str = "tolerance",
              iterations: tuple[int, int] | None = None, cycles: Sequence[int] | None = None,
              tol: float = 1e-6, min_coarse: int = 2, max_spatial: int | None = None,
              spatial_states: bool = False, log: Callable[[str], None] | None = None) -> Plan:
    """Predict every candidate setting and rank them by time per training step.

    width: the dense layers' width, or a :class:`ConvShape` for a conv network, whose
    candidates also try spatial coarsening 0..S (S: the halvings the image allows, at most
    MAX_SPATIAL, the cost table's ``spatial``, ``max_spatial`` if given, and levels - 1;
    full-size states, or low-resolution ones with ``spatial_states``).
    mode "tolerance": solves to ``tol`` from zero (the first cycle skips its down-cycle);
    iteration counts measured on one rank per setting (batch min(batch, 64); conv:
    min(batch, 4)) unless ``iterations`` gives them. mode "one-shot": warm-started solves of
    ``cycles`` MGRIT iterations each (default: 1, 2 and 3 searched).
    """
    if mode not in ("tolerance", "one-shot"):
        raise ValueError(f"mode={mode!r}: use tolerance or one-shot")
    conv = width if isinstance(width, ConvShape) else None
    features = conv.features if conv else width
    for name, v in (("depth", depth), ("width", features), ("batch", batch), ("ranks", ranks)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if ranks > depth + 1:
        raise ValueError(f"{ranks} ranks cannot share {depth} layers; use at most {depth + 1}")
    if ranks > platform.ranks:
        raise ValueError(f"{ranks} ranks do not fit platform {platform.name!r} "
                         f"({platform.ranks} cores)")
    if conv is None and (costs.network != "dense" or costs.width != width
                         or costs.batch != batch):
        raise ValueError(f"the cost table is for {_table_network(costs)}, batch "
                         f"{costs.batch}, not dense width {width}, batch {batch}; calibrate "
                         f"again (--calibrate)")
    if conv is not None and (costs.conv != conv or costs.batch != batch):
        raise ValueError(f"the cost table is for {_table_network(costs)}, batch "
                         f"{costs.batch}, not conv {conv}, batch {batch}; calibrate again "
                         f"(--calibrate)")
    if max_spatial is not None and max_spatial < 0:
        raise ValueError(f"max_spatial must be >= 0, got {max_spatial}")
    say = log or (lambda s: None)
    plan = Plan(depth, features, batch, ranks, platform, mode, costs,
                serial_time(depth, costs, platform.speed), conv=conv)
    if conv is not None:
        most = conv.max_spatial if max_spatial is None else min(max_spatial, conv.max_spatial)
        if costs.spatial < most:
            plan.notes.append(f"the cost table has the costs of {costs.spatial} halved "
                              f"resolution(s); spatial coarsening searched up to "
                              f"{costs.spatial}, not {most} (calibrate with more)")
        plan.max_spatial = min(most, costs.spatial)
    settings = candidate_settings(depth, min_coarse, max_spatial=plan.max_spatial,
                                  spatial_states=spatial_states)
    if mode == "one-shot":
        chosen = cycles[0] if cycles else 2
        for k in sorted({chosen, 1, 2, 3}):
            preds = sorted((predict(depth, ranks, s, (k, k), costs, platform, skip_first=False)
                            for s in settings), key=lambda p: p.total)
            plan.by_cycles[k] = preds[0]
            if k == chosen:
                plan.candidates = preds
        plan.notes.append(f"one-shot: warm-started solves of {chosen} MGRIT cycle(s) each (no "
                          f"skipped first cycle); fewer cycles give cheaper steps but less "
                          f"exact gradients")
        plan.notes.append("best per cycles per solve: " + ", ".join(
            f"{k}: {_describe(p.settings)}, {p.total * 1e3:.3g} ms ({p.speedup:.2f}x)"
            for k, p in sorted(plan.by_cycles.items())))
    else:
        b = min(batch, 4 if conv else 64)
        if iterations is None:
            plan.notes.append(f"iterations to abs tol {tol:g} measured on one rank, batch {b}")
        else:
            plan.notes.append(f"the given iterations ({iterations[0]}, {iterations[1]}) are "
                              f"used for every setting; F-relaxation and coarser grids"
                              + (" (and spatial coarsening)" if plan.max_spatial else "")
                              + " usually need more than FCF and finer ones (measure them: "
                              "leave out --iterations)")
        for s in settings:
            its = iterations
            if its is None:
                its = measure_iterations(depth, width, b, s, tol)
                say(f"  {_describe(s)}: {its[0]} + {its[1]} iterations")
            plan.candidates.append(predict(depth, ranks, s, its, costs, platform,
                                           skip_first=True))
    plan.candidates.sort(key=lambda p: p.total)
    best = plan.best
    if best is None or best.speedup <= 1.0:
        plan.verdict = "layer-serial is faster here: " + (_reason(best, plan) if best else "")
    else:
        plan.verdict = (f"layer-parallel: {_describe(best.settings)}"
                        + (f", {best.iterations[0]} cycles per solve" if mode == "one-shot"
                           else "")
                        + f", {best.total * 1e3:.3g} ms per step, {best.speedup:.2f}x "
                          f"layer-serial ({best.serial * 1e3:.3g} ms on one rank)")
    return plan


def _table_network(costs: CostTable) -> str:
    return f"conv {costs.conv}" if costs.conv else f"dense width {costs.width}"


def format_plan(plan: Plan, top: int = 5) -> str:
    pf = plan.platform
    conv = plan.conv
    net = (f"conv tanh ResNet, depth {plan.depth}, {conv.channels} channels, {conv.height}x"
           f"{conv.width} images, kernel {conv.kernel}" if conv else
           f"dense tanh ResNet, depth {plan.depth}, width {plan.width}")
    sp = "spatial | " if conv else ""
    lines = [
        f"layerbraid plan: {net}, batch "
        f"{plan.batch}; {plan.ranks} ranks on {pf.name} ({pf.hosts} hosts x "
        f"{pf.cores_per_host} cores, speed x{pf.speed:g}, link {pf.link_latency * 1e6:g} us, "
        f"loopback {pf.loopback_latency * 1e6:g} us)",
        f"costs ({plan.costs.host}): step forward {plan.costs['step_forward_fine'] * 1e6:.1f} us"
        f" (coarse {plan.costs['step_forward_coarse'] * 1e6:.1f}), adjoint "
        f"{plan.costs['step_adjoint_fine'] * 1e6:.1f} us (coarse "
        f"{plan.costs['step_adjoint_coarse'] * 1e6:.1f}), sum {plan.costs['sum'] * 1e6:.2f} us",
        f"layer-serial on one rank: {plan.serial * 1e3:.3f} ms per step",
        "",
        f"| levels | cf | relax | {sp}iterations fwd+adj | ms / step | speedup | relaxation "
        f"| coarsest | communication | norm |" + (" coarsening |" if conv else ""),
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if conv else ""),
    ]
    for p in plan.candidates[:top]:
        s = p.settings
        lines.append(f"| {p.levels} | {s.cfactor} | {s.relax} | "
                     + (f"{s.spatial}{' (states)' if s.spatial_states else ''} | " if conv
                        else "")
                     + f"{p.iterations[0]}+{p.iterations[1]} | {p.total * 1e3:.3f} | "
                     f"{p.speedup:.2f} | {p.relaxation * 1e3:.3f} | {p.coarsest * 1e3:.3f} | "
                     f"{p.communication * 1e3:.3f} | {p.norm * 1e3:.3f} |"
                     + (f" {p.coarsening * 1e3:.3f} |" if conv else ""))
    lines += ["", plan.verdict]
    if conv and plan.best is not None:
        lines.append(_spatial_text(plan, plan.best.settings))
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------

def add_arguments(p: Any) -> None:
    """The options of ``layerbraid plan``."""
    p.add_argument("--depth", type=int, required=True, help="residual layers N")
    p.add_argument("--network", choices=("dense", "conv"), default="dense",
                   help="dense (--width) or conv (--channels, --image, --kernel) layers")
    p.add_argument("--width", type=int, help="dense layer width W")
    p.add_argument("--channels", type=int, help="conv: channels C")
    p.add_argument("--image", metavar="HxW", help="conv: image height x width (e.g. 32x32)")
    p.add_argument("--kernel", type=int, default=3, help="conv: kernel size k (3)")
    p.add_argument("--spatial", type=int, metavar="S",
                   help="conv: search spatial coarsening 0..S halvings of the image only "
                        f"(default: as far as the image, the cost table and {MAX_SPATIAL} "
                        f"allow)")
    p.add_argument("--spatial-states", action="store_true",
                   help="conv: spatial coarsening with low-resolution states on the coarse "
                        "levels (smaller messages, many more iterations) instead of full-size "
                        "states")
    p.add_argument("--batch", type=int, required=True, help="batch size B")
    p.add_argument("--ranks", type=int, required=True, help="MPI ranks P")
    p.add_argument("--platform", default="cluster",
                   help=f"{', '.join(PLATFORMS)} (shipped SimGrid files) or a platform file")
    p.add_argument("--mode", choices=("tolerance", "one-shot"), default="tolerance",
                   help="solves to --tol (default) or one-shot cycles per solve")
    p.add_argument("--cycles", type=int, help="one-shot: MGRIT cycles per solve (default: "
                                              "search 1, 2, 3)")
    p.add_argument("--tol", type=float, default=1e-6, help="absolute tolerance (1e-6)")
    p.add_argument("--iterations", help="FWD,ADJ iteration counts instead of measuring them")
    p.add_argument("--min-coarse", type=int, default=2, help="coarsest-grid intervals (2)")
    p.add_argument("--costs", help="cost table JSON (from --calibrate or propagate "
                                   "--calibrate)")
    p.add_argument("--calibrate", metavar="FILE", nargs="?", const="",
                   help="measure the costs here first (a few seconds); save them to FILE if "
                        "given")
    p.add_argument("--top", type=int, default=5, help="settings to list (5)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def _network(args: Any) -> int | ConvShape:
    """The dense width or the conv shape the options give (ValueError naming the bad one)."""
    conv_opts = [f"--{n}" for n in ("channels", "image", "spatial")
                 if getattr(args, n) is not None]
    if args.spatial_states:
        conv_opts.append("--spatial-states")
    if args.network == "dense":
        if conv_opts:
            raise ValueError(f"{', '.join(conv_opts)}: for --network conv")
        if args.width is None:
            raise ValueError("--width is required for --network dense")
        if args.width < 1:
            raise ValueError(f"--width must be >= 1, got {args.width}")
        return int(args.width)
    if args.width is not None:
        raise ValueError("--width is for --network dense; a conv network has --channels, "
                         "--image HxW and --kernel")
    if args.channels is None or args.image is None:
        raise ValueError("--network conv needs --channels C and --image HxW")
    m = re.fullmatch(r"\s*([0-9]+)\s*[xX]\s*([0-9]+)\s*", args.image)
    if not m:
        raise ValueError(f"--image {args.image!r}: give the image size as HxW (e.g. 32x32)")
    if args.spatial is not None and not 0 <= args.spatial <= MAX_SPATIAL:
        raise ValueError(f"--spatial must be in 0..{MAX_SPATIAL}, got {args.spatial}")
    try:
        return ConvShape(args.channels, int(m.group(1)), int(m.group(2)), args.kernel)
    except ValueError as e:
        raise ValueError(f"--network conv: {e}") from None


def _parse_iterations(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*([0-9]+)\s*,\s*([0-9]+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ValueError(f"--iterations {text!r}: give two positive counts FWD,ADJ (e.g. 5,5)")
    return int(m.group(1)), int(m.group(2))


def run(args: Any) -> int:
    """``layerbraid plan``. Meant for one process; under mpiexec every rank computes the same
    plan (so that a bad option fails on all of them alike) and rank 0 prints and saves."""
    from mpi4py import MPI

    root = MPI.COMM_WORLD.Get_rank() == 0

    def log(s: str) -> None:
        if root:
            print(s, file=sys.stderr, flush=True)

    network = _network(args)
    for name in ("depth", "batch", "ranks", "top", "min_coarse"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got "
                             f"{getattr(args, name)}")
    if not (args.tol > 0 and math.isfinite(args.tol)):
        raise ValueError(f"--tol must be a positive number, got {args.tol}")
    if args.cycles is not None and not 1 <= args.cycles <= 100:
        raise ValueError(f"--cycles must be in 1..100, got {args.cycles}")
    if args.cycles is not None and args.mode != "one-shot":
        raise ValueError("--cycles is for --mode one-shot")
    iterations = _parse_iterations(args.iterations) if args.iterations else None
    platform = load_platform(args.platform)
    if args.calibrate is not None:
        if isinstance(network, ConvShape):
            spatial = network.max_spatial if args.spatial is None \
                else min(args.spatial, network.max_spatial)
            if not args.json:
                log(f"calibrating conv {network} at {spatial + 1} resolution(s), batch "
                    f"{args.batch} ...")
            costs = calibrate_conv(network, args.batch, spatial=spatial,
                                   log=None if args.json else log)
        else:
            if not args.json:
                log(f"calibrating width {args.width}, batch {args.batch} ...")
            costs = calibrate(args.width, args.batch, log=None if args.json else log)
        if args.calibrate and root:
            save_costs(costs, args.calibrate)
    elif args.costs:
        costs = load_costs(args.costs)
    else:
        raise ValueError("give --costs FILE (a cost table) or --calibrate [FILE] (measure here)")
    plan = recommend(args.depth, network, args.batch, args.ranks, platform, costs,
                     mode=args.mode, iterations=iterations,
                     cycles=None if args.cycles is None else (args.cycles,), tol=args.tol,
                     min_coarse=args.min_coarse, max_spatial=args.spatial,
                     spatial_states=args.spatial_states, log=None if args.json else log)
    if root:
        print(json.dumps(plan.to_dict(args.top), indent=1) if args.json
              else format_plan(plan, args.top), flush=True)
    return 0
