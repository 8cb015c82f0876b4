"""The classifier: an affine map of the last state to class scores, softmax cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .layers import _positive_int

__all__ = ["Classifier"]

Array = Any
Params = dict[str, Array]


@dataclass(frozen=True)
class Classifier:
    """``scores = flat(u_N) W^T + b``, W of shape (classes, features); the loss is the
    softmax cross-entropy averaged over the batch."""

    features: int
    classes: int

    def __post_init__(self) -> None:
        _positive_int("features", self.features)
        _positive_int("classes", self.classes)
        if self.classes < 2:
            raise ValueError(f"classes={self.classes} must be >= 2")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.classes, self.features), "bias": (self.classes,)}

    def scores(self, xp: Any, u_last: Array, params: Params) -> Array:
        flat = u_last.reshape(u_last.shape[0], -1)
        return flat @ params["weight"].T + params["bias"]

    def loss_and_adjoint(self, xp: Any, u_last: Array, labels: Array, params: Params,
                         grads: Params | None) -> tuple[float, int, Array]:
        """Mean cross-entropy, the number of correct predictions, and lambda_N = dLoss/du_N
        (with the classifier's gradient written to ``grads`` when given)."""
        batch = u_last.shape[0]
        flat = u_last.reshape(batch, -1)
        scores = flat @ params["weight"].T + params["bias"]
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_norm = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        log_prob = shifted - log_norm
        rows = xp.arange(batch)
        loss = -float(log_prob[rows, labels].sum()) / batch
        correct = int((scores.argmax(axis=1) == labels).sum())
        dscores = xp.exp(log_prob)
        dscores[rows, labels] -= 1.0
        dscores /= batch
        if grads is not None:
            xp.matmul(dscores.T, flat, out=grads["weight"])
            xp.sum(dscores, axis=0, out=grads["bias"])
        lam_last = (dscores @ params["weight"]).reshape(u_last.shape)
        return loss, correct, lam_last

    def config(self) -> dict[str, Any]:
        return {"features": self.features, "classes": self.classes}
