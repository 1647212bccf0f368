"""Expansion planning: which occurrences of a task to materialise now.

The scheduler keeps, per task, a forward-only high-water mark ``expanded_until``: every
occurrence at or before it has been materialised or deliberately skipped. Each tick plans
the occurrences in ``(expanded_until, now + horizon]``; occurrences older than ``now - grace``
were missed (nothing was running) and follow the task's ``catch_up`` policy:

- ``latest``: only the most recent missed occurrence runs;
- ``all``: every missed occurrence runs (at most ``limit`` per tick; the rest next tick);
- ``none``: missed occurrences are skipped.

A ``once`` schedule always runs its single occurrence, even when it lies in the past.

Skipping does not walk the missed occurrences one by one: the latest one is found by
searching backwards from ``now - grace`` in growing windows, so a minutely task that missed
a month costs a handful of lookups, not 43 200.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from engine.schedules import Schedule

EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
# Backward search windows for the latest missed occurrence (the last one reaches back to
# the mark whatever its age).
_WINDOWS = tuple(
    timedelta(seconds=s) for s in (60, 3600, 86400, 35 * 86400, 366 * 86400, 3660 * 86400)
)
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class ExpansionPlan:
    """The occurrences to insert and the task's new expansion state."""

    occurrences: list[datetime] = field(default_factory=list)
    expanded_until: datetime | None = None
    next_expand_at: datetime | None = None


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
    start = expanded_until or EPOCH
    missed_before = now - grace
    if schedule.kind == "once" or start >= missed_before:
        missed: list[datetime] = []
        upcoming_from = start
    else:
        missed = _missed(schedule, start, missed_before, catch_up, limit)
        if len(missed) >= limit:  # catch_up=all with a long backlog: continue next tick
            return ExpansionPlan(missed, missed[-1], schedule.next_after(missed[-1]))
        upcoming_from = missed_before - _TICK  # occurrences_after is exclusive
    upcoming = _between(schedule, upcoming_from, horizon_end, limit - len(missed))
    occurrences = missed + upcoming
    if len(occurrences) >= limit:
        return ExpansionPlan(occurrences, occurrences[-1], schedule.next_after(occurrences[-1]))
    new_mark = max(horizon_end, start)
    return ExpansionPlan(occurrences, new_mark, schedule.next_after(new_mark))


def _between(schedule: Schedule, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """Occurrences in ``(after, until]``, at most ``limit``."""
    found: list[datetime] = []
    for occurrence in schedule.occurrences_after(after):
        if occurrence > until or len(found) >= limit:
            break
        found.append(occurrence)
    return found


def _missed(
    schedule: Schedule, start: datetime, before: datetime, catch_up: str, limit: int
) -> list[datetime]:
    """The missed occurrences in ``(start, before)`` to run under ``catch_up``."""
    if catch_up == "none":
        return []
    if catch_up == "all":
        return _between(schedule, start, before - _TICK, limit)
    latest = latest_before(schedule, before, after=start)
    return [latest] if latest is not None else []


def latest_before(schedule: Schedule, before: datetime, *, after: datetime) -> datetime | None:
    """The last occurrence in ``(after, before)``, searching backwards in growing windows."""
    for window in (*_WINDOWS, None):
        low = after if window is None else max(after, before - window)
        found = None
        for occurrence in schedule.occurrences_after(low):
            if occurrence >= before:
                break
            found = occurrence
        if found is not None or low == after:
            return found
    return None


def initial_state(
    schedule: Schedule | None, created_at: datetime
) -> tuple[datetime | None, datetime | None]:
    """``(expanded_until, next_expand_at)`` of a new task (or of a schedule just replaced).

    Recurring schedules start after the creation instant; a ``once`` time already past still
    runs (at once), so its mark starts empty; event tasks never expand.
    """
    if schedule is None:
        return None, None
    if schedule.kind == "once":
        return None, schedule.next_after(EPOCH)
    return created_at, schedule.next_after(created_at)


class ExpansionStart(NamedTuple):
    """Where a new (or re-scheduled) task's expansion starts: its anchor — the minute it was
    created, where an RRULE without DTSTART begins — and :func:`initial_state`."""

    anchor_at: datetime
    expanded_until: datetime | None
    next_expand_at: datetime | None


def expansion_start(schedule: Schedule | None, now: datetime) -> ExpansionStart:
    """The :class:`ExpansionStart` of a task created (or re-scheduled) at ``now``."""
    return ExpansionStart(now.replace(second=0, microsecond=0), *initial_state(schedule, now))


def resumed_state(
    schedule: Schedule | None,
    *,
    now: datetime,
    expanded_until: datetime | None,
    once_has_run: bool,
) -> tuple[datetime | None, datetime | None]:
    """``(expanded_until, next_expand_at)`` of a task resumed at ``now``: occurrences that
    fell in the pause are skipped and the schedule continues after ``now``; a ``once`` task
    that has not run yet runs at its time (at once when that has passed), one that did its
    work (``once_has_run``) has nothing left."""
    if schedule is None:
        return None, None
    if schedule.kind != "once":
        return now, schedule.next_after(now)
    if once_has_run:
        return expanded_until, None
    return initial_state(schedule, now)


def plan_occurrence(schedule: Schedule, occurrence: datetime) -> ExpansionPlan:
    """Materialise one occurrence now, as the scheduler would when it came within the
    horizon (a snooze of an occurrence not yet in the queue): the mark moves to it."""
    return ExpansionPlan([occurrence], occurrence, schedule.next_after(occurrence))
