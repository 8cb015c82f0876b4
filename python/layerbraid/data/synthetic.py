"""Generated datasets (Peaks, spirals) and scikit-learn's bundled digits."""

from __future__ import annotations

import numpy as np

from .dataset import Dataset

__all__ = ["peaks", "spirals", "digits", "peaks_function", "PEAKS_LEVELS"]


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
