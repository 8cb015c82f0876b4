"""Checkpoints on several ranks: a save of every rank's parameters read back by owner, and two
failing saves (rank 0 cannot write; a value that cannot be stored) that must raise the same
error on every rank, never only on rank 0.

    mpiexec -n N python tests/mpi/checkpoint_ranks.py <scratch dir>

Rank 0 prints one JSON line: {"nprocs", "exact", "owned", "write_errors", "type_errors"}, the
errors as [type name, message] per rank.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

from layerbraid.train.checkpoint import load_checkpoint, save_checkpoint


def caught(action) -> list[str] | None:
    try:
        action()
    except Exception as e:  # noqa: BLE001 - reported, compared across ranks
        return [type(e).__name__, str(e)]
    return None


def main() -> None:
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    scratch = Path(sys.argv[1])
    rng = np.random.default_rng(rank)
    mine = {f"layers.{rank}.weight": rng.standard_normal((3, 3)),
            f"layers.{rank}.bias": rng.standard_normal(3)}
    state = {"params": mine, "optimizer": {"steps": 4, "m": {k: 2 * v for k, v in mine.items()}},
             "epoch": 3, "loss": float("nan")}

    path = scratch / "run" / "checkpoint.npz"
    save_checkpoint(path, state, comm)
    loaded = load_checkpoint(path, lambda name: name.startswith(f"layers.{rank}."))
    exact = bool(set(loaded["params"]) == set(mine)
             and all(np.array_equal(loaded["params"][k], v) for k, v in mine.items())
             and all(np.array_equal(loaded["optimizer"]["m"][k], 2 * v) for k, v in mine.items())
             and loaded["epoch"] == 3 and np.isnan(loaded["loss"]))
    everything = load_checkpoint(path, lambda name: True)

    blocker = scratch / "blocker"
    if rank == 0:
        blocker.write_text("a file where a directory should be\n")
    comm.Barrier()
    write_error = caught(lambda: save_checkpoint(blocker / "checkpoint.npz", state, comm))
    odd = {**state, "odd": {1, 2}} if rank == 0 else state
    type_error = caught(lambda: save_checkpoint(scratch / "odd.npz", odd, comm))

    report = comm.gather((exact, len(everything["params"]), write_error, type_error), root=0)
    if rank == 0:
        print(json.dumps({"nprocs": size, "exact": [r[0] for r in report],
                          "owned": [r[1] for r in report],
                          "write_errors": [r[2] for r in report],
                          "type_errors": [r[3] for r in report]}))


if __name__ == "__main__":
    main()
