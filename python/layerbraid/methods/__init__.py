"""Parallel-in-time training methods beside layer-parallel MGRIT training (``layerbraid.train``):
predict-globally/correct-locally, MGRIT over training iterations, nested initialisation."""

from __future__ import annotations
