"""Loaders for data on disk: .npz files and MNIST-format idx files (from a local path)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ..storage import NpzReader
from .dataset import Dataset, from_arrays

__all__ = ["load_npz", "load_idx", "load_mnist_idx"]

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_npz(path: str | os.PathLike[str], *, validation_fraction: float = 0.1,
             seed: int = 0) -> Dataset:
    """A dataset from an .npz file with arrays ``x`` and ``y`` (and optionally ``x_val``,
    ``y_val``); without validation arrays a seeded fraction is held out.

    The file is read without pickle: a file that is not a zip, is truncated or corrupt, holds
    object arrays or ``.npy`` headers that claim more data than the member holds raises
    :class:`~layerbraid.storage.StorageError` (an ``OSError`` and ``ValueError``) naming it."""
    with NpzReader(path, what=".npz dataset") as reader:
        missing = {"x", "y"} - reader.names
        if missing:
            raise ValueError(f"{os.fspath(path)!r} lacks array(s) {sorted(missing)}; it holds "
                             f"{sorted(reader.names)} (needed: x, y; optional: x_val, y_val)")
        arrays = {k: reader.read(k) for k in ("x", "y", "x_val", "y_val") if k in reader.names}
    return from_arrays(arrays.pop("x"), arrays.pop("y"), **arrays,
                       validation_fraction=validation_fraction, seed=seed,
                       name=Path(path).stem)


def load_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """One idx file (as MNIST is distributed; ``.gz`` is read too) as an array."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise OSError(f"cannot read idx file {os.fspath(path)!r}: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{os.fspath(path)!r} is not an idx file (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(f"{os.fspath(path)!r}: header promises {dims} ({expected} bytes), the "
                         f"file holds {len(raw) - offset}")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(dims)


def load_mnist_idx(directory: str | os.PathLike[str], *, limit: int | None = None) -> Dataset:
    """MNIST (or Fashion-MNIST) from the four idx files in ``directory``: train-images-idx3-ubyte,
    train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally
    .gz); images scaled to [0, 1] as ``(n, 1, 28, 28)``; the t10k set is the validation set."""
    folder = Path(directory)

    def find(stem: str) -> Path:
        for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                     stem.replace("-idx", ".idx") + ".gz"):
            if (folder / name).is_file():
                return folder / name
        raise FileNotFoundError(f"{stem}[.gz] not found in {os.fspath(folder)!r}")

    arrays = [load_idx(find(stem)) for stem in
              ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    x, y, x_val, y_val = (a[:limit] if limit else a for a in arrays)
    return from_arrays(x[:, None] / 255.0, y, x_val=x_val[:, None] / 255.0, y_val=y_val,
                       name=folder.name or "mnist")
