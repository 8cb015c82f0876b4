"""Saving and loading a network and its parameters as one .npz file.

The file holds every parameter under its name plus the network's configuration (JSON), so it
does not depend on the number of ranks that wrote it or that read it. It is a data-only file of
:mod:`layerbraid.storage` (format ``layerbraid-network``, version 1, metadata ``{"config":
...}``): written atomically, checked against its SHA-256 on load, never unpickled. Files of
layerbraid < 0.2 (a plain ``np.savez`` with a ``__config__`` entry and no hash) still load,
with the same header and size checks but nothing to check their content against.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

import numpy as np
from mpi4py import MPI

from ..storage import HEADER, NpzReader, StorageError, write_arrays
from .network import ResNet

__all__ = ["save", "load", "FORMAT", "VERSION"]

FORMAT = "layerbraid-network"
VERSION = 1
_CONFIG = "__config__"   # the configuration's entry in files of layerbraid < 0.2
_WHAT = "network file"


def save(path: str | os.PathLike[str], net: ResNet, params: Mapping[str, Any],
         comm: MPI.Comm | None = None) -> None:
    """Write ``net`` and the parameters of every rank of ``comm`` to ``path`` (rank 0 writes).

    Collective over ``comm``: each rank passes the parameters it holds.
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    host = {k: (v.get() if hasattr(v, "get") and not isinstance(v, np.ndarray) else
                np.asarray(v)) for k, v in params.items()}
    parts = comm.gather(host, root=0)
    error = None
    if comm.Get_rank() == 0:
        merged: dict[str, np.ndarray] = {}
        for part in parts:
            merged.update(part)
        missing = sorted(set(net.parameter_shapes()) - set(merged))
        if missing:
            error = f"cannot save: no rank holds {', '.join(missing[:4])}"
        else:
            try:
                write_arrays(path, merged, format=FORMAT, version=VERSION,
                             meta={"config": net.config()}, what=_WHAT)
            except (OSError, TypeError, ValueError) as e:
                error = str(e) if isinstance(e, StorageError) else \
                    f"cannot write {os.fspath(path)!r}: {e}"
    error = comm.bcast(error, root=0)
    if error:
        raise ValueError(error) if error.startswith("cannot save") else StorageError(error)


def load(path: str | os.PathLike[str],
         keep: Callable[[str], bool] | None = None) -> tuple[ResNet, dict[str, np.ndarray]]:
    """The network saved in ``path`` and its parameters; with ``keep`` only the names it
    accepts (e.g. ``propagator.layout.owns``). A missing, truncated or corrupt file raises
    :class:`~layerbraid.storage.StorageError` (an ``OSError`` and ``ValueError``) naming it."""
    where = os.fspath(path)
    with NpzReader(path, what=_WHAT) as reader:
        read: Callable[[str], np.ndarray | None]
        if HEADER in reader.names:
            contents = reader.read_verified(FORMAT, (VERSION,))
            meta = contents.meta
            config = meta.get("config") if isinstance(meta, dict) else None
            read = contents.arrays.get
        elif _CONFIG in reader.names:   # layerbraid < 0.2: a plain np.savez, no hash
            entry = reader.read(_CONFIG, max_bytes=1 << 20)
            if entry.dtype.kind != "U" or entry.ndim != 0:
                raise reader.error(f"its {_CONFIG} entry is not a string")
            try:
                config = json.loads(str(entry))
            except (ValueError, RecursionError) as e:
                raise reader.error(f"its {_CONFIG} entry is not JSON ({e})") from e
            read = lambda name: reader.read(name) if name in reader.names else None  # noqa
        else:
            raise ValueError(f"{where!r} is not a layerbraid network file (no "
                             f"{_CONFIG} entry and no {FORMAT} header)")
        try:
            net = ResNet.from_config(config)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise reader.error(f"its network configuration is not valid ({e!r})") from e
        shapes = net.parameter_shapes()
        params = {}
        for name, shape in shapes.items():
            if keep is not None and not keep(name):
                continue
            value = read(name)
            if value is None:
                raise ValueError(f"{where!r} lacks parameter {name!r}")
            if value.shape != shape:
                raise ValueError(f"{where!r}: {name} has shape {value.shape}, the "
                                 f"network needs {shape}")
            if value.dtype.kind not in "biuf":
                raise ValueError(f"{where!r}: {name} has dtype {value.dtype}, not a real "
                                 "number type")
            params[name] = np.ascontiguousarray(value, dtype=net.np_dtype)
    return net, params

