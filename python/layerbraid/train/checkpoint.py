"""Checkpoints that do not depend on the number of ranks: every per-parameter array of the
training state (weights, optimiser buffers) is gathered by name to rank 0, which writes one
file; on resume each rank keeps the names it owns.

A checkpoint is a data-only file of :mod:`layerbraid.storage` (format ``layerbraid-checkpoint``,
version 2): the state tree is JSON in the header's ``meta`` (``{"state": ...}``) with every array
replaced by a reference to an ``.npy`` member, so loading one can never run code. In the JSON,
dicts with string keys (none starting with ``$``) and lists are themselves; other values are
one-key objects: ``{"$array": member}`` (an ndarray), ``{"$scalar": member}`` (a NumPy scalar,
a 0-d member), ``{"$float": "nan" | "inf" | "-inf"}``, ``{"$tuple": [...]}`` and
``{"$dict": [[key, value], ...]}`` (a dict with other keys, such as ints). Members are named
after their place in the state (``params.layers.3.weight``), so ``np.load`` shows them.

Pickle checkpoints of layerbraid < 0.2 are recognised and refused without being unpickled.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
from mpi4py import MPI

from ..storage import StorageError, read_arrays, write_arrays

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT", "VERSION"]

FORMAT = "layerbraid-checkpoint"
VERSION = 2
_WHAT = "checkpoint"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


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
    if isinstance(first, dict):   # rank 0's keys; a rank without one contributes nothing
        return {k: _merge([p.get(k) if isinstance(p, dict) else None for p in parts])
                for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(_merge([p[i] if isinstance(p, (list, tuple)) and i < len(p) else None
                                   for p in parts]) for i in range(len(first)))
    return first


def _select(value: Any, owns: Callable[[str], bool], xp: Any) -> Any:
    if _is_params(value):
        return {k: xp.asarray(v) for k, v in value.items() if owns(k)}
    if isinstance(value, dict):
        return {k: _select(v, owns, xp) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_select(v, owns, xp) for v in value)
    return value


# ---- the state tree as JSON plus arrays ----

class _Encoder:
    """Turns a state tree into JSON, collecting its arrays under names from their places."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._seen: dict[int, str] = {}   # id of an ndarray already stored -> its member

    def _member(self, place: tuple[Any, ...], value: np.ndarray, share: bool = True) -> str:
        if share and id(value) in self._seen:   # one array at two places is stored once
            return self._seen[id(value)]
        base = _UNSAFE.sub("_", ".".join(str(p) for p in place))[:150].lstrip("._") or "array"
        name, n = base, 1
        while name in self.arrays:
            name, n = f"{base}-{n}", n + 1
        self.arrays[name] = value
        if share:
            self._seen[id(value)] = name
        return name

    def encode(self, value: Any, place: tuple[Any, ...] = ()) -> Any:
        if value is None or isinstance(value, (bool, str)) and not isinstance(value, np.generic):
            return value
        if isinstance(value, np.generic):
            return {"$scalar": self._member(place, np.array(value), share=False)}
        if isinstance(value, np.ndarray):
            return {"$array": self._member(place, value)}
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else {"$float": repr(float(value))}
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v, (*place, i)) for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, (*place, i)) for i, v in enumerate(value)]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in value):
                return {k: self.encode(v, (*place, k)) for k, v in value.items()}
            return {"$dict": [[self._key(k, place), self.encode(v, (*place, k))]
                              for k, v in value.items()]}
        raise TypeError(f"the checkpoint state holds a {type(value).__name__} at "
                        f"{_place(place)}; checkpoints store dicts, lists, tuples, strings, "
                        "numbers, None and arrays")

    def _key(self, key: Any, place: tuple[Any, ...]) -> Any:
        if isinstance(key, (np.ndarray, np.generic)) or not (
                key is None or isinstance(key, (bool, int, float, str, tuple))):
            raise TypeError(f"the checkpoint state has a dict key of type "
                            f"{type(key).__name__} at {_place(place)}")
        return self.encode(key, place)


def _place(place: tuple[Any, ...]) -> str:
    return "state" + "".join(f"[{p!r}]" for p in place)


_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The state tree :meth:`_Encoder.encode` made ``value`` from; ValueError if malformed."""
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag.startswith("$"):
            if tag in ("$array", "$scalar"):
                if not isinstance(inner, str) or inner not in arrays:
                    raise ValueError(f"the state refers to a missing array {inner!r}")
                array = arrays[inner]
                if tag == "$scalar":
                    if array.ndim != 0:
                        raise ValueError(f"scalar {inner!r} has shape {array.shape}")
                    return array[()]
                return array
            if tag == "$float" and inner in _FLOATS:
                return _FLOATS[inner]
            if tag == "$tuple" and isinstance(inner, list):
                return tuple(_decode(v, arrays) for v in inner)
            if tag == "$dict" and isinstance(inner, list) and all(
                    isinstance(p, list) and len(p) == 2 for p in inner):
                return {_hashable(_decode(k, arrays)): _decode(v, arrays) for k, v in inner}
            raise ValueError(f"the state holds an unknown entry {tag!r}")
    return {k: _decode(v, arrays) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        raise ValueError(f"the state has a dict key {key!r} that is not hashable") from None
    return key


# ---- saving and loading ----

_ERRORS: dict[str, type[Exception]] = {"StorageError": StorageError, "TypeError": TypeError,
                                       "ValueError": ValueError, "RuntimeError": RuntimeError}


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any],
                    comm: MPI.Comm) -> None:
    """Collective: gather ``state`` (nested dicts/lists with parameter sets) to rank 0, which
    writes it to ``path`` atomically. Every rank raises the same error if rank 0 cannot
    (:class:`~layerbraid.storage.StorageError` for the disk, TypeError for a value that
    cannot be stored)."""
    parts = comm.gather(_to_host(state), root=0)
    error: tuple[str, str] | None = None
    if comm.Get_rank() == 0:
        try:
            encoder = _Encoder()
            try:
                tree = encoder.encode(_merge(parts))
            except (TypeError, ValueError, RecursionError) as e:
                raise TypeError(f"cannot write checkpoint {os.fspath(path)!r}: {e}") from e
            target = Path(path)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                reason = "a file is in the way" if isinstance(e, FileExistsError) else \
                    e.strerror or str(e)
                raise StorageError(f"cannot write checkpoint {os.fspath(path)!r}: cannot "
                                   f"create its directory {os.fspath(target.parent)!r} "
                                   f"({reason})") from e
            write_arrays(target, encoder.arrays, format=FORMAT, version=VERSION,
                         meta={"state": tree}, what=_WHAT)
        except StorageError as e:
            error = ("StorageError", str(e))
        except OSError as e:
            error = ("StorageError", f"cannot write checkpoint {os.fspath(path)!r}: {e}")
        except (TypeError, ValueError) as e:
            error = ("TypeError" if isinstance(e, TypeError) else "ValueError", str(e))
        except Exception as e:  # noqa: BLE001 - every rank must raise, not only rank 0
            error = ("RuntimeError", f"cannot write checkpoint {os.fspath(path)!r}: "
                                     f"{type(e).__name__}: {e}")
    error = comm.bcast(error, root=0)
    if error:
        raise _ERRORS[error[0]](error[1])


def _refuse_foreign(path: str | os.PathLike[str]) -> None:
    """Refuse, unread, a file that is not a zip archive: above all an old pickle checkpoint."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise StorageError(f"cannot read checkpoint {os.fspath(path)!r}: "
                           f"{e.strerror or e}") from e
    if head[:1] == b"\x80":  # the PROTO opcode every pickle of protocol 2 and later starts with
        raise StorageError(
            f"{os.fspath(path)!r} is an old pickle checkpoint (layerbraid < 0.2); it is not "
            "loaded because unpickling a file can run arbitrary code. Retrain, or, only if you "
            "trust the file, convert it in a trusted environment: load it with pickle there "
            "and pass its 'state' entry to layerbraid.train.checkpoint.save_checkpoint(path, "
            "state, MPI.COMM_SELF)")
    if head[:2] != b"PK":
        raise StorageError(f"cannot read checkpoint {os.fspath(path)!r}: "
                           + ("the file is empty" if not head else
                              "it is not a layerbraid checkpoint (not a zip archive)"))


def load_checkpoint(path: str | os.PathLike[str], owns: Callable[[str], bool],
                    xp: Any = np) -> dict[str, Any]:
    """The state saved in ``path``, with only the parameters ``owns`` accepts (as ``xp``
    arrays). A missing, truncated, corrupt or foreign file (an old pickle checkpoint among
    them, which is never unpickled) raises :class:`~layerbraid.storage.StorageError`, an
    ``OSError`` and ``ValueError`` whose message names the file."""
    _refuse_foreign(path)
    contents = read_arrays(path, format=FORMAT, versions=(VERSION,), what=_WHAT)
    meta = contents.meta
    if not isinstance(meta, dict) or "state" not in meta:
        raise StorageError(f"cannot read checkpoint {os.fspath(path)!r}: it holds no state")
    try:
        state = _decode(meta["state"], contents.arrays)
    except (ValueError, RecursionError) as e:
        raise StorageError(f"cannot read checkpoint {os.fspath(path)!r}: {e}") from e
    if not isinstance(state, dict):
        raise StorageError(f"cannot read checkpoint {os.fspath(path)!r}: its state is a "
                           f"{type(state).__name__}, not a dict")
    return _select(state, owns, xp)
