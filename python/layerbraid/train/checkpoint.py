"""Checkpoints that do not depend on the number of ranks: every per-parameter array of the
training state (weights, optimiser buffers) is gathered by name to rank 0, which writes one
file; on resume each rank keeps the names it owns."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
from mpi4py import MPI

__all__ = ["save_checkpoint", "load_checkpoint"]

FORMAT = "layerbraid-checkpoint-1"


def _is_params(value: Any) -> bool:
    """A parameter set: a dict whose keys are parameter names (``layers.3.weight``, ...), or
    solver states by name (``states.forward.12``)."""
    return isinstance(value, dict) and bool(value) and all(
        isinstance(k, str) and k.split(".")[0] in ("opening", "layers", "classifier", "states")
        for k in value)


def _to_host(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_host(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_host(v) for v in value)
    if hasattr(value, "get") and type(value).__module__.startswith("cupy"):
        return value.get()
    return value


def _merge(parts: list[Any]) -> Any:
    """One structure from every rank's: parameter sets are merged, the rest taken from
    rank 0 (scalars such as step counts are the same on every rank)."""
    first = parts[0]
    if _is_params(first) or (isinstance(first, dict) and any(_is_params(p) for p in parts)):
        merged: dict[str, Any] = {}
        for p in parts:
            merged.update(p or {})
        return merged
    if isinstance(first, dict):
        return {k: _merge([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(_merge([p[i] for p in parts]) for i in range(len(first)))
    return first


def _select(value: Any, owns: Callable[[str], bool], xp: Any) -> Any:
    if _is_params(value):
        return {k: xp.asarray(v) for k, v in value.items() if owns(k)}
    if isinstance(value, dict):
        return {k: _select(v, owns, xp) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_select(v, owns, xp) for v in value)
    return value


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any],
                    comm: MPI.Comm) -> None:
    """Collective: gather ``state`` (nested dicts/lists with parameter sets) and write it."""
    parts = comm.gather(_to_host(state), root=0)
    error = None
    if comm.Get_rank() == 0:
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".tmp")
            with tmp.open("wb") as f:
                pickle.dump({"format": FORMAT, "state": _merge(parts)}, f)
            os.replace(tmp, target)  # never leave a half-written checkpoint behind
        except OSError as e:
            error = f"cannot write checkpoint {os.fspath(path)!r}: {e}"
    error = comm.bcast(error, root=0)
    if error:
        raise OSError(error)


def load_checkpoint(path: str | os.PathLike[str], owns: Callable[[str], bool],
                    xp: Any = np) -> dict[str, Any]:
    """The state saved in ``path``, with only the parameters ``owns`` accepts."""
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise OSError(f"cannot read checkpoint {os.fspath(path)!r}: {e}") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not a layerbraid checkpoint ({FORMAT})")
    return _select(data["state"], owns, xp)
