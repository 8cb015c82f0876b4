"""Saving and loading a network and its parameters as one .npz file.

The file holds every parameter under its name plus the network's configuration (JSON), so it
does not depend on the number of ranks that wrote it or that read it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

import numpy as np
from mpi4py import MPI

from .network import ResNet

__all__ = ["save", "load"]

_CONFIG = "__config__"


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
                with open(path, "wb") as f:
                    np.savez(f, **{_CONFIG: np.array(json.dumps(net.config()))}, **merged)
            except OSError as e:
                error = f"cannot write {os.fspath(path)!r}: {e}"
    error = comm.bcast(error, root=0)
    if error:
        raise ValueError(error) if error.startswith("cannot save") else OSError(error)


def load(path: str | os.PathLike[str],
         keep: Callable[[str], bool] | None = None) -> tuple[ResNet, dict[str, np.ndarray]]:
    """The network saved in ``path`` and its parameters; with ``keep`` only the names it
    accepts (e.g. ``propagator.layout.owns``)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise OSError(f"cannot read a layerbraid network from {os.fspath(path)!r}: {e}") from e
    with data:
        if _CONFIG not in data:
            raise ValueError(f"{os.fspath(path)!r} is not a layerbraid network file (no "
                             f"{_CONFIG} entry)")
        net = ResNet.from_config(json.loads(str(data[_CONFIG])))
        shapes = net.parameter_shapes()
        params = {}
        for name, shape in shapes.items():
            if keep is not None and not keep(name):
                continue
            if name not in data:
                raise ValueError(f"{os.fspath(path)!r} lacks parameter {name!r}")
            value = data[name]
            if value.shape != shape:
                raise ValueError(f"{os.fspath(path)!r}: {name} has shape {value.shape}, the "
                                 f"network needs {shape}")
            params[name] = np.ascontiguousarray(value, dtype=net.np_dtype)
    return net, params
