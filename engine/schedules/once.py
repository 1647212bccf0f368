"""``once``: a single ISO 8601 instant; a naive one is wall-clock time in the task's zone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from engine.schedules.wallclock import check_year, to_instant
from engine.timezones import parse_iso_datetime


@dataclass(frozen=True)
class OnceSchedule:
    at: datetime
    kind: str = "once"
    # The naive wall-clock time written, when the expression had no offset (read in the
    # task's zone; a DST gap may have moved ``at`` away from it).
    wall_time: datetime | None = None

    def occurrences_after(self, instant: datetime) -> Iterator[datetime]:
        if self.at > instant:
            yield self.at

    def next_after(self, instant: datetime) -> datetime | None:
        return next(self.occurrences_after(instant), None)


def parse_once(expr: str, zone: tzinfo) -> OnceSchedule:
    """Parse the ISO 8601 date-time; raises ``ValueError`` with the reason."""
    text = expr.strip()
    try:
        parsed = parse_iso_datetime(text)
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 date-time: {expr!r} (example: 2026-12-01T09:00:00+02:00)"
        ) from None
    check_year(parsed, "the date")
    if parsed.tzinfo is None:
        return OnceSchedule(to_instant(parsed, zone), wall_time=parsed)
    return OnceSchedule(parsed.astimezone(UTC))
