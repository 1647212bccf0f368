"""Expansion planning: which occurrences of a task to materialise now.

The scheduler keeps, per task, a forward-only high-water mark ``expanded_until``: every
occurrence at or before it has been materialised or deliberately skipped. Each tick plans
the occurrences in ``(expanded_until, horizon_end]``; occurrences older than ``now - grace``
were missed (nothing was running) and follow the task's ``catch_up`` policy:

- ``latest``: only the most recent missed occurrence runs;
- ``all``: every missed occurrence runs (at most ``limit`` per tick; the rest next tick);
- ``none``: missed occurrences are skipped.

A ``once`` schedule always runs its single occurrence, even when it lies in the past.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.schedules import Schedule

EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class ExpansionPlan:
    """The occurrences to insert and the task's new expansion state."""

    occurrences: list[datetime] = field(default_factory=list)
    expanded_until: datetime | None = None
    next_expand_at: datetime | None = None
    skipped: int = 0


def plan_expansion(
    schedule: Schedule,
    *,
    expanded_until: datetime | None,
    now: datetime,
    horizon: timedelta,
    catch_up: str,
    grace: timedelta,
    limit: int = 1000,
) -> ExpansionPlan:
    """Plan the occurrences in ``(expanded_until, now + horizon]``."""
    horizon_end = now + horizon
    missed_before = now - grace
    start = expanded_until or EPOCH
    missed: list[datetime] = []
    upcoming: list[datetime] = []
    skipped = 0
    last_seen = start
    for occurrence in schedule.occurrences_after(start):
        if occurrence > horizon_end:
            break
        last_seen = occurrence
        if occurrence < missed_before and schedule.kind != "once":
            missed.append(occurrence)
            if catch_up == "all" and len(missed) >= limit:
                break
            if catch_up != "all" and len(missed) > 1:
                missed.pop(0)  # keep only the latest; counting the rest as skipped
                skipped += 1
        else:
            upcoming.append(occurrence)
            if len(missed) + len(upcoming) >= limit:
                break
    if catch_up == "none":
        skipped += len(missed)
        missed = []
    occurrences = missed + upcoming
    capped = len(occurrences) >= limit
    new_mark = last_seen if capped else max(horizon_end, start)
    return ExpansionPlan(
        occurrences=occurrences,
        expanded_until=new_mark,
        next_expand_at=schedule.next_after(new_mark),
        skipped=skipped,
    )


def initial_state(
    schedule: Schedule | None, created_at: datetime
) -> tuple[datetime | None, datetime | None]:
    """``(expanded_until, next_expand_at)`` of a new task.

    Recurring schedules start after the creation instant; a ``once`` time already past still
    runs (at once), so its mark starts empty; event tasks never expand.
    """
    if schedule is None:
        return None, None
    if schedule.kind == "once":
        return None, schedule.next_after(EPOCH)
    return created_at, schedule.next_after(created_at)
