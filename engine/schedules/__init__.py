"""Schedules: from a task's ``schedule_kind``/``schedule_expr``/``timezone`` to instants.

Every schedule answers the same two questions (times are aware datetimes, returned in UTC):

- ``occurrences_after(instant)``: the occurrences strictly after ``instant``, ascending;
- ``next_after(instant)``: the first of them, or ``None`` when the schedule is exhausted.

``parse_schedule`` validates and builds one; it raises :class:`engine.errors.ValidationFailed`
with problems at ``$.schedule_expr`` / ``$.timezone``. ``event`` schedules have no
occurrences in time: they fire when a matching topic is published (:mod:`.events`).
"""

from __future__ import annotations

from datetime import datetime

from engine.schedules.base import SCHEDULE_KINDS, Schedule
from engine.schedules.parse import parse_schedule

__all__ = ["SCHEDULE_KINDS", "Schedule", "next_after", "parse_schedule"]


def next_after(schedule: Schedule, instant: datetime) -> datetime | None:
    """The first occurrence strictly after ``instant``."""
    return schedule.next_after(instant)
