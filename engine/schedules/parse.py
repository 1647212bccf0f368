"""Build a :class:`~engine.schedules.base.Schedule` from a task's schedule fields."""

from __future__ import annotations

from datetime import datetime

from engine.errors import Problem, ValidationFailed
from engine.schedules.base import SCHEDULE_KINDS, Schedule
from engine.schedules.cron import parse_cron_schedule
from engine.schedules.events import parse_pattern
from engine.schedules.once import parse_once
from engine.schedules.rrule import parse_rrule_schedule
from engine.timezones import UnknownTimezone, get_zone


def parse_schedule(kind: str, expr: str, timezone: str, *, anchor: datetime) -> Schedule | None:
    """Validate and build the schedule; ``None`` for ``event`` schedules.

    ``anchor`` is the task's creation time: the DTSTART of an RRULE that has none.
    Problems are reported at ``$.schedule_kind``, ``$.timezone`` or ``$.schedule_expr``.
    """
    if kind not in SCHEDULE_KINDS:
        raise ValidationFailed(
            [Problem("$.schedule_kind", f"must be one of {', '.join(SCHEDULE_KINDS)}", "enum")]
        )
    try:
        zone = get_zone(timezone)
    except UnknownTimezone as exc:
        raise ValidationFailed([Problem("$.timezone", str(exc), "timezone")]) from None
    try:
        if kind == "once":
            return parse_once(expr, zone)
        if kind == "cron":
            return parse_cron_schedule(expr, zone)
        if kind == "rrule":
            return parse_rrule_schedule(expr, zone, anchor=anchor)
        parse_pattern(expr)
        return None
    except (ValueError, OverflowError) as exc:
        raise ValidationFailed(
            [Problem("$.schedule_expr", f"invalid {kind} schedule: {exc}", "schedule")]
        ) from None
