"""Which occurrences a DST change moved, for previews (the console's task page).

An occurrence is *moved* when the wall-clock time its schedule names does not exist on that
day or exists twice (see :mod:`engine.schedules.wallclock` for the policies):

- **gap** (clocks go forward): a cron time inside the gap runs at the first instant after
  it (02:30 → 03:00); an RRULE or ``once`` time is shifted by the gap's length
  (02:30 → 03:30). Told apart from a time the schedule really names (a 03:00 cron job) by
  asking the schedule whether it names a time inside the gap.
- **overlap** (clocks go back): the named time happens twice; it runs once, at the first.

Pure: occurrences in, one mark (or ``None``) per occurrence out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from engine.schedules.base import Schedule
from engine.schedules.cron import CronSchedule
from engine.schedules.once import OnceSchedule
from engine.schedules.rrule import RRuleSchedule
from engine.schedules.wallclock import is_nonexistent, to_instant, to_local

# Gaps are at most two hours long (double summer time); look this far back for the change.
LONGEST_GAP = timedelta(hours=3)


@dataclass(frozen=True)
class DstShift:
    """How a DST change moved one occurrence (times are naive wall-clock times)."""

    kind: str  # "gap" or "overlap"
    wall_time: datetime  # what the schedule names
    runs_at: datetime  # when it runs, local

    def describe(self) -> str:
        day = f"{self.wall_time.day} {self.wall_time:%B}"
        if self.kind == "gap":
            return (
                f"{self.wall_time:%H:%M} does not exist on {day} (clocks go forward): "
                f"runs at {self.runs_at:%H:%M}"
            )
        return (
            f"{self.wall_time:%H:%M} happens twice on {day} (clocks go back): "
            "runs once, at the first"
        )


def dst_shifts(
    schedule: Schedule, occurrences: Sequence[datetime], zone: tzinfo
) -> list[DstShift | None]:
    """One mark per occurrence (aware instants of ``schedule``): how a DST change moved it,
    or ``None``. ``zone`` is the task's; a recurrence set with its own TZID uses that."""
    zone = getattr(schedule, "zone", zone)
    return [_shift(schedule, at, zone) for at in occurrences]


def _shift(schedule: Schedule, at: datetime, zone: tzinfo) -> DstShift | None:
    local = to_local(at, zone)
    if _is_ambiguous(local, zone):
        return DstShift(kind="overlap", wall_time=local, runs_at=local)
    gap = _gap_before(at, zone)
    if gap is None:
        return None
    wall_time = _named_time_in_gap(schedule, local, gap, zone)
    if wall_time is None:
        return None
    return DstShift(kind="gap", wall_time=wall_time, runs_at=local)


def _is_ambiguous(local: datetime, zone: tzinfo) -> bool:
    first = local.replace(tzinfo=zone, fold=0).utcoffset()
    second = local.replace(tzinfo=zone, fold=1).utcoffset()
    return first != second and not is_nonexistent(local, zone)


def _gap_before(at: datetime, zone: tzinfo) -> timedelta | None:
    """The length of a forward change of the clock within :data:`LONGEST_GAP` before
    ``at`` (None: none)."""
    after = at.astimezone(zone).utcoffset()
    before = (at - LONGEST_GAP).astimezone(zone).utcoffset()
    if after is None or before is None or after <= before:
        return None
    return after - before


def _named_time_in_gap(
    schedule: Schedule, local: datetime, gap: timedelta, zone: tzinfo
) -> datetime | None:
    """The nonexistent wall-clock time the schedule names that became ``local``."""
    if isinstance(schedule, CronSchedule):
        # Vixie cron runs every time of a gap at its end: ``local`` must be that end.
        if not is_nonexistent(local - timedelta(minutes=1), zone):
            return None
        for named in schedule.expression.local_times(local - gap):
            if named >= local:
                return None
            if is_nonexistent(named, zone):
                return named
        return None
    wall_time = local - gap  # RFC 5545: shifted forward by the gap's length
    if not is_nonexistent(wall_time, zone) or to_instant(wall_time, zone) != to_instant(
        local, zone
    ):
        return None
    if isinstance(schedule, RRuleSchedule):
        names_it = any(rule.names_local(wall_time) for rule in schedule.rules)
        return wall_time if names_it else None
    if isinstance(schedule, OnceSchedule):
        return wall_time if schedule.wall_time == wall_time else None
    return None
