"""ntime at the engine's limits: a clean Python exception, never a crash.

``Solver(ntime=2**31 - 1)`` (ntime + 1 points do not fit the engine's braid_Int) is refused with
a ValueError naming ntime and its range; the largest accepted ntime, and 2**30, whose storage
cannot be allocated, make ``drive()`` raise MemoryError on every rank. The solves run in a
child process whose address space is capped (RLIMIT_AS), so an allocation fails for sure and a
crash could not take pytest down; it runs directly and under mpiexec on 2 ranks.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerbraid

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="caps the address space, measured from /proc")

NTIME_MAX = 2**31 - 2

# Prints, on rank 0, a JSON object: case -> "ok" or "<ExceptionType>: <message>", per rank.
CHILD = r'''
import json, resource, sys
import numpy as np
from mpi4py import MPI
import layerbraid

class Halve(layerbraid.App):
    def init(self, t):
        return np.array([1.0])

    def step(self, u, ustop, status):
        u *= 0.5

def outcome(fn):
    try:
        fn()
        return "ok"
    except Exception as e:
        return f"{type(e).__name__}: {e}"

results = {"too large": outcome(lambda: layerbraid.Solver(Halve(), 0.0, 1.0, 2**31 - 1))}

# 1 GiB more address space than now: a slot per time point (8 bytes each) cannot be had
with open("/proc/self/statm") as f:
    used = int(f.read().split()[0]) * resource.getpagesize()
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
cap = used + 2**30
if hard == resource.RLIM_INFINITY or hard > cap:
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))

for ntime in (%d, 2**30):
    solver = layerbraid.Solver(Halve(), 0.0, 1.0, ntime, max_levels=3, print_level=0)
    results[f"drive {ntime}"] = outcome(solver.drive)
    results[f"drive {ntime} again"] = outcome(solver.drive)
    solver.close()

resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
gathered = MPI.COMM_WORLD.gather(results, root=0)
if MPI.COMM_WORLD.Get_rank() == 0:
    print("RESULT " + json.dumps(gathered), flush=True)
''' % NTIME_MAX


def _results(output: str) -> list[dict[str, str]]:
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output
    return json.loads(lines[-1][len("RESULT "):])


def _check(per_rank: list[dict[str, str]], nprocs: int, output: str) -> None:
    assert len(per_rank) == nprocs, output
    for rank, results in enumerate(per_rank):
        assert re.fullmatch(r"ValueError: ntime=2147483647 is out of range; it must be in "
                            r"\[1, 2147483646\]", results["too large"]), (rank, results)
        for ntime in (NTIME_MAX, 2**30):
            first = results[f"drive {ntime}"]
            assert first.startswith("MemoryError: the MGRIT engine ran out of memory: "), first
            assert f"rank {rank}: cannot allocate the" in first, first
            assert f"(ntime = {ntime}); each rank keeps a slot" in first, first
            assert f"more ranks (now {nprocs}) need less" in first, first
            again = results[f"drive {ntime} again"]
            assert again.startswith("RuntimeError: this Solver cannot drive again: its earlier "
                                    "drive() failed with MemoryError"), again


class Halve(layerbraid.App):
    def init(self, t: float) -> np.ndarray:
        return np.array([1.0])

    def step(self, u: np.ndarray, ustop: np.ndarray, status: Any) -> None:
        u *= 0.5


def test_ntime_range_is_the_engines() -> None:
    with pytest.raises(ValueError, match=re.escape("ntime=2147483647 is out of range; it must be "
                                                   "in [1, 2147483646]")):
        layerbraid.Solver(Halve(), 0.0, 1.0, 2**31 - 1)
    assert "[1, 2**31 - 2]" in (layerbraid.Solver.__doc__ or "")
    with layerbraid.Solver(Halve(), 0.0, 1.0, 4, max_levels=1, print_level=0) as solver:
        assert solver.drive().iterations == 0  # the range's low end still solves


def test_huge_ntime_one_process(tmp_path: Path, python_exe: str) -> None:
    from conftest import clean_env

    child = tmp_path / "child.py"
    child.write_text(CHILD)
    proc = subprocess.run([python_exe, str(child)], capture_output=True, text=True, timeout=120,
                          env=clean_env())
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    _check(_results(output), 1, output)


def test_huge_ntime_two_ranks(tmp_path: Path, python_exe: str, run_mpi) -> None:
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    code, output = run_mpi(2, [python_exe, child], timeout=120)
    assert code == 0, output
    _check(_results(output), 2, output)
