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
    """One JSON object per epoch in ``path`` (rank 0 writes; others pass None). The file is
    started anew with ``records``, the epochs already done (a resumed run's history), so a
    run continued from a checkpoint never repeats an epoch in its log."""

    def __init__(self, path: str | os.PathLike[str] | None,
                 records: Sequence[EpochRecord] = ()) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            with tmp.open("w") as f:
                f.writelines(json.dumps(asdict(r)) + "\n" for r in records)
            os.replace(tmp, self.path)

    def write(self, record: EpochRecord) -> None:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(asdict(record)) + "\n")


def read_log(path: str | os.PathLike[str]) -> list[EpochRecord]:
    with open(path) as f:
        return [EpochRecord(**json.loads(line)) for line in f if line.strip()]


def plot_run(records: Sequence[EpochRecord], directory: str | os.PathLike[str],
             title: str = "") -> list[Path]:
    """Loss/accuracy curves and MGRIT convergence per epoch, as PNG files; their paths.

    ``curves.png``: training and validation loss (log scale) and accuracy; validation points
    are drawn only for the epochs that evaluated them. ``mgrit.png``: MGRIT cycles per epoch
    and the last residual norm, forward solid with dots, adjoint dashed with crosses, so both
    stay visible where they coincide. A residual of exactly 0 (a solve that converged
    exactly) has no place on a log axis: it is drawn as a triangle on a dotted line one decade
    below the smallest positive residual, which the legend names.
    """
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    epochs = [r.epoch for r in records]
    files = []
    every = max(1, len(records) // 25)   # markers: about 25 per line, whatever the epochs
    # the adjoint's markers sit between the forward's, so neither hides the other
    styles = {"forward": dict(color="C0", ls="-", marker="o", ms=4, markevery=(0, every)),
              "adjoint": dict(color="C1", ls="--", marker="x", ms=5,
                              markevery=(every // 2, every), alpha=0.9)}

    def finite(values):   # (epochs, values) where the value was computed (validation: NaN)
        pairs = [(e, v) for e, v in zip(epochs, values) if v is not None and math.isfinite(v)]
        return tuple(zip(*pairs)) if pairs else ((), ())

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, scale, tr_label in ((ax_loss, "loss", 1, "training (batch)"),
                                     (ax_acc, "accuracy", 100, "training")):
        train = [scale * getattr(r, "loss" if key == "loss" else "train_accuracy")
                 for r in records]
        ex, val = finite([getattr(r, "val_" + key) for r in records])
        # dots where a line alone would not show: a single epoch, or sparse validation
        ax.plot(epochs, train, color="C0", marker="o" if len(epochs) == 1 else None, ms=3,
                label=tr_label)
        ax.plot(ex, [scale * v for v in val], color="C1", ls="--",
                marker="o" if len(ex) < max(2, len(epochs) // 2) else None, ms=3,
                label="validation")
        ax.grid(True, which="major", alpha=0.3)
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="objective")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_loss.legend()
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    files.append(out / "curves.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    if any(r.forward_iterations for r in records):
        fig, (ax_it, ax_res) = plt.subplots(1, 2, figsize=(10, 4))
        for name, style in styles.items():
            ax_it.plot(epochs, [getattr(r, f"{name}_iterations") for r in records],
                       label=name, **style)
        ax_it.set(xlabel="epoch", ylabel="MGRIT cycles per epoch", title="iterations")
        ax_it.set_ylim(bottom=0)
        ax_it.yaxis.get_major_locator().set_params(integer=True)
        ax_it.legend()

        series = {name: finite([getattr(r, f"{name}_residual") for r in records])
                  for name in styles}
        positive = [v for _, vals in series.values() for v in vals if v > 0]
        # exact zeros: one decade below the smallest positive residual, rounded to a power of 10
        floor = 10.0 ** (math.floor(math.log10(min(positive))) - 1) if positive else 1e-16
        zeros = False
        for name, (ex, vals) in series.items():
            if not ex:
                continue
            ax_res.semilogy(ex, [v if v > 0 else floor for v in vals], label=name,
                            **styles[name])
            at_zero = [e for e, v in zip(ex, vals) if v == 0]
            if at_zero:
                zeros = True
                ax_res.plot(at_zero, [floor] * len(at_zero), ls="none", marker="v", ms=7,
                            color=styles[name]["color"], mec="black", mew=0.6,
                            label=f"_{name} = 0")
        handles, _ = ax_res.get_legend_handles_labels()
        if zeros:
            ax_res.axhline(floor, color="grey", ls=":", lw=1, zorder=0)
            ax_res.set_ylim(bottom=floor / 3)
            handles.append(Line2D([], [], ls=":", color="grey", marker="v", ms=7, mfc="white",
                                  mec="black", mew=0.6,
                                  label=f"exactly 0 (drawn at {floor:.0e})"))
        ax_res.set(xlabel="epoch", ylabel="last residual norm", title="MGRIT residual")
        if handles:
            ax_res.legend(handles=handles)
        fig.suptitle(title)
        fig.tight_layout()
        files.append(out / "mgrit.png")
        fig.savefig(files[-1], dpi=110)
        plt.close(fig)
    return files
