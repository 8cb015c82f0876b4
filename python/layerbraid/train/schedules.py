"""Learning-rate schedules: functions from the optimiser's step count to a learning rate."""

from __future__ import annotations

import math
from typing import Callable

__all__ = ["Schedule", "constant", "step_decay", "cosine", "make_schedule", "SCHEDULES"]

Schedule = Callable[[int], float]


def constant(lr: float) -> Schedule:
    return lambda step: lr


def step_decay(lr: float, every: int, factor: float = 0.5) -> Schedule:
    """lr times ``factor`` after every ``every`` steps."""
    if every < 1 or not 0 < factor <= 1:
        raise ValueError(f"step_decay needs every >= 1 and factor in (0, 1], got "
                         f"every={every}, factor={factor}")
    return lambda step: lr * factor ** (step // every)


def cosine(lr: float, total: int, final: float = 0.0) -> Schedule:
    """From lr down to ``final`` along half a cosine over ``total`` steps, then ``final``."""
    if total < 1:
        raise ValueError(f"cosine needs total >= 1 steps, got {total}")
    return lambda step: final + (lr - final) * 0.5 * (1 + math.cos(math.pi * min(step, total)
                                                                   / total))


#: Schedules by name, for the CLI.
SCHEDULES = ("constant", "step", "cosine")


def make_schedule(name: str, lr: float, total_steps: int, every: int = 0,
                  factor: float = 0.5) -> Schedule:
    if name == "constant":
        return constant(lr)
    if name == "step":
        return step_decay(lr, every or max(1, total_steps // 3), factor)
    if name == "cosine":
        return cosine(lr, total_steps)
    raise ValueError(f"schedule={name!r} is not supported; use one of {', '.join(SCHEDULES)}")
