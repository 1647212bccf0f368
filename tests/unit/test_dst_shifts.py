"""Which occurrences a DST change moved (engine/schedules/dst.py), for the task page's
preview: gaps for cron (to the end of the gap) and for RRULE and once (by the gap's length),
overlaps for all, and times the schedule really names left unmarked."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

import pytest

from engine.schedules import parse_schedule
from engine.schedules.dst import dst_shifts
from engine.timezones import get_zone

NEW_YORK = "America/New_York"
SPRING = datetime(2027, 3, 13, 12, tzinfo=UTC)  # New York springs forward 2027-03-14 02:00
FALL = datetime(2026, 10, 31, 12, tzinfo=UTC)  # and falls back 2026-11-01 02:00


def marks(kind: str, expr: str, zone: str, after: datetime, count: int = 3) -> list[str | None]:
    schedule = parse_schedule(kind, expr, zone, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    assert schedule is not None
    occurrences = list(islice(schedule.occurrences_after(after), count))
    return [m.describe() if m else None for m in dst_shifts(schedule, occurrences, get_zone(zone))]


CASES = [
    (
        "cron",
        "30 2 * * *",
        SPRING,
        [
            "02:30 does not exist on 14 March (clocks go forward): runs at 03:00",
            None,
            None,
        ],
    ),
    ("cron", "0 3 * * *", SPRING, [None, None, None]),  # 03:00 is named, not moved
    (
        "rrule",
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        SPRING,
        [
            "02:30 does not exist on 14 March (clocks go forward): runs at 03:30",
            None,
            None,
        ],
    ),
    ("rrule", "FREQ=DAILY;BYHOUR=3;BYMINUTE=30", SPRING, [None, None, None]),
    (
        "once",
        "2027-03-14T02:30:00",
        SPRING,
        ["02:30 does not exist on 14 March (clocks go forward): runs at 03:30"],
    ),
    ("once", "2027-03-14T03:30:00", SPRING, [None]),
    (
        "cron",
        "30 1 * * *",
        FALL,
        [
            "01:30 happens twice on 1 November (clocks go back): runs once, at the first",
            None,
            None,
        ],
    ),
    (
        "rrule",
        "FREQ=DAILY;BYHOUR=1;BYMINUTE=30",
        FALL,
        [
            "01:30 happens twice on 1 November (clocks go back): runs once, at the first",
            None,
            None,
        ],
    ),
]


@pytest.mark.parametrize(("kind", "expr", "after", "expected"), CASES)
def test_moved_occurrences_are_marked_in_new_york(kind, expr, after, expected):
    assert marks(kind, expr, NEW_YORK, after, count=len(expected)) == expected


def test_a_zone_without_dst_marks_nothing():
    assert marks("cron", "30 2 * * *", "UTC", SPRING) == [None, None, None]
    assert marks("cron", "30 2 * * *", "Asia/Kolkata", SPRING) == [None, None, None]


def test_an_hourly_rule_through_the_gap_marks_the_hour_that_does_not_exist():
    found = marks("rrule", "FREQ=HOURLY", NEW_YORK, datetime(2027, 3, 14, 5, tzinfo=UTC), 3)
    assert found == [
        None,
        "02:00 does not exist on 14 March (clocks go forward): runs at 03:00",
        None,
    ]


def test_moldova_moves_at_its_own_hour():
    # Europe/Chisinau (newest tz data) springs forward at 03:00 local: 03:xx does not exist.
    found = marks("cron", "0 * * * *", "Europe/Chisinau", datetime(2027, 3, 28, 0, tzinfo=UTC), 4)
    assert "03:00 does not exist on 28 March (clocks go forward): runs at 04:00" in found
    assert found.count(None) == 3
