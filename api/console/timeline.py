"""A run's steps laid out on one time axis (durations to scale), for the run page.

Each step becomes a bar from its start to its end, as a share of the run's span (from the
run's start to its end, or to now while it runs), in the coordinates of an SVG ``viewBox``
of :data:`SCALE` units: the page draws it with attributes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.db import Row

SCALE = 1000.0
MIN_WIDTH = 3.0  # a zero-length step (skipped, instant) still shows as a sliver


@dataclass(frozen=True)
class StepBar:
    """One step of the run with where its bar goes."""

    step: dict[str, Any]
    x: float
    width: float
    offset_ms: float | None  # from the run's start

    @property
    def status(self) -> str:
        return str(self.step.get("status", "unknown"))


@dataclass(frozen=True)
class Timeline:
    bars: list[StepBar]
    span_ms: float
    wait_ms: float | None  # queued → started (first attempt's wait)
    step_ms: float  # time inside steps

    @property
    def other_ms(self) -> float:
        """Run time not spent in steps (retries' backoff inside a step, completion)."""
        return max(0.0, self.span_ms - self.step_ms)


def timeline(run: Row, *, now: datetime) -> Timeline:
    """The run's steps on the run's time axis."""
    steps: list[dict[str, Any]] = list(run.get("steps") or [])
    starts = [_start(step) for step in steps]
    begin = run.get("started_at") or min((s for s in starts if s), default=None)
    end = run.get("finished_at") or (now if run.get("status") == "running" else None)
    ends = [
        s.timestamp() * 1000 + float(step.get("duration_ms") or 0)
        for step, s in zip(steps, starts, strict=True)
        if s is not None
    ]
    span = 0.0
    if begin is not None:
        last = max([*ends, (end.timestamp() * 1000) if end else 0.0])
        span = max(last - begin.timestamp() * 1000, 1.0)
    bars = [_bar(step, start, begin, span) for step, start in zip(steps, starts, strict=True)]
    wait = None
    if run.get("started_at") and run.get("queued_at"):
        wait = max(0.0, (run["started_at"] - run["queued_at"]).total_seconds() * 1000)
    spent = sum(float(step.get("duration_ms") or 0) for step in steps)
    return Timeline(bars=bars, span_ms=span, wait_ms=wait, step_ms=spent)


def _start(step: dict[str, Any]) -> datetime | None:
    value = step.get("started_at")
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _bar(
    step: dict[str, Any], start: datetime | None, begin: datetime | None, span: float
) -> StepBar:
    if start is None or begin is None or span <= 0:
        return StepBar(step, 0.0, MIN_WIDTH, None)
    offset = max(0.0, (start - begin).total_seconds() * 1000)
    duration = float(step.get("duration_ms") or 0)
    x = min(SCALE - MIN_WIDTH, offset / span * SCALE)
    width = max(MIN_WIDTH, min(SCALE - x, duration / span * SCALE))
    return StepBar(step, round(x, 2), round(width, 2), offset)
