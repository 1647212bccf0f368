"""A run's steps laid out on one time axis (durations to scale), for the run page.

Each step becomes a bar from the start of its first try to the end of its last, as a share
of the run's span (from the run's start to its end, or to now while it runs), in the
coordinates of an SVG ``viewBox`` of :data:`SCALE` units: the page draws it with attributes
only. A step retried inside the run shows each failed try as its own segment, the backoff
between tries as the gap. The run is the one ``GET /runs/{id}`` answers (timestamps as ISO
strings) or a stored row (datetimes): both read the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SCALE = 1000.0
MIN_WIDTH = 3.0  # a zero-length step (skipped, instant) still shows as a sliver


@dataclass(frozen=True)
class Segment:
    """One try of a step: where it is drawn and how it ended."""

    x: float
    width: float
    status: str


@dataclass(frozen=True)
class StepBar:
    """One step of the run with where its bar goes."""

    step: dict[str, Any]
    x: float
    width: float
    offset_ms: float | None  # from the run's start
    segments: list[Segment]  # the failed tries then the last one (empty: one plain bar)

    @property
    def status(self) -> str:
        return str(self.step.get("status", "unknown"))

    @property
    def tries(self) -> list[dict[str, Any]]:
        return list(self.step.get("tries") or [])

    @property
    def backoff_ms(self) -> int:
        return sum(int(one.get("backoff_ms") or 0) for one in self.tries)


@dataclass(frozen=True)
class Timeline:
    bars: list[StepBar]
    span_ms: float
    wait_ms: float | None  # queued → started (first attempt's wait)
    step_ms: float  # time inside steps, every try of each
    backoff_ms: float  # pauses between a step's tries

    @property
    def other_ms(self) -> float:
        """Run time spent neither in steps nor in backoff (templates, completion)."""
        return max(0.0, self.span_ms - self.step_ms - self.backoff_ms)


def timeline(run: Mapping[str, Any], *, now: datetime) -> Timeline:
    """The run's steps on the run's time axis."""
    steps: list[dict[str, Any]] = list(run.get("steps") or [])
    starts = [_first_start(step) for step in steps]
    begin = when(run.get("started_at")) or min((s for s in starts if s), default=None)
    end = when(run.get("finished_at")) or (now if run.get("status") == "running" else None)
    ends = [_end_ms(step) for step in steps]
    span = 0.0
    if begin is not None:
        last = max([*(e for e in ends if e is not None), (end.timestamp() * 1000) if end else 0.0])
        span = max(last - begin.timestamp() * 1000, 1.0)
    bars = [_bar(step, begin, span) for step in steps]
    wait = None
    started, queued = when(run.get("started_at")), when(run.get("queued_at"))
    if started and queued:
        wait = max(0.0, (started - queued).total_seconds() * 1000)
    spent = sum(_ms(step) + sum(_ms(one) for one in step.get("tries") or []) for step in steps)
    backoff = sum(bar.backoff_ms for bar in bars)
    return Timeline(bars=bars, span_ms=span, wait_ms=wait, step_ms=spent, backoff_ms=backoff)


def when(value: Any) -> datetime | None:
    """A timestamp from a datetime or its ISO 8601 text (None when neither)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _ms(part: Mapping[str, Any]) -> float:
    return float(part.get("duration_ms") or 0)


def _first_start(step: Mapping[str, Any]) -> datetime | None:
    tries = step.get("tries") or []
    return when(tries[0].get("started_at")) if tries else when(step.get("started_at"))


def _end_ms(step: Mapping[str, Any]) -> float | None:
    start = when(step.get("started_at"))
    return None if start is None else start.timestamp() * 1000 + _ms(step)


def _bar(step: dict[str, Any], begin: datetime | None, span: float) -> StepBar:
    start, end = _first_start(step), _end_ms(step)
    if start is None or end is None or begin is None or span <= 0:
        return StepBar(step, 0.0, MIN_WIDTH, None, [])
    offset = max(0.0, (start - begin).total_seconds() * 1000)
    x, width = _place(offset, end - start.timestamp() * 1000, span)
    segments = []
    if step.get("tries"):
        parts = [(one, "failed") for one in step["tries"]] + [(step, str(step["status"]))]
        for part, status in parts:
            part_start = when(part.get("started_at"))
            if part_start is not None:
                at = max(0.0, (part_start - begin).total_seconds() * 1000)
                segments.append(Segment(*_place(at, _ms(part), span), status=status))
    return StepBar(step, x, width, offset, segments)


def _place(offset_ms: float, duration_ms: float, span: float) -> tuple[float, float]:
    x = min(SCALE - MIN_WIDTH, offset_ms / span * SCALE)
    width = max(MIN_WIDTH, min(SCALE - x, duration_ms / span * SCALE))
    return round(x, 2), round(width, 2)
