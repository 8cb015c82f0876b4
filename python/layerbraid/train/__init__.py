"""Training: trainers (layer-serial, layer-parallel, one-shot), optimisers, schedules,
checkpoints, metrics and plots."""

from __future__ import annotations

from .metrics import EpochRecord, plot_run, read_log
from .optimizers import LBFGS, OPTIMIZERS, SGD, Adam, make_optimizer
from .trainer import METHODS, TrainConfig, Trainer

__all__ = ["Adam", "EpochRecord", "LBFGS", "METHODS", "OPTIMIZERS", "SGD", "TrainConfig",
           "Trainer", "make_optimizer", "plot_run", "read_log"]
