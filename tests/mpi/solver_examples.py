"""Runs one Python example's ``main(argv)`` for several argument lists in one MPI job.

    mpiexec -n N python tests/mpi/solver_examples.py <example.py> <args 1> -- <args 2> -- ...

Starting Python once per job instead of once per argument list keeps the comparison with the
C examples fast. Before each run, rank 0 prints a marker line ``@@case <k> rc=?@@`` and after
it ``@@end <k> rc=<main's return value>@@``; between them is exactly what the example prints
(the engine's output and the example's own lines), so the test splits the output on the
markers and compares each part with the C example's output for the same arguments.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from mpi4py import MPI


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    comm = MPI.COMM_WORLD
    example = load(Path(sys.argv[1]))
    cases: list[list[str]] = [[]]
    for arg in sys.argv[2:]:
        if arg == "--":
            cases.append([])
        else:
            cases[-1].append(arg)
    status = 0
    for k, argv in enumerate(cases):
        comm.Barrier()
        if comm.rank == 0:
            print(f"@@case {k}@@", flush=True)
        rc = example.main(argv)
        sys.stdout.flush()
        comm.Barrier()
        if comm.rank == 0:
            print(f"@@end {k} rc={rc}@@", flush=True)
        status = status or rc
    return status


if __name__ == "__main__":
    sys.exit(main())
