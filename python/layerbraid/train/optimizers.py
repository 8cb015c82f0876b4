"""Optimisers over distributed parameter sets: SGD with momentum, Adam, and L-BFGS with
Armijo backtracking (the layer-parallel training paper's choice).

An optimiser updates the parameters in place from a gradient: ``optimizer.step(params,
gradient, loss, evaluate)``; ``evaluate(params) -> loss`` is needed only by L-BFGS's line search.
Each rank passes the parameters it holds; optimisers that need global quantities (L-BFGS's
inner products) reduce them over ``comm`` so that the same step is taken on any number of
ranks. ``state_dict()``/``load_state_dict()`` hold everything a checkpoint needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from mpi4py import MPI

from . import vectors
from .schedules import Schedule, constant

__all__ = ["Optimizer", "SGD", "Adam", "LBFGS", "StepInfo", "make_optimizer", "OPTIMIZERS"]

Params = dict[str, Any]
Evaluate = Callable[[Params], float]


@dataclass(frozen=True)
class StepInfo:
    """What one optimisation step did: the step length used and the loss evaluations its line
    search made (0 without a line search)."""

    step_size: float
    evaluations: int = 0


class Optimizer:
    """Base class: a learning-rate schedule over step counts and a step counter."""

    needs_evaluate = False

    def __init__(self, lr: float | Schedule, comm: MPI.Comm | None = None) -> None:
        self.schedule = lr if callable(lr) else constant(_positive("lr", lr))
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.steps = 0

    def lr(self) -> float:
        return float(self.schedule(self.steps))

    def step(self, params: Params, gradient: Mapping[str, Any], loss: float,
             evaluate: Evaluate | None = None) -> StepInfo:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.steps = int(state["steps"])


class SGD(Optimizer):
    """Gradient descent with (heavy-ball) momentum: v <- mu v + g, theta <- theta - lr v."""

    def __init__(self, lr: float | Schedule = 0.1, momentum: float = 0.0,
                 comm: MPI.Comm | None = None) -> None:
        super().__init__(lr, comm)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum={momentum!r} must lie in [0, 1)")
        self.momentum = momentum
        self.velocity: Params | None = None

    def step(self, params: Params, gradient: Mapping[str, Any], loss: float,
             evaluate: Evaluate | None = None) -> StepInfo:
        lr = self.lr()
        if self.momentum:
            if self.velocity is None:
                self.velocity = vectors.zeros_like(gradient)
            for k, g in gradient.items():
                self.velocity[k] *= self.momentum
                self.velocity[k] += g
            vectors.axpy(-lr, self.velocity, params)
        else:
            vectors.axpy(-lr, gradient, params)
        self.steps += 1
        return StepInfo(lr)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "velocity": self.velocity}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.velocity = None if state["velocity"] is None else vectors.copy(state["velocity"])


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction."""

    def __init__(self, lr: float | Schedule = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, comm: MPI.Comm | None = None) -> None:
        super().__init__(lr, comm)
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas={betas!r} must lie in [0, 1)")
        self.betas, self.eps = betas, _positive("eps", eps)
        self.m: Params | None = None
        self.v: Params | None = None

    def step(self, params: Params, gradient: Mapping[str, Any], loss: float,
             evaluate: Evaluate | None = None) -> StepInfo:
        b1, b2 = self.betas
        if self.m is None or self.v is None:
            self.m, self.v = vectors.zeros_like(gradient), vectors.zeros_like(gradient)
        self.steps += 1
        lr = float(self.schedule(self.steps - 1))
        c1, c2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        for k, g in gradient.items():
            self.m[k] *= b1
            self.m[k] += (1 - b1) * g
            self.v[k] *= b2
            self.v[k] += (1 - b2) * g * g
            params[k] -= lr * (self.m[k] / c1) / ((self.v[k] / c2) ** 0.5 + self.eps)
        return StepInfo(lr)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "m": self.m, "v": self.v}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.m = None if state["m"] is None else vectors.copy(state["m"])
        self.v = None if state["v"] is None else vectors.copy(state["v"])


class LBFGS(Optimizer):
    """Limited-memory BFGS with Armijo backtracking.

    The direction is -H g from the last ``memory`` pairs (s, y) by the two-loop recursion,
    with the initial scaling s^T y / y^T y; pairs with s^T y <= 0 are skipped (they would make
    H indefinite). The step starts at ``lr`` (1 is the natural L-BFGS step) and halves until
    ``L(theta + a d) <= L(theta) + c1 a g^T d``; after ``max_backtracks`` halvings the last
    trial is taken anyway, as in the reference implementation.
    """

    needs_evaluate = True

    def __init__(self, lr: float | Schedule = 1.0, memory: int = 10, c1: float = 1e-4,
                 backtrack: float = 0.5, max_backtracks: int = 20,
                 comm: MPI.Comm | None = None) -> None:
        super().__init__(lr, comm)
        if memory < 1:
            raise ValueError(f"memory={memory} must be >= 1")
        if not 0 < c1 < 1 or not 0 < backtrack < 1:
            raise ValueError(f"c1={c1!r} and backtrack={backtrack!r} must lie in (0, 1)")
        self.memory, self.c1, self.backtrack = memory, c1, backtrack
        self.max_backtracks = max_backtracks
        self.pairs: list[tuple[Params, Params, float]] = []   # (s, y, 1 / y^T s)
        self.previous: tuple[Params, Params] | None = None    # (theta, g) of the last step

    def _direction(self, gradient: Mapping[str, Any]) -> Params:
        comm = self.comm
        q = vectors.copy(gradient)
        alphas = []
        for s, y, rho in reversed(self.pairs):
            a = rho * vectors.dot(s, q, comm)
            vectors.axpy(-a, y, q)
            alphas.append(a)
        if self.pairs:
            s, y, rho = self.pairs[-1]
            vectors.scale(1.0 / (rho * vectors.dot(y, y, comm)), q)
        for (s, y, rho), a in zip(self.pairs, reversed(alphas)):
            b = rho * vectors.dot(y, q, comm)
            vectors.axpy(a - b, s, q)
        vectors.scale(-1.0, q)
        return q

    def step(self, params: Params, gradient: Mapping[str, Any], loss: float,
             evaluate: Evaluate | None = None) -> StepInfo:
        if evaluate is None:
            raise TypeError("LBFGS.step needs evaluate(params) -> loss for its line search")
        comm = self.comm
        if self.previous is not None:
            s = {k: params[k] - v for k, v in self.previous[0].items()}
            y = {k: gradient[k] - v for k, v in self.previous[1].items()}
            sy = vectors.dot(s, y, comm)
            if sy > 1e-12 * vectors.norm(s, comm) * vectors.norm(y, comm):
                self.pairs.append((s, y, 1.0 / sy))
                del self.pairs[:-self.memory]
        direction = self._direction(gradient)
        slope = vectors.dot(gradient, direction, comm)
        if not slope < 0:   # not a descent direction: restart from steepest descent
            self.pairs.clear()
            direction = {k: -g for k, g in gradient.items()}
            slope = -vectors.dot(gradient, gradient, comm)
        self.previous = (vectors.copy(params), vectors.copy(gradient))
        step, evaluations = self.lr(), 0
        start = vectors.copy(params)
        while True:
            for k in params:
                params[k][...] = start[k] + step * direction[k]
            trial = evaluate(params)
            evaluations += 1
            if (math.isfinite(trial) and trial <= loss + self.c1 * step * slope) \
                    or evaluations > self.max_backtracks:
                break
            step *= self.backtrack
        self.steps += 1
        return StepInfo(step, evaluations)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pairs": self.pairs, "previous": self.previous}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.pairs = [(vectors.copy(s), vectors.copy(y), float(r)) for s, y, r in state["pairs"]]
        prev = state["previous"]
        self.previous = None if prev is None else (vectors.copy(prev[0]), vectors.copy(prev[1]))


#: The optimisers by name (what ``layerbraid train --optimizer`` accepts).
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "lbfgs": LBFGS}


def make_optimizer(name: str, lr: float | Schedule | None = None, comm: MPI.Comm | None = None,
                   **kwargs: Any) -> Optimizer:
    """An optimiser by name with its default learning rate unless ``lr`` is given."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer={name!r} is not supported; use one of "
                         f"{', '.join(map(repr, OPTIMIZERS))}")
    if lr is not None:
        kwargs["lr"] = lr
    return OPTIMIZERS[name](comm=comm, **kwargs)


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} must be a finite float > 0")
    return float(value)
