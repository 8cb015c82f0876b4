"""Parallel-in-time training methods beside layer-parallel MGRIT training (``layerbraid.train``):

- :mod:`~layerbraid.methods.predict_correct`: predict globally, correct locally (Parpas &
  Muir), also ``TrainConfig(method="predict-correct")``;
- :mod:`~layerbraid.methods.iterations`: MGRIT over the training iterations (Schroder);
- :mod:`~layerbraid.methods.nested`: nested (multilevel) initialisation from shallower networks.
"""

from __future__ import annotations

from .iterations import MGRITOverIterations, ResNetProblem
from .nested import interpolate_params, train_nested
from .predict_correct import PredictCorrect

__all__ = ["MGRITOverIterations", "PredictCorrect", "ResNetProblem", "interpolate_params",
           "train_nested"]
