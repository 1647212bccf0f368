"""Previews: the next occurrences of a schedule, as ISO 8601 text in a zone."""

from __future__ import annotations

import time
from datetime import datetime
from itertools import islice

from engine.errors import Problem, ValidationFailed
from engine.schedules.base import Schedule
from engine.schedules.wallclock import check_year, to_instant
from engine.timezones import get_zone, parse_iso_datetime

MAX_COUNT = 1000
# A preview stops computing after this long and returns what it found: a rule whose
# occurrences lie decades apart can take a while for each (e.g. a leap day that is a Monday).
BUDGET_SECONDS = 2.0


def preview(
    schedule: Schedule | None,
    timezone: str,
    *,
    after: datetime,
    count: int,
    budget_seconds: float = BUDGET_SECONDS,
) -> list[str]:
    """Up to ``count`` occurrences strictly after ``after``, each with ``timezone``'s offset
    (``2026-03-30T09:00:00+03:00``), as many as ``budget_seconds`` of computing find. Event
    schedules (``None``) have none."""
    zone = get_zone(timezone)
    upcoming = next_occurrences(schedule, after=after, count=count, budget_seconds=budget_seconds)
    return [at.astimezone(zone).isoformat() for at in upcoming]


def next_occurrences(
    schedule: Schedule | None,
    *,
    after: datetime,
    count: int,
    budget_seconds: float = BUDGET_SECONDS,
) -> list[datetime]:
    """Up to ``count`` occurrences strictly after ``after`` (aware, UTC), as many as
    ``budget_seconds`` of computing find (at least one, when there is one)."""
    if schedule is None:
        return []
    deadline = time.monotonic() + budget_seconds
    found: list[datetime] = []
    for at in islice(schedule.occurrences_after(after), count):
        found.append(at)
        if time.monotonic() > deadline:
            break
    return found


def parse_after(text: str, timezone: str, path: str) -> datetime:
    """An ISO 8601 instant for ``after``; a naive one is wall-clock time in ``timezone``.
    Raises :class:`ValidationFailed` naming ``path``."""
    try:
        parsed = parse_iso_datetime(text.strip())
    except ValueError:
        raise ValidationFailed(
            [
                Problem(
                    path,
                    f"not an ISO 8601 date-time: {text!r} (e.g. 1997-09-01T00:00:00Z)",
                    "datetime",
                )
            ]
        ) from None
    try:
        check_year(parsed, "after")
    except ValueError as exc:
        raise ValidationFailed([Problem(path, str(exc), "datetime")]) from None
    if parsed.tzinfo is None:
        return to_instant(parsed, get_zone(timezone))
    return parsed
