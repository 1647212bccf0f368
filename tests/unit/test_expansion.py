"""Expansion planning: the horizon, the high-water mark and the catch-up policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import ValidationFailed
from engine.expansion import ExpansionPlan, initial_state, latest_before, plan_expansion
from engine.schedules import Schedule, parse_schedule

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
HORIZON = timedelta(seconds=10)
GRACE = timedelta(seconds=60)


def every_minute() -> Schedule:
    schedule = parse_schedule("cron", "* * * * *", "UTC", anchor=NOW)
    assert schedule is not None
    return schedule


def plan(
    schedule: Schedule,
    mark: datetime | None,
    catch_up: str = "latest",
    now: datetime = NOW,
    limit: int = 1000,
) -> ExpansionPlan:
    return plan_expansion(
        schedule,
        expanded_until=mark,
        now=now,
        horizon=HORIZON,
        catch_up=catch_up,
        grace=GRACE,
        limit=limit,
    )


def test_on_time_occurrences_within_the_horizon() -> None:
    result = plan(every_minute(), NOW - timedelta(seconds=1))
    assert result.occurrences == [NOW]
    assert result.expanded_until == NOW + HORIZON
    assert result.next_expand_at == NOW + timedelta(minutes=1)


def test_nothing_due_moves_the_mark_to_the_horizon() -> None:
    result = plan(every_minute(), NOW + timedelta(seconds=1))
    assert result.occurrences == []
    assert result.expanded_until == NOW + HORIZON


def test_late_but_within_grace_is_not_missed() -> None:
    result = plan(every_minute(), NOW - timedelta(seconds=61), catch_up="none")
    assert result.occurrences == [NOW - timedelta(seconds=60), NOW]


@pytest.mark.parametrize(
    ("catch_up", "expected_missed"),
    [("latest", 1), ("all", 58), ("none", 0)],
)
def test_catch_up_after_an_hour_down(catch_up: str, expected_missed: int) -> None:
    mark = NOW - timedelta(hours=1)  # scheduler down for an hour
    result = plan(every_minute(), mark, catch_up=catch_up)
    missed = [o for o in result.occurrences if o < NOW - GRACE]
    upcoming = [o for o in result.occurrences if o >= NOW - GRACE]
    assert len(missed) == expected_missed
    if catch_up == "latest":
        assert missed == [NOW - timedelta(minutes=2)]  # the last one older than the grace
    assert upcoming == [NOW - timedelta(minutes=1), NOW]
    assert result.expanded_until == NOW + HORIZON


def test_catch_up_all_is_batched_by_the_limit() -> None:
    mark = NOW - timedelta(days=1)
    first = plan(every_minute(), mark, catch_up="all", limit=100)
    assert len(first.occurrences) == 100
    assert first.expanded_until == first.occurrences[-1]
    assert first.next_expand_at == first.occurrences[-1] + timedelta(minutes=1)
    second = plan(every_minute(), first.expanded_until, catch_up="all", limit=100)
    assert second.occurrences[0] == first.occurrences[-1] + timedelta(minutes=1)


def test_latest_missed_is_found_without_walking_a_year_of_minutes() -> None:
    schedule = every_minute()
    result = plan(schedule, NOW - timedelta(days=365), catch_up="latest")
    assert result.occurrences[0] == NOW - timedelta(minutes=2)


def test_latest_before_a_sparse_schedule() -> None:
    yearly = parse_schedule("cron", "0 0 1 1 *", "UTC", anchor=NOW)
    assert yearly is not None
    found = latest_before(yearly, NOW, after=datetime(2000, 6, 1, tzinfo=UTC))
    assert found == datetime(2026, 1, 1, tzinfo=UTC)
    assert latest_before(yearly, NOW, after=datetime(2026, 1, 2, tzinfo=UTC)) is None


def test_once_in_the_past_still_runs_whatever_the_policy() -> None:
    once = parse_schedule("once", "2020-01-01T00:00:00Z", "UTC", anchor=NOW)
    assert once is not None
    expanded_until, next_expand_at = initial_state(once, NOW)
    assert expanded_until is None
    assert next_expand_at == datetime(2020, 1, 1, tzinfo=UTC)
    result = plan(once, expanded_until, catch_up="none")
    assert result.occurrences == [datetime(2020, 1, 1, tzinfo=UTC)]
    assert result.next_expand_at is None


def test_exhausted_schedule_has_no_next_expansion() -> None:
    counted = parse_schedule(
        "rrule", "DTSTART:20260302T115959Z\nRRULE:FREQ=SECONDLY;COUNT=3", "UTC", anchor=NOW
    )
    assert counted is not None
    result = plan(counted, NOW - timedelta(seconds=5))
    assert len(result.occurrences) == 3
    assert result.next_expand_at is None


def test_initial_state_of_recurring_and_event_tasks() -> None:
    assert initial_state(None, NOW) == (None, None)
    assert initial_state(every_minute(), NOW) == (NOW, NOW + timedelta(minutes=1))


@pytest.mark.parametrize(
    "text", ["9999-12-31T23:00:00", "0001-01-01T00:00:00Z", "1899-12-31T00:00:00"]
)
def test_once_dates_outside_the_supported_years_are_invalid(text: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        parse_schedule("once", text, "America/New_York", anchor=NOW)
    assert "between 1900 and 9000" in failure.value.problems[0].message
