"""Per-epoch metrics: the record, a JSON-lines log, and the plots made from it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

__all__ = ["EpochRecord", "MetricsLog", "read_log", "plot_run"]


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch did. Residuals are the last MGRIT residual norms of the epoch's last
    solves (None for layer-serial runs); iterations are MGRIT cycles summed over the epoch."""

    epoch: int
    loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    gradient_norm: float
    step_size: float
    forward_iterations: int
    adjoint_iterations: int
    forward_residual: float | None
    adjoint_residual: float | None
    loss_evaluations: int
    time: float           # seconds of training in this epoch (validation excluded)
    elapsed: float        # training seconds since the start of the run

    def summary(self) -> str:
        return (f"loss {self.loss:.4f} train {100 * self.train_accuracy:.1f}% "
                f"val {100 * self.val_accuracy:.1f}%")


class MetricsLog:
    """Appends one JSON object per epoch to ``path`` (rank 0 writes; others pass None)."""

    def __init__(self, path: str | os.PathLike[str] | None, append: bool = False) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not append:
                self.path.write_text("")

    def write(self, record: EpochRecord) -> None:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(asdict(record)) + "\n")


def read_log(path: str | os.PathLike[str]) -> list[EpochRecord]:
    with open(path) as f:
        return [EpochRecord(**json.loads(line)) for line in f if line.strip()]


def plot_run(records: Sequence[EpochRecord], directory: str | os.PathLike[str],
             title: str = "") -> list[Path]:
    """Loss/accuracy curves and MGRIT convergence per epoch, as PNG files; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    epochs = [r.epoch for r in records]
    files = []

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.semilogy(epochs, [r.loss for r in records], label="training (batch)")
    ax_loss.semilogy(epochs, [r.val_loss for r in records], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="objective")
    ax_loss.legend()
    ax_acc.plot(epochs, [100 * r.train_accuracy for r in records], label="training")
    ax_acc.plot(epochs, [100 * r.val_accuracy for r in records], label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_acc.legend()
    fig.suptitle(title)
    fig.tight_layout()
    files.append(out / "curves.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    if any(r.forward_iterations for r in records):
        fig, (ax_it, ax_res) = plt.subplots(1, 2, figsize=(10, 4))
        ax_it.plot(epochs, [r.forward_iterations for r in records], label="forward")
        ax_it.plot(epochs, [r.adjoint_iterations for r in records], label="adjoint")
        ax_it.set(xlabel="epoch", ylabel="MGRIT cycles per epoch", title="iterations")
        ax_it.set_ylim(bottom=0)
        ax_it.yaxis.get_major_locator().set_params(integer=True)
        ax_it.legend()
        for name in ("forward", "adjoint"):
            pairs = [(r.epoch, getattr(r, f"{name}_residual")) for r in records
                     if getattr(r, f"{name}_residual") is not None]
            if pairs:
                ax_res.semilogy(*zip(*pairs), label=name)
        ax_res.set(xlabel="epoch", ylabel="last residual norm", title="MGRIT residual")
        ax_res.legend()
        fig.suptitle(title)
        fig.tight_layout()
        files.append(out / "mgrit.png")
        fig.savefig(files[-1], dpi=110)
        plt.close(fig)
    return files
