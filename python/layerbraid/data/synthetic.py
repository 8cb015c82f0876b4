"""Generated datasets (Peaks, spirals, 32x32 shapes) and scikit-learn's bundled digits."""

from __future__ import annotations

import numpy as np

from .dataset import Dataset

__all__ = ["peaks", "spirals", "shapes", "digits", "peaks_function", "PEAKS_LEVELS",
           "SHAPE_CLASSES"]


def peaks_function(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The classic ``peaks`` surface on [-3, 3]^2: two peaks, two valleys, a saddle."""
    return (3 * (1 - x) ** 2 * np.exp(-x ** 2 - (y + 1) ** 2)
            - 10 * (x / 5 - x ** 3 - y ** 5) * np.exp(-x ** 2 - y ** 2)
            - np.exp(-(x + 1) ** 2 - y ** 2) / 3)


#: The level thresholds of the five Peaks classes: deep valleys, valleys, the flat plain (about
#: half the square), slopes, peaks.
PEAKS_LEVELS = (-2.0, -0.5, 0.5, 2.0)


def peaks(n_train: int = 5000, n_val: int = 200, *, seed: int = 0) -> Dataset:
    """Points uniform in [-3, 3]^2 labelled by which of five level bands of the peaks surface
    they fall in (thresholds :data:`PEAKS_LEVELS`), as in the layer-parallel training paper:
    5000 training and 200 validation points by default."""
    rng = np.random.default_rng([seed, 17])
    points = rng.uniform(-3.0, 3.0, size=(n_train + n_val, 2))
    labels = np.searchsorted(PEAKS_LEVELS, peaks_function(*points.T))
    return Dataset("peaks", points[:n_train], labels[:n_train].astype(np.int64),
                   points[n_train:], labels[n_train:].astype(np.int64), len(PEAKS_LEVELS) + 1)


def spirals(n_train: int = 2000, n_val: int = 400, *, arms: int = 2, turns: float = 1.5,
            noise: float = 0.1, seed: int = 0) -> Dataset:
    """Interleaved 2D spirals, one class per arm."""
    if arms < 2:
        raise ValueError(f"arms={arms} must be >= 2")
    rng = np.random.default_rng([seed, 23])
    n = n_train + n_val
    labels = rng.integers(0, arms, n)
    radius = rng.uniform(0.1, 1.0, n)
    angle = 2 * np.pi * (turns * radius + labels / arms)
    points = 3 * radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    points += noise * rng.standard_normal(points.shape)
    return Dataset("spirals", points[:n_train], labels[:n_train].astype(np.int64),
                   points[n_train:], labels[n_train:].astype(np.int64), arms)


#: The classes of :func:`shapes`, in label order.
SHAPE_CLASSES = ("disc", "square", "ring", "cross")
_MAX_SHAPE_IMAGES = 1 << 20     # examples :func:`shapes` makes at most
_MAX_SHAPE_SIZE = 1024          # pixels per side


def shapes(n_train: int = 2000, n_val: int = 400, *, size: int = 32, noise: float = 0.1,
           seed: int = 0) -> Dataset:
    """Grey ``size`` x ``size`` images (32 x 32 by default) of one shape each: a filled disc, a
    filled square, a ring or a cross (labels 0-3, :data:`SHAPE_CLASSES`), at a random centre,
    size and brightness on a random darker background, with Gaussian pixel noise; as
    ``(n, 1, size, size)`` float64 in [0, 1]. A synthetic image set that needs no download,
    where the class is a matter of shape at several scales (what spatial coarsening in the
    layer-parallel solvers must keep)."""
    for name, v, hi in (("n_train", n_train, _MAX_SHAPE_IMAGES),
                        ("n_val", n_val, _MAX_SHAPE_IMAGES), ("size", size, _MAX_SHAPE_SIZE)):
        if not isinstance(v, (int, np.integer)) or not 1 <= v <= hi:
            raise ValueError(f"shapes: {name}={v!r} must be an integer in [1, {hi}]")
    if n_train + n_val > _MAX_SHAPE_IMAGES:
        raise ValueError(f"shapes: n_train + n_val = {n_train + n_val} exceeds "
                         f"{_MAX_SHAPE_IMAGES}")
    if size < 8:
        raise ValueError(f"shapes: size={size} must be >= 8 to draw the shapes")
    if not (np.isfinite(noise) and 0.0 <= noise <= 1.0):
        raise ValueError(f"shapes: noise={noise!r} must lie in [0, 1]")
    rng = np.random.default_rng([seed, 31])
    n = n_train + n_val
    labels = rng.integers(0, len(SHAPE_CLASSES), n)
    radius = rng.uniform(0.18, 0.32, n) * size                      # half the shape's extent
    centre = rng.uniform(0.0, 1.0, (n, 2)) * (size - 2 * radius[:, None]) + radius[:, None]
    fore = rng.uniform(0.6, 1.0, n)
    back = rng.uniform(0.0, 0.3, n)
    grid = np.arange(size) + 0.5
    dy = grid[None, :, None] - centre[:, 0, None, None]
    dx = grid[None, None, :] - centre[:, 1, None, None]
    r = radius[:, None, None]
    dist = np.hypot(dy, dx)
    masks = {
        0: dist <= r,
        1: np.maximum(np.abs(dy), np.abs(dx)) <= 0.8 * r,
        2: (dist <= r) & (dist >= 0.55 * r),
        3: (np.minimum(np.abs(dy), np.abs(dx)) <= 0.25 * r)
           & (np.maximum(np.abs(dy), np.abs(dx)) <= r),
    }
    inside = np.zeros((n, size, size), dtype=bool)
    for label, mask in masks.items():
        inside |= mask & (labels == label)[:, None, None]
    images = np.where(inside, fore[:, None, None], back[:, None, None])
    images = np.clip(images + noise * rng.standard_normal(images.shape), 0.0, 1.0)
    images = images[:, None, :, :]
    return Dataset(f"shapes{size}", images[:n_train], labels[:n_train].astype(np.int64),
                   images[n_train:], labels[n_train:].astype(np.int64), len(SHAPE_CLASSES))


def digits(validation_fraction: float = 0.2, *, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, no download), as
    ``(n, 1, 8, 8)`` images scaled to [0, 1], with a seeded random validation split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("the digits dataset comes with scikit-learn: pip install "
                          "scikit-learn (or pip install \"layerbraid[data]\")") from e
    from .dataset import from_arrays

    bunch = load_digits()
    images = bunch.images[:, None, :, :] / 16.0
    data = from_arrays(images, bunch.target, validation_fraction=validation_fraction,
                       seed=seed, name="digits")
    return data
