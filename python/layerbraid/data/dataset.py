"""The :class:`Dataset` container and its checks.

Labels are integers 0, 1, ..., classes - 1, and the network gets one output per class, so a
stray huge label would build a huge classifier: at most :data:`MAX_CLASSES` classes are
accepted, and more classes than examples only up to :data:`FEW_CLASSES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "from_arrays", "MAX_CLASSES", "FEW_CLASSES"]

#: The most classes (largest label + 1) a dataset may have.
MAX_CLASSES = 100_000
#: Up to this many classes a dataset may have more classes than examples (tiny test sets);
#: beyond it, more classes than examples means a stray label.
FEW_CLASSES = 1000


@dataclass(frozen=True)
class Dataset:
    """Training and validation data of a classification problem."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example: ``(features,)`` or ``(channels, height, width)``."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: {len(self.y_train)} training and {len(self.y_val)} "
                f"validation examples of shape {self.input_shape}, {self.classes} classes)")


def from_arrays(x: np.ndarray, y: np.ndarray, *, x_val: np.ndarray | None = None,
                y_val: np.ndarray | None = None, validation_fraction: float = 0.1,
                seed: int = 0, name: str = "arrays") -> Dataset:
    """A dataset from arrays; without explicit validation arrays, a seeded random
    ``validation_fraction`` of (x, y) is held out."""
    x, y = _check_pair(x, y, "x", "y")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is None:
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction={validation_fraction!r} must lie in (0, 1)")
        order = np.random.default_rng(seed).permutation(len(y))
        n_val = max(1, int(round(validation_fraction * len(y))))
        if n_val >= len(y):
            raise ValueError(f"{len(y)} examples are too few to hold out a validation set")
        val, train = order[:n_val], order[n_val:]
        x, y, x_val, y_val = x[train], y[train], x[val], y[val]
    else:
        x_val, y_val = _check_pair(x_val, y_val, "x_val", "y_val")
        if x_val.shape[1:] != x.shape[1:]:
            raise ValueError(f"x_val's examples have shape {x_val.shape[1:]}, x's {x.shape[1:]}")
    classes = int(max(y.max(), y_val.max())) + 1
    examples = len(y) + len(y_val)
    if classes > max(examples, FEW_CLASSES):
        labels = np.concatenate([y, y_val])
        raise ValueError(f"the largest label, {classes - 1}, is on "
                         f"{int(np.count_nonzero(labels == classes - 1))} of {examples} "
                         f"examples: that makes {classes} classes for {examples} examples "
                         f"(more classes than examples are accepted up to {FEW_CLASSES}); "
                         "labels are 0, 1, ..., classes - 1")
    return Dataset(name, x, y, x_val, y_val, classes)


def _check_pair(x: np.ndarray, y: np.ndarray, xname: str,
                yname: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim not in (2, 4):
        raise ValueError(f"{xname} has shape {x.shape}; use (n, features) or "
                         "(n, channels, height, width)")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{yname} has shape {y.shape}; it needs one label per example of "
                         f"{xname}, shape ({x.shape[0]},)")
    if x.shape[0] == 0:
        raise ValueError(f"{xname} holds no examples")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{xname} must hold real numbers, got {x.dtype} values")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{yname} must hold integer class labels, got {y.dtype} values")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError(f"{yname} must hold integer class labels, got {y.dtype} values")
    if y.min() < 0:
        raise ValueError(f"{yname} holds negative label {int(y.min())}; labels are 0, 1, ...")
    if y.max() >= MAX_CLASSES:
        top = y.max()
        raise ValueError(f"{yname} holds label {int(top)} on {int(np.count_nonzero(y == top))} "
                         f"of {len(y)} examples; at most {MAX_CLASSES} classes are supported "
                         f"(labels 0 to {MAX_CLASSES - 1})")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{xname} holds NaN or infinite values")
    return np.ascontiguousarray(x, dtype=np.float64), y.astype(np.int64)
