"""Regenerate the golden MGRIT option table of the C examples.

    make examples
    .venv/bin/python tests/data/make_engine_option_table.py

runs ``build/examples/c/scalar_ode`` and ``build/examples/c/heat1d`` on one rank for every
option combination in CONFIGS and writes

* ``tests/data/engine_option_table.json``: what ``tests/test_engine_examples.py`` compares
  against (iterations exactly, the final residual norm to a relative 1e-8), and
* ``extern/braid/doc/convergence.md``: the same table for people (levels, iterations, final
  residual, convergence factors), which the tests also check is in step with the JSON.

Regenerate only after a deliberate change of the engine's algorithm, and say in the commit
why the numbers moved. The test module imports this file for the configuration list and the
output parser, so the two can never disagree on what a configuration means.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JSON_PATH = REPO / "tests" / "data" / "engine_option_table.json"
MD_PATH = REPO / "extern" / "braid" / "doc" / "convergence.md"
REGENERATE = ".venv/bin/python tests/data/make_engine_option_table.py"

# The problem each example solves in the table, and the halting rule. The tolerance is tight
# enough that every configuration needs several iterations (4 to 16) and loose enough to stay
# well above round-off; MAX_ITER is far above what any configuration needs.
TOL = 1e-10
MAX_ITER = 40
EXAMPLES: dict[str, list[str]] = {
    "scalar_ode": ["-ntime", "64", "-tol", f"{TOL:g}", "-mi", str(MAX_ITER)],
    "heat1d": ["-ntime", "64", "-nspace", "17", "-tol", f"{TOL:g}", "-mi", str(MAX_ITER)],
}

MAX_LEVELS = (2, 3, 5)
CFACTORS = (2, 4)
NRELAX = (0, 1, 2)
SKIP = (0, 1)
FMG = (0, 1)
RELAX_NAMES = {0: "F", 1: "FCF", 2: "FCFCF"}


def configs() -> list[dict[str, int]]:
    """The 72 option combinations, in a fixed order."""
    return [
        {"ml": ml, "cf": cf, "nu": nu, "skip": skip, "fmg": fmg}
        for ml, cf, nu, skip, fmg in itertools.product(MAX_LEVELS, CFACTORS, NRELAX, SKIP, FMG)
    ]


def config_key(cfg: dict[str, int]) -> str:
    return f"ml={cfg['ml']} cf={cfg['cf']} nu={cfg['nu']} skip={cfg['skip']} fmg={cfg['fmg']}"


def config_args(example: str, cfg: dict[str, int]) -> list[str]:
    """The example's command-line flags for one configuration (no -out)."""
    args = list(EXAMPLES[example])
    args += ["-ml", str(cfg["ml"]), "-cf", str(cfg["cf"]), "-nu", str(cfg["nu"])]
    args += ["-skip", str(cfg["skip"])]
    if cfg["fmg"]:
        args.append("-fmg")
    return args


# ---- parsing the engine's output (print level 2) ----

_RESID = re.compile(
    r"^  Braid: \|\| r_(\d+) \|\| (?:= (\S+), conv factor = (\S+)|not available), wall time = ",
    re.M,
)
_ITER = re.compile(r"^  iterations +=[ ]+(-?\d+)$", re.M)
_RNORM = re.compile(r"^  residual norm +=[ ]+(\S+)$", re.M)
_LEVELS = re.compile(r"^  number of levels +=[ ]+(\d+)$", re.M)
_WALL_SUFFIX = re.compile(r", wall time = \S+$", re.M)


def _one(pattern: re.Pattern[str], output: str, what: str) -> str:
    found = pattern.findall(output)
    if len(found) != 1:
        raise ValueError(f"expected one {what} line, found {len(found)} in:\n{output}")
    return found[0]


def parse_run(output: str) -> dict:
    """The residual history and statistics one run printed.

    ``residuals[k]`` is ``|| r_k ||`` (None where "not available"); ``printed_factors[k]`` the
    conv factor printed on that line (None where none is printed); ``text`` and ``factor_text``
    keep the printed digits.
    """
    residuals: list[float | None] = []
    printed_factors: list[float | None] = []
    text: list[str | None] = []
    for k, value, factor in _RESID.findall(output):
        if int(k) != len(residuals):
            raise ValueError(f"residual r_{k} out of order in:\n{output}")
        residuals.append(float(value) if value else None)
        printed_factors.append(float(factor) if factor else None)
        text.append(value or None)
    return {
        "residuals": residuals,
        "printed_factors": printed_factors,
        "residual_text": text,
        "iterations": int(_one(_ITER, output, "iterations")),
        "residual_norm": float(_one(_RNORM, output, "residual norm")),
        "residual_norm_text": _one(_RNORM, output, "residual norm"),
        "levels": int(_one(_LEVELS, output, "number of levels")),
        "max_iter_reached": "Max. iterations reached" in output,
        "diverged": "Iterations diverged" in output,
    }


def conv_factors(residuals: list[float | None]) -> list[float | None]:
    """r_k / r_{k-1} for k >= 1 where both are available (None elsewhere, and for k = 0)."""
    out: list[float | None] = [None]
    for k in range(1, len(residuals)):
        a, b = residuals[k - 1], residuals[k]
        out.append(b / a if a is not None and b is not None and a > 0 else None)
    return out


def normalise(output: str) -> str:
    """The output with everything that may differ between rank counts removed.

    Drops the wall-time part of every residual line and the ``wall time`` line of the
    statistics block, and nothing else: residual history, iterations, residual
    norm, levels, the level table and anything the example prints itself stay.
    """
    lines = []
    for line in _WALL_SUFFIX.sub("", output).splitlines():
        stripped = line.strip()
        if stripped.startswith("wall time ="):
            continue
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


# ---- generating the table ----


def find_mpiexec() -> Path:
    import layerbraid

    return Path(layerbraid.find_mpiexec())


def run_example(mpiexec: Path, binary: Path, args: list[str], np: int = 1) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "HYDRA_"))}
    proc = subprocess.run(
        [str(mpiexec), "-n", str(np), str(binary), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        command = " ".join([binary.name, *args])
        raise RuntimeError(f"{command} exited {proc.returncode}:\n{proc.stdout}")
    return proc.stdout


def build_table(build_dir: Path) -> dict:
    mpiexec = find_mpiexec()
    table: dict = {
        "about": (
            "Golden MGRIT convergence of the C examples on one rank, per option combination. "
            f"Regenerate with `{REGENERATE}` (after `make examples`); "
            "tests/test_engine_examples.py compares against it."
        ),
        "tol": TOL,
        "max_iter": MAX_ITER,
        "examples": {},
    }
    for example, base in EXAMPLES.items():
        binary = build_dir / "examples" / "c" / example
        if not binary.is_file():
            raise SystemExit(f"{binary} is not built; run `make examples` first")
        entries = {}
        for cfg in configs():
            run = parse_run(run_example(mpiexec, binary, config_args(example, cfg)))
            entries[config_key(cfg)] = {
                **cfg,
                "levels": run["levels"],
                "iterations": run["iterations"],
                "residual_norm": run["residual_norm"],
                "residuals": run["residuals"],
            }
        table["examples"][example] = {"args": base, "configs": entries}
    return table


def _fmt(x: float | None, digits: int = 6) -> str:
    return "n/a" if x is None else f"{x:.{digits}e}"


def render_markdown(table: dict) -> str:
    """The human-readable table; a pure function of the JSON."""
    out = [
        "# MGRIT convergence of the C examples, by option",
        "",
        f"Generated by `{REGENERATE}` (after `make examples`),",
        "together with `tests/data/engine_option_table.json`; do not edit by hand.",
        "`tests/test_engine_examples.py` checks that every configuration below gives these",
        "iterations and residuals on 1 rank, the same residual history and solution on 1, 2, 3",
        "and 4 ranks, and that this file is in step with the JSON.",
        "",
        f"Halting rule: absolute tolerance {table['tol']:g} on the l2 norm of the C-point "
        f"residuals, at most {table['max_iter']} iterations.",
        "Columns: `ml` maximum levels (the engine builds fewer when a coarse grid would have",
        "under 2 intervals: `levels`), `cf` coarsening factor, relaxation (`-nu` 0 = F, 1 = FCF,",
        "2 = FCFCF), `skip` the first down-cycle, `FMG` F-cycles instead of V-cycles. `iters` is",
        "the engine's iteration count, `final ||r||` the residual norm it reports, and the conv",
        "factors are ||r_k|| / ||r_k-1|| for every k where both are printed (with skip = 1,",
        "||r_0|| is not available).",
        "",
    ]
    titles = {
        "scalar_ode": "`scalar_ode`: u' = -u, backward Euler, dt = 1/2",
        "heat1d": "`heat1d`: u_t = u_xx on [0, pi] x [0, 1], backward Euler + central differences",
    }
    for example, data in table["examples"].items():
        out += [
            f"## {titles.get(example, example)}",
            "",
            f"`build/examples/c/{example} {' '.join(data['args'])} -ml ML -cf CF -nu NU "
            "-skip SKIP [-fmg]`",
            "",
            "| ml | cf | relax | skip | FMG | levels | iters | final \\|\\|r\\|\\| "
            "| conv factors |",
            "|---:|---:|---|---:|---|---:|---:|---:|---|",
        ]
        for entry in data["configs"].values():
            factors = [f for f in conv_factors(entry["residuals"]) if f is not None]
            out.append(
                f"| {entry['ml']} | {entry['cf']} | {RELAX_NAMES[entry['nu']]} | "
                f"{entry['skip']} | {'yes' if entry['fmg'] else 'no'} | {entry['levels']} | "
                f"{entry['iterations']} | {_fmt(entry['residual_norm'])} | "
                f"{' '.join(f'{f:.2e}' for f in factors)} |"
            )
        out.append("")
    return "\n".join(out)


def dump_json(table: dict) -> str:
    return json.dumps(table, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path,
                        default=Path(os.environ.get("LAYERBRAID_BUILD_DIR", REPO / "build")),
                        help="CMake build tree holding examples/c/ (default: build/)")
    parser.add_argument("--json", type=Path, default=JSON_PATH, help="JSON output path")
    parser.add_argument("--md", type=Path, default=MD_PATH, help="markdown output path")
    opts = parser.parse_args(argv)

    table = build_table(opts.build_dir.resolve())
    for entries in table["examples"].values():
        for key, entry in entries["configs"].items():
            if not (entry["residual_norm"] < TOL and math.isfinite(entry["residual_norm"])):
                print(f"warning: {key} did not converge: {entry}", file=sys.stderr)
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(dump_json(table))
    opts.md.parent.mkdir(parents=True, exist_ok=True)
    opts.md.write_text(render_markdown(table))
    print(f"wrote {opts.json} and {opts.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
