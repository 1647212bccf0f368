"""RRULE: every RFC 5545 §3.8.5.3 example, DST exactness, parsing, and re-anchoring."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest
from dateutil import rrule as du

from engine.errors import ValidationFailed
from engine.schedules import parse_schedule
from engine.schedules.rrule import RRuleSchedule, coarsened, parse_rrule_schedule, parse_rule
from engine.timezones import get_zone
from tests.unit.rfc5545_examples import EXAMPLES, Example

NEW_YORK = get_zone("America/New_York")
ANCHOR = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def rrule(text: str, zone: str = "America/New_York", anchor: datetime = ANCHOR) -> RRuleSchedule:
    schedule = parse_schedule("rrule", text, zone, anchor=anchor)
    assert isinstance(schedule, RRuleSchedule)
    return schedule


def local(instants: Iterator[datetime] | list[datetime], zone: str) -> list[str]:
    tz = get_zone(zone)
    return [i.astimezone(tz).strftime("%Y-%m-%dT%H:%M%z") for i in instants]


def ny_local(instants: list[datetime]) -> list[str]:
    return [i.astimezone(NEW_YORK).strftime("%Y-%m-%dT%H:%M") for i in instants]


def example(title: str) -> Example:
    return next(e for e in EXAMPLES if e.title.startswith(title))


def first_dtstart(example: Example) -> datetime:
    stamp = example.recurrence.splitlines()[0].rsplit(":", 1)[1]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=NEW_YORK)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.title for e in EXAMPLES])
def test_rfc5545_example(example: Example) -> None:
    schedule = rrule(example.recurrence)
    after = first_dtstart(example).astimezone(UTC) - timedelta(seconds=1)
    wanted = len(example.expected) + (0 if example.open_ended else 1)
    got = ny_local(list(islice(schedule.occurrences_after(after), wanted)))
    assert got == list(example.expected)


def test_rfc5545_example_offsets_follow_new_york_dst() -> None:
    schedule = rrule(example("Daily until December 24").recurrence)
    got = local(
        islice(schedule.occurrences_after(datetime(1997, 10, 24, tzinfo=UTC)), 3),
        "America/New_York",
    )
    assert got == ["1997-10-24T09:00-0400", "1997-10-25T09:00-0400", "1997-10-26T09:00-0500"]


def test_rfc_hourly_example_as_printed_is_bounded_by_its_utc_until() -> None:
    """The RFC's own text (before Errata ID 3883): UNTIL=17:00Z is 13:00 EDT."""
    schedule = rrule(
        "DTSTART;TZID=America/New_York:19970902T090000\n"
        "RRULE:FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z"
    )
    got = ny_local(list(schedule.occurrences_after(datetime(1997, 1, 1, tzinfo=UTC))))
    assert got == ["1997-09-02T09:00", "1997-09-02T12:00"]


def test_occurrences_continue_far_into_an_open_ended_example() -> None:
    """Asking from 2026 re-anchors the rule; the answer equals expanding from 1997."""
    schedule = rrule(example("The second-to-last weekday").recurrence)
    after = datetime(2026, 3, 1, tzinfo=UTC)
    got = ny_local(list(islice(schedule.occurrences_after(after), 4)))
    assert got == ["2026-03-30T09:00", "2026-04-29T09:00", "2026-05-28T09:00", "2026-06-29T09:00"]


# DST (RFC 5545 3.3.5): gap times shift forward by the gap; overlaps run once, first.

DST_CASES = [
    # zone, rule (local times), after, expected (local with offset)
    (
        "America/New_York",
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        "2026-03-07T00:00Z",
        ["2026-03-07T02:30-0500", "2026-03-08T03:30-0400", "2026-03-09T02:30-0400"],
    ),
    (
        "America/New_York",
        "FREQ=DAILY;BYHOUR=1;BYMINUTE=30",
        "2026-10-31T00:00Z",
        ["2026-10-31T01:30-0400", "2026-11-01T01:30-0400", "2026-11-02T01:30-0500"],
    ),
    (
        "Europe/Chisinau",  # tzdata ≥ 2022: Moldova changes at 03:00 local, like the EU
        "FREQ=DAILY;BYHOUR=3;BYMINUTE=30",
        "2026-03-28T00:00Z",
        ["2026-03-28T03:30+0200", "2026-03-29T04:30+0300", "2026-03-30T03:30+0300"],
    ),
    (
        "Europe/Chisinau",
        "FREQ=DAILY;BYHOUR=3;BYMINUTE=30",
        "2026-10-24T00:00Z",
        ["2026-10-24T03:30+0300", "2026-10-25T03:30+0300", "2026-10-26T03:30+0200"],
    ),
    (
        "Australia/Sydney",
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        "2026-10-02T00:00Z",
        ["2026-10-03T02:30+1000", "2026-10-04T03:30+1100", "2026-10-05T02:30+1100"],
    ),
    (
        "Australia/Sydney",
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        "2026-04-03T00:00Z",
        ["2026-04-04T02:30+1100", "2026-04-05T02:30+1100", "2026-04-06T02:30+1000"],
    ),
    (
        "Asia/Kolkata",
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        "2026-03-06T00:00Z",
        ["2026-03-07T02:30+0530", "2026-03-08T02:30+0530", "2026-03-09T02:30+0530"],
    ),
    (
        "UTC",
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        "2026-03-28T00:00Z",
        ["2026-03-28T02:30+0000", "2026-03-29T02:30+0000", "2026-03-30T02:30+0000"],
    ),
]


@pytest.mark.parametrize(("zone", "rule", "after", "expected"), DST_CASES)
def test_dst(zone: str, rule: str, after: str, expected: list[str]) -> None:
    schedule = rrule(rule, zone)
    start = datetime.fromisoformat(after.replace("Z", "+00:00"))
    assert local(islice(schedule.occurrences_after(start), len(expected)), zone) == expected


def test_hourly_through_a_gap_counts_a_shifted_duplicate_once() -> None:
    """01:00, 02:00 (→ 03:00), 03:00: the shifted 02:00 and 03:00 are one instant, one count."""
    schedule = rrule("DTSTART;TZID=America/New_York:20260308T000000\nRRULE:FREQ=HOURLY;COUNT=5")
    got = local(schedule.occurrences_after(datetime(2026, 1, 1, tzinfo=UTC)), "America/New_York")
    assert got == [
        "2026-03-08T00:00-0500",
        "2026-03-08T01:00-0500",
        "2026-03-08T03:00-0400",
        "2026-03-08T04:00-0400",
        "2026-03-08T05:00-0400",
    ]


def test_quarter_hours_through_a_gap_are_sorted_and_unique() -> None:
    schedule = rrule(
        "DTSTART;TZID=America/New_York:20260308T010000\nRRULE:FREQ=MINUTELY;INTERVAL=15"
    )
    after = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)  # 01:30 EST
    got = local(islice(schedule.occurrences_after(after), 5), "America/New_York")
    assert got == [
        "2026-03-08T01:45-0500",
        "2026-03-08T03:00-0400",
        "2026-03-08T03:15-0400",
        "2026-03-08T03:30-0400",
        "2026-03-08T03:45-0400",
    ]


def test_hourly_through_an_overlap_runs_each_wall_clock_hour_once() -> None:
    schedule = rrule("DTSTART;TZID=America/New_York:20261101T000000\nRRULE:FREQ=HOURLY;COUNT=4")
    got = local(schedule.occurrences_after(datetime(2026, 1, 1, tzinfo=UTC)), "America/New_York")
    assert got == [
        "2026-11-01T00:00-0400",
        "2026-11-01T01:00-0400",
        "2026-11-01T02:00-0500",
        "2026-11-01T03:00-0500",
    ]


def test_chisinau_uses_the_newest_tz_data() -> None:
    """The system's 2025b files put Moldova's spring change at 02:00 local; tzdata 2026
    puts it at 03:00. 02:30 therefore exists, and 03:30 does not."""
    schedule = rrule("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "Europe/Chisinau")
    got = schedule.next_after(datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert got == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 02:30 EET, before the change


def test_bare_rule_starts_at_the_anchor_truncated_to_the_minute() -> None:
    anchor = datetime(2026, 5, 4, 10, 17, 42, tzinfo=UTC)
    schedule = rrule("FREQ=DAILY", "Europe/Chisinau", anchor=anchor)
    got = local(islice(schedule.occurrences_after(anchor), 2), "Europe/Chisinau")
    assert got == ["2026-05-05T13:17+0300", "2026-05-06T13:17+0300"]
    assert schedule.next_after(anchor).second == 0  # type: ignore[union-attr]


def test_rrule_prefix_line_is_accepted() -> None:
    bare = rrule("FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0")
    prefixed = rrule("RRULE:FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0")
    after = datetime(2026, 2, 1, tzinfo=UTC)
    assert list(islice(bare.occurrences_after(after), 3)) == list(
        islice(prefixed.occurrences_after(after), 3)
    )


def test_utc_dtstart_expands_in_utc() -> None:
    schedule = rrule("DTSTART:20260301T120000Z\nRRULE:FREQ=DAILY;COUNT=40", "America/New_York")
    got = list(schedule.occurrences_after(datetime(2026, 3, 7, tzinfo=UTC)))
    assert {t.hour for t in got} == {12}  # the same UTC hour across New York's DST change


def test_floating_dtstart_uses_the_task_zone() -> None:
    schedule = rrule("DTSTART:20260301T090000\nRRULE:FREQ=DAILY;COUNT=2", "Asia/Kolkata")
    assert local(schedule.occurrences_after(datetime(2026, 1, 1, tzinfo=UTC)), "Asia/Kolkata") == [
        "2026-03-01T09:00+0530",
        "2026-03-02T09:00+0530",
    ]


def test_date_dtstart_runs_at_midnight() -> None:
    schedule = rrule("DTSTART;VALUE=DATE:20260301\nRRULE:FREQ=DAILY;COUNT=1", "UTC")
    assert schedule.next_after(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2026, 3, 1, tzinfo=UTC)


def test_rdate_and_exdate() -> None:
    schedule = rrule(
        "DTSTART;TZID=Europe/Chisinau:20260301T090000\n"
        "RRULE:FREQ=DAILY;COUNT=3\n"
        "RDATE;TZID=Europe/Chisinau:20260310T180000,20260311T180000\n"
        "EXDATE;TZID=Europe/Chisinau:20260302T090000\n"
        "RDATE:20260320T000000Z",
        "Europe/Chisinau",
    )
    got = local(schedule.occurrences_after(datetime(2026, 1, 1, tzinfo=UTC)), "Europe/Chisinau")
    assert got == [
        "2026-03-01T09:00+0200",
        "2026-03-03T09:00+0200",
        "2026-03-10T18:00+0200",
        "2026-03-11T18:00+0200",
        "2026-03-20T02:00+0200",
    ]


def test_a_set_without_rrule_includes_its_dtstart() -> None:
    schedule = rrule("DTSTART:20260301T090000Z\nRDATE:20260302T090000Z", "UTC")
    assert len(list(schedule.occurrences_after(datetime(2026, 1, 1, tzinfo=UTC)))) == 2


def test_folded_and_space_separated_lines() -> None:
    folded = rrule(
        "DTSTART;TZID=America/New_York:19961105T090000\r\n"
        "RRULE:FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;\r\n BYMONTHDAY=2,3,4,5,6,7,8"
    )
    spaced = rrule(
        "DTSTART;TZID=America/New_York:19961105T090000 "
        "RRULE:FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8"
    )
    after = datetime(1990, 1, 1, tzinfo=UTC)
    assert list(islice(folded.occurrences_after(after), 3)) == list(
        islice(spaced.occurrences_after(after), 3)
    )


@pytest.mark.parametrize(
    ("until", "last"),
    [
        ("20260305T090000Z", "2026-03-05T09:00"),  # UTC, inclusive
        ("20260305T085959Z", "2026-03-04T09:00"),
        ("20260305T090000", "2026-03-05T09:00"),  # floating: the zone's wall clock
        ("20260305", "2026-03-05T09:00"),  # a date: the whole day
    ],
)
def test_until_forms(until: str, last: str) -> None:
    schedule = rrule(f"DTSTART:20260301T090000\nRRULE:FREQ=DAILY;UNTIL={until}", "UTC")
    got = list(schedule.occurrences_after(datetime(2026, 1, 1, tzinfo=UTC)))
    assert got[-1].strftime("%Y-%m-%dT%H:%M") == last


def test_count_and_until_end_the_schedule() -> None:
    counted = rrule("DTSTART:20260301T090000Z\nRRULE:FREQ=DAILY;COUNT=3", "UTC")
    assert counted.next_after(datetime(2026, 3, 3, 9, tzinfo=UTC)) is None
    bounded = rrule("DTSTART:20260301T090000Z\nRRULE:FREQ=DAILY;UNTIL=20260303T090000Z", "UTC")
    assert bounded.next_after(datetime(2026, 3, 3, 9, tzinfo=UTC)) is None
    assert bounded.next_after(datetime(2026, 3, 3, 8, tzinfo=UTC)) is not None


INVALID = [
    ("", "empty"),
    ("FREQ=FORTNIGHTLY", "FREQ must be one of"),
    ("BYHOUR=9", "FREQ is required"),
    ("FREQ=DAILY;COUNT=2;UNTIL=20260101T000000Z", "COUNT and UNTIL"),
    ("FREQ=DAILY;BYHOUR=24", "BYHOUR: 24 is out of range"),
    ("FREQ=DAILY;BYMINUTE=x", "BYMINUTE: 'X' is not a number"),
    ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY: 0 is out of range"),
    ("FREQ=YEARLY;BYMONTH=13", "BYMONTH: 13 is out of range"),
    ("FREQ=DAILY;BYDAY=1MO", "BYDAY ordinals"),
    ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY is not allowed with FREQ=WEEKLY"),
    ("FREQ=MONTHLY;BYWEEKNO=1", "BYWEEKNO is only allowed with FREQ=YEARLY"),
    ("FREQ=DAILY;BYYEARDAY=1", "BYYEARDAY is not allowed with FREQ=DAILY"),
    ("FREQ=DAILY;BYSETPOS=1", "BYSETPOS needs another"),
    ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be between"),
    ("FREQ=DAILY;COUNT=100001", "COUNT must be between"),
    ("FREQ=DAILY;FOO=1", "unknown rule part 'FOO'"),
    ("FREQ=DAILY;FREQ=WEEKLY", "appears twice"),
    ("FREQ=DAILY;WKST=XX", "WKST"),
    ("FREQ=DAILY;UNTIL=2026-01-01", "not an RFC 5545 date"),
    ("DTSTART;TZID=Mars/Olympus:20260101T000000\nRRULE:FREQ=DAILY", "unknown time zone"),
    ("DTSTART:20261301T000000\nRRULE:FREQ=DAILY", "not a valid date"),
    ("DTSTART:20260101T000000Z\nDTSTART:20260101T000000Z\nRRULE:FREQ=DAILY", "more than once"),
    ("DTSTART:20260101T000000Z\nEXRULE:FREQ=DAILY", "EXRULE"),
    ("DTSTART:20260101T000000Z\nSUMMARY:hello", "unexpected line"),
    ("EXDATE:20260101T000000Z", "nothing would ever run"),
    ("FREQ=HOURLY;INTERVAL=4;BYHOUR=2", "empty set"),
    ("DTSTART:99991231T230000\nRRULE:FREQ=DAILY", "between 1900 and 9000"),
    ("DTSTART:18991231T230000Z\nRRULE:FREQ=DAILY", "between 1900 and 9000"),
    (
        "FREQ=DAILY;UNTIL=00010101T000000Z",
        "between 1900 and 9000",
    ),  # 4-hour steps from 12:00 never hit 2
]


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_invalid_recurrences_name_the_problem(text: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        parse_schedule("rrule", text, "UTC", anchor=ANCHOR)
    problem = failure.value.problems[0]
    assert problem.path == "$.schedule_expr"
    assert reason in problem.message


@pytest.mark.parametrize(
    "text",
    [
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31",
        "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=31",
        "FREQ=YEARLY;BYYEARDAY=366;BYMONTH=1",
        "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=3",
        "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;UNTIL=20200105T000000Z",
    ],
)
def test_never_firing_rules_have_no_next_occurrence(text: str) -> None:
    schedule = rrule(text, "UTC")
    assert schedule.next_after(datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_leap_day_rule_finds_the_next_leap_year_across_2100() -> None:
    schedule = rrule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYHOUR=0;BYMINUTE=0", "UTC")
    assert schedule.next_after(datetime(2097, 1, 1, tzinfo=UTC)) == datetime(
        2104, 2, 29, tzinfo=UTC
    )


REANCHOR_RULES = [
    "FREQ=YEARLY;INTERVAL=3;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=YEARLY;BYWEEKNO=1,53;BYDAY=MO,SU;WKST=SU",
    "FREQ=YEARLY;BYDAY=-1FR;BYMONTH=3,9",
    "FREQ=MONTHLY;INTERVAL=5;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1,-1",
    "FREQ=MONTHLY;INTERVAL=7",
    "FREQ=WEEKLY;INTERVAL=3;BYDAY=SA,SU;WKST=TH",
    "FREQ=WEEKLY;INTERVAL=2",
    "FREQ=DAILY;INTERVAL=9;BYHOUR=1,2,3;BYMINUTE=30",
    "FREQ=HOURLY;INTERVAL=5;BYMINUTE=10,50",
    "FREQ=HOURLY;INTERVAL=6;BYHOUR=2,8,14,20",
    "FREQ=MINUTELY;INTERVAL=37",
    "FREQ=MINUTELY;INTERVAL=20;BYHOUR=2,3",
    "FREQ=SECONDLY;INTERVAL=3601",
]


@pytest.mark.parametrize("rule", REANCHOR_RULES)
@pytest.mark.parametrize("zone", ["America/New_York", "Australia/Sydney", "Asia/Kolkata"])
def test_reanchored_expansion_equals_expansion_from_dtstart(rule: str, zone: str) -> None:
    """Asking from a late instant (re-anchored) gives what a walk from DTSTART gives."""
    tz = get_zone(zone)
    text = f"DTSTART;TZID={zone}:20240229T023000\nRRULE:{rule}"
    schedule = parse_rrule_schedule(text, tz, anchor=ANCHOR)
    afters = (
        datetime(2024, 3, 10, 7, 5, tzinfo=UTC),
        datetime(2025, 11, 2, 5, 30, tzinfo=UTC),
        datetime(2026, 10, 3, 16, 0, tzinfo=UTC),
        datetime(2027, 4, 4, 15, 45, tzinfo=UTC),
    )
    walked = _walk(schedule, datetime(2024, 2, 28, tzinfo=UTC), afters[-1])
    for after in afters:
        reference = [t for t in walked if t > after][:6]
        assert list(islice(schedule.occurrences_after(after), 6)) == reference, after


def _walk(schedule: RRuleSchedule, start: datetime, past: datetime) -> list[datetime]:
    """Every occurrence from ``start`` (DTSTART's period: no re-anchoring) to six beyond
    ``past``, read off one iterator."""
    found: list[datetime] = []
    beyond = 0
    for occurrence in schedule.occurrences_after(start):
        found.append(occurrence)
        beyond += occurrence > past
        if beyond >= 6:
            break
    return found


def test_expansion_stops_well_before_the_end_of_the_calendar() -> None:
    """A yearly rule from the year 9000 runs out quietly instead of overflowing."""
    schedule = rrule("DTSTART;TZID=America/New_York:90001231T230000\nRRULE:FREQ=YEARLY")
    found = list(schedule.occurrences_after(datetime(8999, 1, 1, tzinfo=UTC)))
    assert 800 < len(found) < 1000


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=SECONDLY;BYHOUR=9,17;BYMINUTE=0,30;BYSECOND=15",
        "FREQ=SECONDLY;BYHOUR=9;BYDAY=MO,WE",
        "FREQ=SECONDLY;BYMINUTE=7;BYSECOND=0,30",
        "FREQ=SECONDLY;BYSECOND=5,50;BYDAY=TU",
        "FREQ=MINUTELY;BYHOUR=10,23;BYMONTHDAY=2,3",
        "FREQ=MINUTELY;BYMINUTE=0,45;COUNT=30",
        "FREQ=HOURLY;BYHOUR=1,2,3;BYDAY=SA,SU",
        "FREQ=HOURLY;BYHOUR=8;BYMINUTE=5;COUNT=4",
    ],
)
def test_fine_rules_pinned_by_coarser_parts_are_evaluated_at_the_coarser_frequency(rule):
    """The rewrite (FREQ=SECONDLY;BYHOUR=… → FREQ=DAILY with full minute/second lists)
    yields exactly the instants dateutil yields for the rule as written."""
    spec = parse_rule(rule)
    freq, _ = coarsened(spec.freq, spec.options)
    assert freq < spec.freq  # rewritten
    start = datetime(2026, 3, 1, 8, 59, 58)  # a Sunday, not aligned with the rule
    as_written = du.rrulestr(f"DTSTART:20260301T085958\nRRULE:{rule}")
    expected = list(islice(as_written.xafter(start, inc=True), 400))
    schedule = rrule(f"DTSTART:20260301T085958Z\nRRULE:{rule}", zone="UTC")
    produced = list(
        islice(schedule.occurrences_after(start.replace(tzinfo=UTC) - timedelta(seconds=1)), 400)
    )
    assert [p.replace(tzinfo=None) for p in produced] == expected


def test_a_seconds_rule_on_rare_days_is_answered_at_once():
    """dateutil alone takes minutes to find this (23:59:59 on a leap-day Monday, 2044): the
    rule is evaluated as the equivalent FREQ=DAILY."""
    schedule = rrule(
        "DTSTART:20260101T000000Z\n"
        "RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=23;BYMINUTE=59;BYSECOND=59",
        zone="UTC",
    )
    assert schedule.next_after(ANCHOR) == datetime(2044, 2, 29, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=SECONDLY;INTERVAL=2;BYHOUR=23;BYMONTH=2;BYMONTHDAY=29",
        "FREQ=SECONDLY;BYMINUTE=5;BYMONTHDAY=31;BYSETPOS=1",
        "FREQ=MINUTELY;BYSETPOS=1;BYHOUR=23;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
        "FREQ=MINUTELY;INTERVAL=7;BYHOUR=23;BYMINUTE=1;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
    ],
)
def test_fine_rules_that_cannot_be_rewritten_on_calendar_days_are_refused(rule):
    with pytest.raises(ValidationFailed) as caught:
        rrule(rule)
    assert "too costly" in str(caught.value)


@pytest.mark.parametrize(
    ("rule", "first"),
    [
        ("FREQ=MINUTELY;INTERVAL=15;BYHOUR=9,10;BYDAY=MO,TU,WE,TH,FR", "2026-01-02T09:00"),
        ("FREQ=SECONDLY;INTERVAL=2;BYHOUR=23;BYDAY=MO", "2026-01-05T23:00"),
        ("FREQ=HOURLY;INTERVAL=2;BYHOUR=22;BYMONTH=2;BYMONTHDAY=29", "2028-02-29T22:00"),
    ],
)
def test_affordable_fine_rules_with_an_interval_are_kept(rule, first):
    schedule = rrule(f"DTSTART:20260101T000000Z\nRRULE:{rule}", zone="UTC")
    upcoming = schedule.next_after(ANCHOR)
    assert upcoming is not None
    assert local([upcoming], "UTC") == [first + "+0000"]
