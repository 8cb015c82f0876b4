"""SIGINT and SIGTERM during training: a request to stop, not an exception at a random line.

While training, the handlers only record the signal and raise the engine's interrupt flag
(:func:`layerbraid._core.set_interrupt`): a solve in progress, NumPy callbacks or native C++,
then stops at its next step on every rank (the interrupted rank raises
``layerbraid._core.Interrupted``, the others :class:`layerbraid.RemoteRankError`), and work
outside solves runs on to the end of the epoch. The trainer then agrees with the other ranks
to stop, writes a checkpoint and raises :class:`TrainingInterrupted` on every rank.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from .. import _core
from ..ranks import CollectiveInterrupt, signal_name

__all__ = ["StopRequests", "TrainingInterrupted"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(CollectiveInterrupt):
    """Training stopped on SIGINT/SIGTERM, on every rank, after the last complete epoch.

    Attributes: ``signum``; ``epoch``, the epochs completed; ``checkpoint``, the checkpoint
    written at that epoch (None without an output directory).
    """

    def __init__(self, signum: int, epoch: int, checkpoint: str | None) -> None:
        where = (f"checkpoint saved to {checkpoint}" if checkpoint else
                 "nothing was saved (no output directory)")
        super().__init__(signum, f"interrupted by {signal_name(signum)} after epoch {epoch}; "
                                 f"{where}")
        self.epoch, self.checkpoint = epoch, checkpoint


class StopRequests:
    """Context manager: while active, SIGINT/SIGTERM set :attr:`signum` (the first signal) and
    the engine's interrupt flag instead of raising. Outside the main thread it does nothing
    (Python delivers signals to the main thread only)."""

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.signum:
            self.signum = signum
            _core.set_interrupt(signum)

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        _core.set_interrupt(0)
