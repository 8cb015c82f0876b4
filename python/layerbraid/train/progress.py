"""A progress display for long runs, on rank 0 only: a redrawn bar on a terminal, one line per
report otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``Progress(total, enabled)``; ``update(done, text)`` after each unit of work."""

    def __init__(self, total: int, enabled: bool = True, stream: TextIO | None = None,
                 every: int = 10) -> None:
        self.total, self.enabled = total, enabled
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = max(1, every)
        self.start = time.perf_counter()

    def update(self, done: int, text: str) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        if self.tty:
            width = 24
            filled = int(width * done / max(self.total, 1))
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r[{bar}] {done}/{self.total} {text} ({elapsed:.1f} s)\033[K")
            if done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif done % self.every == 0 or done == 1 or done >= self.total:
            self.stream.write(f"{done}/{self.total} {text} ({elapsed:.1f} s)\n")
            self.stream.flush()

    def interrupted(self) -> None:
        """End a half-drawn bar, so that what is printed next starts on its own line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
