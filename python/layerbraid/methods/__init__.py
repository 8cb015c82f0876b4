"""Parallel-in-time training methods beside layer-parallel MGRIT training (``layerbraid.train``):

- :mod:`~layerbraid.methods.predict_correct`: predict globally, correct locally (Parpas &
  Muir), also ``TrainConfig(method="predict-correct")``;
- :mod:`~layerbraid.methods.iterations`: MGRIT over the training iterations (Schroder);
- :mod:`~layerbraid.methods.nested`: nested (multilevel) initialisation from shallower networks.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["MGRITOverIterations", "PredictCorrect", "ResNetProblem", "interpolate_params",
           "train_nested"]

_HOMES = {"MGRITOverIterations": "iterations", "ResNetProblem": "iterations",
          "PredictCorrect": "predict_correct", "interpolate_params": "nested",
          "train_nested": "nested"}


def __getattr__(name: str) -> Any:
    # Imported on first use: the trainer uses predict_correct, and nested uses the trainer, so
    # importing everything here would make train and methods import each other.
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
