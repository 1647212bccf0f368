"""Cron: Vixie syntax and day matching, leap days, never-firing expressions, and DST."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import islice

import pytest

from engine.errors import ValidationFailed
from engine.schedules import parse_schedule
from engine.schedules.cron import CronSchedule, parse_cron
from engine.timezones import get_zone

ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


def cron(expr: str, zone: str = "UTC") -> CronSchedule:
    schedule = parse_schedule("cron", expr, zone, anchor=ANCHOR)
    assert isinstance(schedule, CronSchedule)
    return schedule


def upcoming(expr: str, after: str, count: int, zone: str = "UTC") -> list[str]:
    start = datetime.fromisoformat(after.replace("Z", "+00:00"))
    tz = get_zone(zone)
    return [
        t.astimezone(tz).strftime("%Y-%m-%dT%H:%M%z")
        for t in islice(cron(expr, zone).occurrences_after(start), count)
    ]


PARSED = [
    # expression, minutes, hours, days, months, weekdays (0 = Sunday)
    ("* * * * *", range(60), range(24), range(1, 32), range(1, 13), range(7)),
    ("*/15 9-17 * * 1-5", [0, 15, 30, 45], range(9, 18), range(1, 32), range(1, 13), range(1, 6)),
    ("0,30 8 1,15 * *", [0, 30], [8], [1, 15], range(1, 13), range(7)),
    ("5-50/20 0 * * *", [5, 25, 45], [0], range(1, 32), range(1, 13), range(7)),
    ("10/25 0 * * *", [10, 35], [0], range(1, 32), range(1, 13), range(7)),
    ("0 0 * jan-mar,DEC SUN", [0], [0], range(1, 32), [1, 2, 3, 12], [0]),
    ("0 0 * * mon-fri", [0], [0], range(1, 32), range(1, 13), range(1, 6)),
    ("0 0 * * 7", [0], [0], range(1, 32), range(1, 13), [0]),
    ("0 0 * * 5-7", [0], [0], range(1, 32), range(1, 13), [0, 5, 6]),
    ("0 0 * * */2", [0], [0], range(1, 32), range(1, 13), [0, 2, 4, 6]),
    ("@hourly", [0], range(24), range(1, 32), range(1, 13), range(7)),
    ("@daily", [0], [0], range(1, 32), range(1, 13), range(7)),
    ("@midnight", [0], [0], range(1, 32), range(1, 13), range(7)),
    ("@weekly", [0], [0], range(1, 32), range(1, 13), [0]),
    ("@monthly", [0], [0], [1], range(1, 13), range(7)),
    ("@yearly", [0], [0], [1], [1], range(7)),
    ("@ANNUALLY", [0], [0], [1], [1], range(7)),
]


@pytest.mark.parametrize(("expr", "minutes", "hours", "days", "months", "weekdays"), PARSED)
def test_fields(
    expr: str,
    minutes: Iterable[int],
    hours: Iterable[int],
    days: Iterable[int],
    months: Iterable[int],
    weekdays: Iterable[int],
) -> None:
    parsed = parse_cron(expr)
    assert parsed.minutes == tuple(minutes)
    assert parsed.hours == tuple(hours)
    assert parsed.days == frozenset(days)
    assert parsed.months == frozenset(months)
    assert parsed.weekdays == frozenset(weekdays)


INVALID = [
    ("", "expected 5 fields"),
    ("* * * *", "got 4"),
    ("0 0 * * * *", "got 6"),
    ("60 * * * *", "minute: value 60 is out of range 0-59"),
    ("* 24 * * *", "hour: value 24 is out of range 0-23"),
    ("* * 0 * *", "day of month: value 0 is out of range 1-31"),
    ("* * 32 * *", "day of month: value 32"),
    ("* * * 13 *", "month: value 13"),
    ("* * * * 8", "day of week: value 8 is out of range 0-7"),
    ("* * * foo *", "month: value 'foo' is not a number or a name"),
    ("* * * * mon-sun", "day of week: range 'mon-sun' runs backwards"),
    ("5-1 * * * *", "minute: range '5-1' runs backwards"),
    ("*/0 * * * *", "minute: step 0 is out of range"),
    ("1,,2 * * * *", "minute: empty list item"),
    ("* * * jan *", None),  # valid: names are fine in their field
    ("* * * * jan", "day of week: value 'jan' is not a number"),
    ("@reboot", "unknown shorthand '@reboot'"),
    ("-1 * * * *", "minute"),
]


@pytest.mark.parametrize(("expr", "reason"), INVALID)
def test_invalid_expressions_name_the_field(expr: str, reason: str | None) -> None:
    if reason is None:
        parse_cron(expr)
        return
    with pytest.raises(ValidationFailed) as failure:
        parse_schedule("cron", expr, "UTC", anchor=ANCHOR)
    problem = failure.value.problems[0]
    assert problem.path == "$.schedule_expr"
    assert reason in problem.message


DAYS = [
    # both restricted: day of month OR day of week (13th, or any Friday)
    ("0 0 13 3 5", "2026-02-28T00:00Z", ["2026-03-06", "2026-03-13", "2026-03-20", "2026-03-27"]),
    # day of week '*': day of month only
    ("0 0 13 * *", "2026-02-28T00:00Z", ["2026-03-13", "2026-04-13"]),
    # day of month '*': day of week only (Mondays)
    ("0 0 * * 1", "2026-02-28T00:00Z", ["2026-03-02", "2026-03-09"]),
    # '*/2' counts as unrestricted: odd days AND Mondays
    ("0 0 */2 * 1", "2026-02-28T00:00Z", ["2026-03-09", "2026-03-23", "2026-04-13"]),
    ("0 0 1 * */7", "2026-01-01T00:00Z", ["2026-02-01", "2026-03-01", "2026-11-01"]),
    # 0 and 7 are both Sunday
    ("0 0 * * 0", "2026-03-01T00:00Z", ["2026-03-08", "2026-03-15"]),
    ("0 0 * * 7", "2026-03-01T00:00Z", ["2026-03-08", "2026-03-15"]),
    # names
    (
        "0 0 * feb sat",
        "2026-01-01T00:00Z",
        ["2026-02-07", "2026-02-14", "2026-02-21", "2026-02-28", "2027-02-06"],
    ),
    # the 31st only exists in some months
    ("0 0 31 * *", "2026-01-31T00:00Z", ["2026-03-31", "2026-05-31", "2026-07-31"]),
    # leap days, across the non-leap 2100
    ("0 0 29 2 *", "2026-01-01T00:00Z", ["2028-02-29", "2032-02-29"]),
    ("0 0 29 2 *", "2097-01-01T00:00Z", ["2104-02-29"]),
    # 29 February OR a Monday in February
    (
        "0 0 29 2 1",
        "2027-01-31T00:00Z",
        ["2027-02-01", "2027-02-08", "2027-02-15", "2027-02-22", "2028-02-07"],
    ),
]


@pytest.mark.parametrize(("expr", "after", "days"), DAYS)
def test_day_matching(expr: str, after: str, days: list[str]) -> None:
    got = [t[:10] for t in upcoming(expr, after, len(days))]
    assert got == days


def test_minutes_and_hours_within_a_day() -> None:
    got = upcoming("*/20 9-10 * * *", "2026-03-02T09:15Z", 5)
    assert got == [
        "2026-03-02T09:20+0000",
        "2026-03-02T09:40+0000",
        "2026-03-02T10:00+0000",
        "2026-03-02T10:20+0000",
        "2026-03-02T10:40+0000",
    ]


def test_after_is_exclusive() -> None:
    assert upcoming("0 9 * * *", "2026-03-02T09:00Z", 1) == ["2026-03-03T09:00+0000"]


@pytest.mark.parametrize(
    "expr",
    [
        "0 0 31 4 *",
        "0 0 30 2 *",
        "0 0 31 2,4,6,9,11 *",
        "0 0 31 apr *",
        "0 0 30-31 2 *",
        "0 0 30 2 */1",
    ],
)
def test_never_firing_expressions(expr: str) -> None:
    assert not parse_cron(expr).can_fire()
    started = time.perf_counter()
    assert cron(expr).next_after(ANCHOR) is None
    assert time.perf_counter() - started < 0.05  # recognised, not searched


@pytest.mark.parametrize("expr", ["0 0 31 4 1", "0 0 30 2 1", "0 0 29 2 *"])
def test_rare_but_possible_expressions_fire(expr: str) -> None:
    assert parse_cron(expr).can_fire()
    assert cron(expr).next_after(ANCHOR) is not None


def test_search_skips_days_not_minutes() -> None:
    """A leap-day expression eight years out is found quickly."""
    schedule = cron("59 23 29 2 *")
    started = time.perf_counter()
    for _ in range(100):
        assert schedule.next_after(datetime(2097, 1, 1, tzinfo=UTC)) is not None
    assert time.perf_counter() - started < 1.0


DST = [
    # New York: spring gap 02:00-03:00 on 8 March 2026; fall overlap 01:00-02:00 on 1 Nov.
    (
        "America/New_York",
        "30 2 * * *",
        "2026-03-07T12:00Z",
        ["2026-03-08T03:00-0400", "2026-03-09T02:30-0400"],
    ),
    (
        "America/New_York",
        "0,15,30,45 2 * * *",
        "2026-03-07T12:00Z",
        ["2026-03-08T03:00-0400", "2026-03-09T02:00-0400"],
    ),
    (
        "America/New_York",
        "*/30 * * * *",
        "2026-03-08T06:15Z",
        ["2026-03-08T01:30-0500", "2026-03-08T03:00-0400", "2026-03-08T03:30-0400"],
    ),
    (
        "America/New_York",
        "30 1 * * *",
        "2026-10-31T12:00Z",
        ["2026-11-01T01:30-0400", "2026-11-02T01:30-0500"],
    ),
    (
        "America/New_York",
        "*/30 * * * *",
        "2026-11-01T04:15Z",
        [
            "2026-11-01T00:30-0400",
            "2026-11-01T01:00-0400",
            "2026-11-01T01:30-0400",
            "2026-11-01T02:00-0500",
        ],
    ),
    # Chisinau (tzdata 2026): gap 03:00-04:00 on 29 March, overlap 03:00-04:00 on 25 October.
    (
        "Europe/Chisinau",
        "30 3 * * *",
        "2026-03-28T12:00Z",
        ["2026-03-29T04:00+0300", "2026-03-30T03:30+0300"],
    ),
    (
        "Europe/Chisinau",
        "30 2 * * *",
        "2026-03-28T12:00Z",
        ["2026-03-29T02:30+0200", "2026-03-30T02:30+0300"],
    ),
    (
        "Europe/Chisinau",
        "30 3 * * *",
        "2026-10-24T12:00Z",
        ["2026-10-25T03:30+0300", "2026-10-26T03:30+0200"],
    ),
    # Sydney: gap 02:00-03:00 on 4 October, overlap 02:00-03:00 on 5 April.
    (
        "Australia/Sydney",
        "30 2 * * *",
        "2026-10-03T12:00Z",
        ["2026-10-04T03:00+1100", "2026-10-05T02:30+1100"],
    ),
    (
        "Australia/Sydney",
        "30 2 * * *",
        "2026-04-04T12:00Z",
        ["2026-04-05T02:30+1100", "2026-04-06T02:30+1000"],
    ),
    # Kolkata and UTC: no DST at all.
    (
        "Asia/Kolkata",
        "30 2 * * *",
        "2026-03-07T12:00Z",
        ["2026-03-08T02:30+0530", "2026-03-09T02:30+0530"],
    ),
    ("UTC", "30 2 * * *", "2026-03-28T12:00Z", ["2026-03-29T02:30+0000", "2026-03-30T02:30+0000"]),
]


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), DST)
def test_dst(zone: str, expr: str, after: str, expected: list[str]) -> None:
    assert upcoming(expr, after, len(expected), zone) == expected


def test_weekday_is_the_local_one() -> None:
    """Monday 00:30 in Sydney is Sunday in UTC: the local weekday counts."""
    got = upcoming("30 0 * * 1", "2026-03-01T00:00Z", 1, "Australia/Sydney")
    assert got == ["2026-03-02T00:30+1100"]


def test_search_stops_well_before_the_end_of_the_calendar() -> None:
    schedule = cron("0 0 29 2 *", "America/New_York")
    found = list(schedule.occurrences_after(datetime(8990, 1, 1, tzinfo=UTC)))
    assert found and found[-1].year < 9900
