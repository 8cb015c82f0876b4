"""Cost tables of ``layerbraid plan``: seconds per engine callback for one network and batch,
read from and written to JSON, or measured on this machine with the native backend
(:func:`calibrate`, :func:`calibrate_conv`)."""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

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

_MAX_COST = 1e3           # seconds; a cost above it is not a per-call cost
_MAX_FILE = 1 << 20       # bytes of a cost table or platform file


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

        from ..native import _module

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
    from ..native import _module

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

    from ..native import _module

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

