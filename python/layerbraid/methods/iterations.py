"""MGRIT over training iterations (Schroder 2017, "Parallelizing over artificial neural network
training runs with multigrid").

A run of N gradient-descent (or SGD) steps

    w_{i+1} = Phi_i(w_i) = w_i - lr * grad L_{B_i}(w_i),   i = 0 .. N-1,  w_0 given,

is a time-stepping problem whose "time" is the step index. The MGRIT engine solves all N steps
at once, distributed over the ranks of a communicator; its exact solution is the serial
training trajectory, which it reaches to the solver tolerance (and exactly, up to round-off,
after finitely many iterations). The time grid is [0, N] with N intervals, so point i holds
w_i. A step on level l spans ``span = cfactor**l`` training steps; the coarse step is the
rediscretised training step with a larger learning rate,

    w <- w - lr_c * grad L_{B_i}(w),   lr_c = lr * min(span, cap),

on the batch of its first fine step i. Batches and any randomness are keyed by step index, so
every step means the same thing on every rank and in every iteration.

By the linear theory (gradient descent on a quadratic with Hessian eigenvalue a propagates
errors by 1 - lr a), a coarse step is unstable when ``lr_c * lambda_max >= 2``; the driver
checks this before solving, with lambda_max estimated at w_0 (:func:`estimate_lambda_max`).

Parallel speed is reported as a cost model (:class:`CostModel`): the critical path of the
solve with one processor per time interval, in step evaluations, against the N of the serial
loop. It is an ideal count that ignores communication; on a few ranks MGRIT over iterations
does several times the serial work and is slower than the plain loop.

    problem = XorNetwork()
    run = MGRITOverIterations(problem, problem.initial_weights(), steps=1024, lr=0.5)
    result = run.solve()
    print(result.iterations, result.cost.ideal_speedup)
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
from mpi4py import MPI

from ..app import App
from ..braid import Solver, check_options
from ..data import Dataset
from ..nn.network import ResNet
from ..propagate import Propagator

__all__ = ["TrainingProblem", "Quadratic", "XorNetwork", "ResNetProblem", "IterationApp",
           "MGRITOverIterations", "IterationResult", "CostModel", "serial_trajectory",
           "level_spans", "critical_path", "estimate_lambda_max", "two_level_bound",
           "AUTO_CAP_SAFETY"]

#: ``coarse_lr_cap="auto"`` keeps ``cap * lr * lambda_max`` at this fraction of the stability
#: limit 2: lambda_max is estimated at w_0 only (and power iteration approaches it from below).
AUTO_CAP_SAFETY = 0.9


@runtime_checkable
class TrainingProblem(Protocol):
    """A training objective whose batch depends only on the step index.

    Attributes:
        size: the number of weights (the length of the flat weight vector).
    """

    size: int

    def gradient(self, w: np.ndarray, step: int) -> np.ndarray:
        """The gradient at flat weights w of the loss on step ``step``'s batch (a new array)."""
        ...

    def loss(self, w: np.ndarray, step: int) -> float:
        """The loss at flat weights w on step ``step``'s batch."""
        ...


# ---- built-in problems ----

class Quadratic:
    """L(w) = 1/2 w^T A w - b^T w with symmetric A (the same on every step): gradient descent
    on it is linear, so the two-level convergence theory (:func:`two_level_bound`) applies."""

    def __init__(self, A: np.ndarray, b: np.ndarray) -> None:
        A = np.asarray(A, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] < 1:
            raise ValueError(f"A has shape {A.shape}; it must be a square (d, d) matrix")
        if not np.allclose(A, A.T, rtol=1e-12, atol=1e-14 * np.abs(A).max()):
            raise ValueError("A must be symmetric (it is the Hessian of the loss)")
        if b.shape != (A.shape[0],):
            raise ValueError(f"b has shape {b.shape}; it must be ({A.shape[0]},), like A's rows")
        self.A, self.b = A, b
        self.size = A.shape[0]
        self.eigenvalues = np.linalg.eigvalsh(A)

    @classmethod
    def with_spectrum(cls, eigenvalues: Sequence[float], seed: int = 0) -> "Quadratic":
        """A = Q diag(eigenvalues) Q^T with a seeded random orthogonal Q, b seeded random."""
        a = np.asarray(eigenvalues, dtype=np.float64)
        rng = np.random.default_rng([seed, 0])
        q, _ = np.linalg.qr(rng.standard_normal((a.size, a.size)))
        A = (q * a) @ q.T
        return cls(0.5 * (A + A.T), rng.standard_normal(a.size))

    @property
    def lambda_max(self) -> float:
        """The largest eigenvalue of A, exactly."""
        return float(self.eigenvalues[-1])

    def gradient(self, w: np.ndarray, step: int) -> np.ndarray:
        return self.A @ w - self.b

    def loss(self, w: np.ndarray, step: int) -> float:
        return float(0.5 * w @ (self.A @ w) - self.b @ w)


class XorNetwork:
    """The classic 3-4-1 sigmoid network without biases on the four XOR-type samples (the
    third input is a constant 1), squared loss 1/2 sum (y_hat - y)^2, full batch.

    The 16 weights are W1 (3 x 4, row-major) followed by W2 (4 x 1).
    """

    X = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])
    size = 16

    def initial_weights(self, seed: int = 0) -> np.ndarray:
        """Seeded weights, uniform in [-1, 1]."""
        return np.random.default_rng([seed, 0]).uniform(-1.0, 1.0, self.size)

    def _forward(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        w1, w2 = w[:12].reshape(3, 4), w[12:].reshape(4, 1)
        h = 1.0 / (1.0 + np.exp(-(self.X @ w1)))
        y_hat = 1.0 / (1.0 + np.exp(-(h @ w2)))
        return w1, w2, h, y_hat

    def gradient(self, w: np.ndarray, step: int) -> np.ndarray:
        _, w2, h, y_hat = self._forward(w)
        d_out = (y_hat - self.Y) * y_hat * (1.0 - y_hat)
        d_hidden = (d_out @ w2.T) * h * (1.0 - h)
        return np.concatenate([(self.X.T @ d_hidden).ravel(), (h.T @ d_out).ravel()])

    def loss(self, w: np.ndarray, step: int) -> float:
        y_hat = self._forward(w)[3]
        return float(0.5 * np.sum((y_hat - self.Y) ** 2))


class ResNetProblem:
    """The ResNet-ODE classifier's objective (data loss plus regularisation) on mini-batches.

    Each rank evaluates whole-network gradients for the training steps it owns, so the network
    is propagated layer-serially on ``MPI.COMM_SELF``. The flat weight vector holds the
    parameters in ``net.parameter_shapes()`` order. Step i's batch is ``batch_size`` examples
    drawn without replacement by ``np.random.default_rng([seed, i])``; ``batch_size=None``
    uses the whole training set on every step.
    """

    def __init__(self, net: ResNet, dataset: Dataset, batch_size: int | None = None,
                 seed: int = 0) -> None:
        n = len(dataset.y_train)
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, Integral)
                                       or not 1 <= batch_size <= n):
            raise ValueError(f"batch_size={batch_size!r} must be None (full batch) or an int in "
                             f"[1, {n}] (the training examples)")
        if dataset.input_shape != net.opening.input_shape():
            raise ValueError(f"the dataset's examples have shape {dataset.input_shape}; the "
                             f"network takes {net.opening.input_shape()}")
        if dataset.classes > net.classifier.classes:
            raise ValueError(f"the dataset has {dataset.classes} classes; the network "
                             f"classifies {net.classifier.classes}")
        self.net, self.dataset = net, dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.seed = int(seed)
        self.propagator = Propagator(net, MPI.COMM_SELF)  # default options: exact, serial
        self.shapes = net.parameter_shapes()
        self._offsets = np.cumsum([0] + [math.prod(s) for s in self.shapes.values()])
        self.size = int(self._offsets[-1])

    def initial_weights(self, seed: int = 0) -> np.ndarray:
        """``net.init_params(seed)`` as a flat vector."""
        return self.flatten(self.propagator.init_params(seed))

    def flatten(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """The flat weight vector of a parameter dict."""
        return np.concatenate([np.asarray(params[k]).ravel() for k in self.shapes])

    def params(self, w: np.ndarray) -> dict[str, np.ndarray]:
        """The parameter dict of a flat weight vector (views into w)."""
        return {k: w[lo:hi].reshape(s) for (k, s), lo, hi
                in zip(self.shapes.items(), self._offsets[:-1], self._offsets[1:])}

    def batch(self, step: int) -> np.ndarray | slice:
        """The training examples of step ``step``: indices, or every example."""
        if self.batch_size is None:
            return slice(None)
        rng = np.random.default_rng([self.seed, step])
        return rng.choice(len(self.dataset.y_train), self.batch_size, replace=False)

    def _data(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = self.batch(step)
        return self.dataset.x_train[chosen], self.dataset.y_train[chosen]

    def gradient(self, w: np.ndarray, step: int) -> np.ndarray:
        evaluation = self.propagator.loss_and_gradient(self.params(w), *self._data(step))
        assert evaluation.gradient is not None
        return self.flatten(evaluation.gradient)

    def loss(self, w: np.ndarray, step: int) -> float:
        return self.propagator.loss(self.params(w), *self._data(step)).loss


# ---- the serial reference ----

def serial_trajectory(problem: TrainingProblem, w0: np.ndarray, steps: int,
                      lr: float) -> list[np.ndarray]:
    """w_0 .. w_N of the plain training loop (the exact solution MGRIT approaches)."""
    w = np.array(w0, copy=True)
    out = [w.copy()]
    for i in range(steps):
        w -= lr * problem.gradient(w, i)
        out.append(w.copy())
    return out


# ---- the engine app ----

class IterationApp(App):
    """The training run as an engine app: the state is the flat weight vector, a step from
    point i over ``span`` intervals is one (coarse) training step on step i's batch.

    After a solve, ``trajectory`` holds w_i for the points this rank owns and ``work`` the step
    evaluations this rank made on each level.
    """

    def __init__(self, problem: TrainingProblem, w0: np.ndarray, lr: float,
                 coarse_lr_cap: float | None = None) -> None:
        super().__init__()
        self.problem, self.w0, self.lr, self.cap = problem, w0, lr, coarse_lr_cap
        self.work: Counter[int] = Counter()
        self.trajectory: dict[int, np.ndarray] = {}

    def step_lr(self, span: int) -> float:
        """The learning rate of a step over ``span`` training steps."""
        return self.lr * (span if self.cap is None else min(span, self.cap))

    def init(self, t: float) -> np.ndarray:
        # w_0 is the initial condition and, lacking anything better, every point's first guess
        return self.w0.copy()

    def step(self, u: np.ndarray, ustop: np.ndarray, status: Any) -> None:
        # times are step counts; round() removes the engine's (t / N) * N round-off
        first = int(round(status.tstart))
        span = int(round(status.tstop - status.tstart))
        u -= self.step_lr(span) * self.problem.gradient(u, first)
        self.work[status.level] += 1

    def access(self, u: np.ndarray, status: Any) -> None:
        if status.done:
            self.trajectory[status.tindex] = u.copy()


# ---- level structure, cost model, linear theory ----

def level_spans(steps: int, cfactor: int, max_levels: int, min_coarse: int) -> list[int]:
    """Training steps per step on each level of the engine's hierarchy: level l spans
    cfactor**l (the engine coarsens while the coarse grid keeps min_coarse intervals)."""
    spans, intervals = [1], steps
    while len(spans) < max_levels and intervals // cfactor >= min_coarse:
        intervals //= cfactor
        spans.append(spans[-1] * cfactor)
    return spans


@dataclass(frozen=True)
class CostModel:
    """The ideal parallel cost of an MGRIT solve, in step evaluations along the critical path
    with one processor per time interval on every level and free communication.

    It counts the sweeps this engine makes. Per V-cycle (``cycle``), on every level but the
    coarsest: ``nrelax`` FC-sweeps and the F-sweep of the restriction (each m steps: m - 1
    F-points and the C-point), and one coarse step for the FAS right-hand side; on every
    intermediate level (neither finest nor coarsest) the m - 1 steps that refresh its F-points
    after its correction; and the sequential solve over the coarsest level's intervals. Two
    levels with FCF: 2m + 1 + N/m. (The count 3m - 1 + N/m of an XBraid-style cycle has a
    separate F-sweep after the fine correction; this engine leaves that to the next cycle's
    relaxation.) The first cycle with the engine's ``skip`` only runs the coarse solve and the
    refreshes (``first_cycle``); the F-sweep that hands out the fine F-points after the last
    cycle costs m - 1 (``final``). The serial loop's critical path is N.

    Attributes:
        steps: N, the training steps (the serial critical path).
        cfactor: m.
        nrelax: 0 (F-relaxation) or more FC-sweeps (1 = FCF).
        intervals: the intervals of each level (N, N // m, ...).
        iterations: the engine's iterations, the skipped first cycle included.
        cycle, first_cycle, final: critical paths as above.
    """

    steps: int
    cfactor: int
    nrelax: int
    intervals: tuple[int, ...]
    iterations: int
    cycle: int
    first_cycle: int
    final: int

    @property
    def total(self) -> int:
        """Critical path of the whole solve."""
        if len(self.intervals) == 1:
            return self.steps  # one level: the engine steps sequentially
        return self.first_cycle + (self.iterations - 1) * self.cycle + self.final

    @property
    def ideal_speedup(self) -> float:
        """N over the solve's critical path: the most that unlimited processors could gain."""
        return self.steps / self.total


def critical_path(steps: int, cfactor: int, nlevels: int, nrelax: int, iterations: int,
                  skip: bool = True) -> CostModel:
    """The :class:`CostModel` of an engine solve with these settings and iteration count."""
    m = cfactor
    intervals = [steps]
    for _ in range(nlevels - 1):
        intervals.append(intervals[-1] // m)
    coarsest = intervals[-1]
    refreshes = (m - 1) * max(nlevels - 2, 0)  # F-points of levels 1 .. L-2 after correction
    cycle = (nlevels - 1) * ((nrelax + 1) * m + 1) + refreshes + coarsest
    first = coarsest + refreshes if skip and nlevels > 1 else cycle
    return CostModel(steps=steps, cfactor=m, nrelax=nrelax, intervals=tuple(intervals),
                     iterations=iterations, cycle=cycle, first_cycle=first,
                     final=m - 1 if nlevels > 1 else 0)


def two_level_bound(eigenvalues: Sequence[float] | np.ndarray, lr: float, cfactor: int,
                    nrelax: int, coarse_lr: float | None = None) -> float:
    """The two-level MGRIT convergence bound for gradient descent on a quadratic with these
    Hessian eigenvalues a (Dobrev et al. 2017), with lambda = 1 - lr a (fine step) and
    mu = 1 - coarse_lr a (coarse step, default coarse_lr = cfactor * lr):

        F:   max_a |lambda^m - mu| / (1 - |mu|)
        FCF: max_a |lambda|^m |lambda^m - mu| / (1 - |mu|)

    Infinite when some |mu| >= 1 (an unstable coarse step); above 1 the iteration diverges
    until finite termination."""
    if nrelax not in (0, 1):
        raise ValueError(f"nrelax={nrelax!r}: the bound is for 0 (F-relaxation) or 1 (FCF)")
    a = np.asarray(eigenvalues, dtype=np.float64)
    lam = 1.0 - lr * a
    mu = 1.0 - (cfactor * lr if coarse_lr is None else coarse_lr) * a
    if np.any(np.abs(mu) >= 1.0):
        return math.inf
    rate = np.abs(lam ** cfactor - mu) / (1.0 - np.abs(mu))
    if nrelax == 1:
        rate *= np.abs(lam) ** cfactor
    return float(rate.max())


def estimate_lambda_max(problem: TrainingProblem, w: np.ndarray, *, step: int = 0,
                        iterations: int = 100, rtol: float = 1e-4, seed: int = 0) -> float:
    """The largest (most positive) Hessian eigenvalue of step ``step``'s loss at w.

    Exact for :class:`Quadratic`. Otherwise power iteration with central-difference
    Hessian-vector products (grad L(w + h v) - grad L(w - h v)) / 2h, two gradients each; when
    the dominant eigenvalue is negative, a second power iteration on the shifted Hessian finds
    the top of the spectrum. The Rayleigh quotient approaches the eigenvalue from below.
    """
    if isinstance(problem, Quadratic):
        return problem.lambda_max
    w = np.asarray(w, dtype=np.float64)
    h = 1e-5 * max(1.0, float(np.linalg.norm(w)))  # about eps^(1/3): truncation vs round-off

    def hess_vec(v: np.ndarray) -> np.ndarray:
        return (problem.gradient(w + h * v, step) - problem.gradient(w - h * v, step)) / (2 * h)

    def power(shift: float) -> float:
        v = np.random.default_rng([seed, 1]).standard_normal(w.size)
        v /= np.linalg.norm(v)
        estimate = math.nan
        for _ in range(iterations):
            hv = hess_vec(v) - shift * v
            previous, estimate = estimate, float(v @ hv)
            size = float(np.linalg.norm(hv))
            if size == 0.0 or abs(estimate - previous) <= rtol * abs(estimate):
                break
            v = hv / size
        return estimate

    dominant = power(0.0)
    # a negative dominant eigenvalue: H - dominant I is positive semidefinite, its top is
    # lambda_max - dominant
    return dominant if dominant >= 0.0 else power(dominant) + dominant


# ---- the driver ----

@dataclass(frozen=True)
class IterationResult:
    """What :meth:`MGRITOverIterations.solve` found.

    Attributes:
        final_weights: w_N (the same on every rank).
        trajectory: w_i for the points i this rank owns.
        iterations: MGRIT iterations (cycles), the skipped first one included.
        residual_history: the engine's residual norm per iteration (None where not computed).
        converged: whether the last residual met ``abs_tol``.
        nlevels: levels of the hierarchy.
        coarse_lrs: the learning rate of a step on each level (level 0: lr).
        work: step evaluations on each level, summed over the ranks.
        cost: the ideal parallel cost (:class:`CostModel`).
        wall_time: seconds of the solve on this rank.
    """

    final_weights: np.ndarray
    trajectory: dict[int, np.ndarray]
    iterations: int
    residual_history: tuple[float | None, ...]
    converged: bool
    nlevels: int
    coarse_lrs: tuple[float, ...]
    work: tuple[int, ...]
    cost: CostModel
    wall_time: float

    @property
    def total_work(self) -> int:
        """Step evaluations of the whole solve (the serial loop makes N)."""
        return sum(self.work)


def _int_at_least(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < lo:
        raise ValueError(f"{name}={value!r} must be an int >= {lo}")
    return int(value)


class MGRITOverIterations:
    """Solve a training run of ``steps`` gradient steps with MGRIT over the step index,
    distributed over the ranks of ``comm``.

    Args:
        problem: the objective (:class:`TrainingProblem`).
        w0: the initial weights, a 1-D array of ``problem.size`` entries.
        steps: N, the number of training steps.
        lr: the learning rate of a training step.
        comm: the ranks that share the steps (default COMM_WORLD).
        cfactor, max_levels, min_coarse, nrelax, abs_tol, max_iter, print_level: engine
            options (see :data:`layerbraid.braid.OPTIONS`); ``nrelax`` 0 is F-, 1 FCF-relaxation.
        coarse_lr_cap: None (a step over span s uses s * lr), a number K >= 1 (it uses
            min(s, K) * lr), or "auto": the largest K with K * lr * lambda_max below
            ``AUTO_CAP_SAFETY`` * 2 (no cap if none is needed).
        on_unstable: "raise" (ValueError) or "warn" when a coarse level's step is unstable by
            the linear theory, ``coarse_lr * lambda_max >= 2``.
        lambda_max: the largest Hessian eigenvalue to check stability with; default
            :func:`estimate_lambda_max` at w0 (computed on rank 0).
    """

    def __init__(self, problem: TrainingProblem, w0: np.ndarray, steps: int, lr: float,
                 comm: MPI.Comm | None = None, *, cfactor: int = 4, max_levels: int = 2,
                 min_coarse: int = 2, nrelax: int = 1, abs_tol: float = 1e-10,
                 max_iter: int = 100, coarse_lr_cap: float | str | None = None,
                 on_unstable: str = "raise", lambda_max: float | None = None,
                 print_level: int = 0) -> None:
        if not isinstance(problem, TrainingProblem):
            raise TypeError(f"problem of type {type(problem).__name__} needs a size attribute "
                            "and gradient(w, step) and loss(w, step) methods")
        self.problem = problem
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.steps = _int_at_least("steps", steps, 1)
        if self.comm.Get_size() > self.steps + 1:
            raise ValueError(f"{self.comm.Get_size()} ranks cannot share {self.steps} steps "
                             f"({self.steps + 1} points); use at most {self.steps + 1} ranks")
        if isinstance(lr, bool) or not isinstance(lr, Real) or not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr={lr!r} must be a finite float > 0")
        self.lr = float(lr)
        w0 = np.asarray(w0)
        if w0.shape != (problem.size,) or w0.dtype.kind != "f":
            raise ValueError(f"w0 has shape {w0.shape} and dtype {w0.dtype}; it must be a 1-D "
                             f"float array of problem.size = {problem.size} weights")
        if not np.all(np.isfinite(w0)):
            raise ValueError("w0 holds NaN or infinite values")
        self.w0 = w0.copy()
        self.cfactor = _int_at_least("cfactor", cfactor, 2)
        self.nrelax = _int_at_least("nrelax", nrelax, 0)
        self.options = {"max_levels": _int_at_least("max_levels", max_levels, 1),
                        "min_coarse": _int_at_least("min_coarse", min_coarse, 1),
                        "cfactor": self.cfactor, "nrelax": self.nrelax, "abs_tol": abs_tol,
                        "max_iter": max_iter, "print_level": print_level}
        check_options(self.options)  # a bad engine option fails here, not in solve()
        if on_unstable not in ("raise", "warn"):
            raise ValueError(f"on_unstable={on_unstable!r} is not supported; use 'raise' or "
                             "'warn'")
        self.spans = level_spans(self.steps, self.cfactor, max_levels, min_coarse)
        if lambda_max is None:
            # one estimate for all ranks, so that every rank takes the same decisions
            if self.comm.Get_rank() == 0:
                lambda_max = estimate_lambda_max(problem, self.w0)
            lambda_max = self.comm.bcast(lambda_max, root=0)
        elif isinstance(lambda_max, bool) or not isinstance(lambda_max, Real) \
                or not math.isfinite(lambda_max):
            raise ValueError(f"lambda_max={lambda_max!r} must be a finite float (or None to "
                             "estimate it)")
        self.lambda_max = float(lambda_max)
        self.coarse_lr_cap = self._resolve_cap(coarse_lr_cap)
        self._check_stability(on_unstable)

    @property
    def coarse_lrs(self) -> tuple[float, ...]:
        """The learning rate of a step on each level."""
        return tuple(self.lr * (s if self.coarse_lr_cap is None else min(s, self.coarse_lr_cap))
                     for s in self.spans)

    def _resolve_cap(self, cap: Any) -> float | None:
        if cap is None:
            return None
        if cap == "auto":
            if self.lambda_max <= 0.0:
                return None  # no positive curvature: no step size is unstable
            largest = AUTO_CAP_SAFETY * 2.0 / (self.lr * self.lambda_max)
            # below 1 the training step itself is (nearly) unstable: the guard says so
            return None if largest >= self.spans[-1] else max(1.0, largest)
        if isinstance(cap, bool) or not isinstance(cap, Real) or not (math.isfinite(cap)
                                                                      and cap >= 1):
            raise ValueError(f"coarse_lr_cap={cap!r} is not supported; use None, a number >= 1 "
                             "(the coarse learning rate is at most that many times lr) or "
                             "'auto'")
        return float(cap)

    def _check_stability(self, on_unstable: str) -> None:
        lam = self.lambda_max
        bad = [(level, rate) for level, rate in enumerate(self.coarse_lrs)
               if level > 0 and rate * lam >= 2.0]
        if not bad:
            return
        level, rate = bad[0]
        if self.lr * lam >= 2.0:
            fixes = (f"the training step itself is unstable (lr * lambda_max = "
                     f"{self.lr * lam:.3g} >= 2): lower lr")
        else:
            stable_cap = 2.0 / (self.lr * lam)
            stable_levels = 1 + sum(1 for s in self.spans[1:] if s * self.lr * lam < 2.0)
            fixes = (f"cap the coarse learning rate (coarse_lr_cap=K with K < {stable_cap:.3g}, "
                     f"or coarse_lr_cap='auto'), or use fewer levels (max_levels="
                     f"{stable_levels})")
        text = (f"coarse level {level} (steps over {self.spans[level]} iterations) uses "
                f"learning rate {rate:.4g} and {rate:.4g} * lambda_max {lam:.4g} = "
                f"{rate * lam:.3g} >= 2: gradient descent with that rate is unstable and MGRIT "
                f"will not converge; {fixes}")
        if on_unstable == "raise":
            raise ValueError(text)
        warnings.warn(text, RuntimeWarning, stacklevel=3)

    def serial(self) -> list[np.ndarray]:
        """w_0 .. w_N of the serial training loop, for comparison."""
        return serial_trajectory(self.problem, self.w0, self.steps, self.lr)

    def solve(self) -> IterationResult:
        """Run MGRIT from w_0 everywhere; collective over ``comm``."""
        app = IterationApp(self.problem, self.w0, self.lr, self.coarse_lr_cap)
        with Solver(app, 0.0, float(self.steps), self.steps, self.comm,
                    **self.options) as solver:
            solved = solver.drive()
        nlevels = solved.nlevels
        counts = self.comm.allgather([app.work[level] for level in range(nlevels)])
        work = tuple(int(sum(c[level] for c in counts)) for level in range(nlevels))
        owner = self.comm.allreduce(self.comm.Get_rank() if self.steps in app.trajectory
                                    else -1, op=MPI.MAX)
        final = self.comm.bcast(app.trajectory.get(self.steps), root=owner)
        cost = critical_path(self.steps, self.cfactor, nlevels, self.nrelax, solved.iterations)
        return IterationResult(final_weights=final, trajectory=app.trajectory,
                               iterations=solved.iterations,
                               residual_history=solved.residual_history,
                               converged=solved.converged, nlevels=nlevels,
                               coarse_lrs=self.coarse_lrs[:nlevels], work=work, cost=cost,
                               wall_time=solved.wall_time)
