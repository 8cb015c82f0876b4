"""Shared helpers of the Python-driver benchmarks: machine description, tables, JSON output."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10, check=True)
        commit = out.stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain",
                                "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    import numpy
    import mpi4py
    from mpi4py import MPI

    import layerbraid

    out = {"python": platform.python_version(), "numpy": numpy.__version__,
           "mpi4py": mpi4py.__version__, "layerbraid": layerbraid.__version__,
           "mpi": " ".join(MPI.Get_library_version().splitlines()[0].split())}
    out.update(extra or {})
    return out


def machine_info(nranks: int = 1, extra_versions: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ranks": nranks,
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "versions": versions(extra_versions),
    }


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table (also readable as plain text)."""
    rows = [[_cell(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(list(headers)), sep] + [line(r) for r in rows])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value == 0.0:
            return "0"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 1e-2:
            return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
        return f"{value:.2e}"
    return str(value)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# ---- running project programs and writing BENCHMARKS.md sections ----

BENCHMARKS_MD = REPO / "benchmarks" / "BENCHMARKS.md"

#: One BLAS/OpenMP thread per process: the benchmarks compare single-thread work.
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def venv_python() -> str:
    """The project's virtual-environment interpreter (this one when there is none)."""
    import sys

    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def thread_env() -> dict[str, str]:
    """This process's environment with :data:`THREAD_ENV`."""
    return {**os.environ, **THREAD_ENV}


def mpiexec() -> str:
    """The mpich wheel's launcher, as layerbraid finds it."""
    out = subprocess.run([venv_python(), "-c",
                          "import layerbraid; print(layerbraid.find_mpiexec())"],
                         capture_output=True, text=True, check=True, env=thread_env())
    return out.stdout.strip()


def write_section(name: str, heading: str, text: str) -> None:
    """Replace the ``<!-- BEGIN name -->`` .. ``<!-- END name -->`` block of BENCHMARKS.md (with
    the heading just above it) by ``text``, or append ``text`` if there is no such block."""
    import re

    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = re.compile(r"(?:^" + re.escape(heading) + r"[ \t]*\n+)?" + re.escape(begin)
                       + r".*?" + re.escape(end) + r"[ \t]*\n?", re.S | re.M)
    current = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    if block.search(current):
        new = block.sub(lambda m: text, current, count=1)
    else:
        new = current.rstrip("\n") + "\n\n" + text
    BENCHMARKS_MD.write_text(new)
    print(f"wrote the {name} section of {BENCHMARKS_MD}")
