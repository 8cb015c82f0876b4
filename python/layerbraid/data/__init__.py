"""Datasets that work offline: Peaks, spirals, 32x32 shapes, scikit-learn's bundled digits,
and loaders for your own data (.npz files, NumPy arrays, MNIST-format idx files).

Every loader returns a :class:`Dataset`: training and validation arrays, the number of classes
and a name. Inputs are float64, ``(n, features)`` or ``(n, channels, height, width)``; labels
are int64 in ``[0, classes)``.
"""

from __future__ import annotations

from .dataset import Dataset, from_arrays
from .files import load_idx, load_mnist_idx, load_npz
from .synthetic import digits, peaks, shapes, spirals

#: The built-in datasets by name (what ``layerbraid train --dataset`` accepts).
BUILTIN = {"peaks": peaks, "spirals": spirals, "digits": digits, "shapes": shapes}

__all__ = ["BUILTIN", "Dataset", "digits", "from_arrays", "load_idx", "load_mnist_idx",
           "load_npz", "peaks", "shapes", "spirals"]
