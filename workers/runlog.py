"""The log lines of finished runs, within a budget.

A line per finished run is what a person watching the log wants, and at a few runs a second
every run gets one. At full speed it is not affordable: a JSON log line costs about as
much CPU as executing and recording a no-op run (measured: 60-180 µs a line against
80 µs a run), so a line per run would cut a worker's throughput by a third or more. Within
each second the first :data:`LINES_PER_SECOND` runs get their line; the rest are counted,
and one line sums them up when the second is over (at the next finished run, or at the
worker's next flush).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("ordinaut.worker")

LINES_PER_SECOND = 20
WINDOW_SECONDS = 1.0


@dataclass
class RunLog:
    """Decides which finished runs get a line of their own and sums up the others."""

    lines_per_second: int = LINES_PER_SECOND
    clock: Callable[[], float] = time.monotonic
    _window_start: float = field(default=float("-inf"))
    _lines: int = 0
    _unlogged: Counter[str] = field(default_factory=Counter)
    _unlogged_ms: float = 0.0

    def allow(self) -> bool:
        """Whether the next run may have its own line (else call :meth:`skip`)."""
        now = self.clock()
        if now - self._window_start >= WINDOW_SECONDS:
            self.flush(now)
        if self._lines < self.lines_per_second:
            self._lines += 1
            return True
        return False

    def skip(self, status: str, duration_ms: float) -> None:
        """Count a run that got no line of its own."""
        self._unlogged[status] += 1
        self._unlogged_ms += duration_ms

    def flush(self, now: float | None = None) -> None:
        """Sum up the runs counted in the window that ended, and start a new window."""
        now = self.clock() if now is None else now
        if self._unlogged:
            total = sum(self._unlogged.values())
            counts = ", ".join(f"{n} {status}" for status, n in sorted(self._unlogged.items()))
            log.info(
                "%d more runs finished in %.1f s without a line of their own: %s (mean %.1f ms)",
                total,
                now - self._window_start,
                counts,
                self._unlogged_ms / total,
                extra={"runs": total, **{f"runs_{s}": n for s, n in self._unlogged.items()}},
            )
            self._unlogged.clear()
            self._unlogged_ms = 0.0
        self._window_start = now
        self._lines = 0
