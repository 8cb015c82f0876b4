"""The ResNet-ODE model: layers, openings, classifier, activations, regularisers, save/load.

Nothing here knows about ranks or solvers: :mod:`layerbraid.propagate` solves the model.
"""

from __future__ import annotations

from .activations import ACTIVATIONS
from .classifier import Classifier
from .io import load, save
from .layers import Conv, Dense
from .network import WEIGHT_INITS, Regularization, ResNet, layer_key
from .openings import DenseOpening, ExpandZero, Replicate

__all__ = ["ACTIVATIONS", "Classifier", "Conv", "Dense", "DenseOpening", "ExpandZero",
           "Regularization", "Replicate", "ResNet", "WEIGHT_INITS", "layer_key", "load", "save"]
