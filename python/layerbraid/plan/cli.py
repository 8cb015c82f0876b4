"""The command line of ``layerbraid plan``: its options (:func:`add_arguments`) and the
command (:func:`run`)."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from .costs import MAX_SPATIAL, ConvShape, calibrate, calibrate_conv, load_costs, save_costs
from .platforms import PLATFORMS, load_platform
from .search import format_plan, recommend


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
