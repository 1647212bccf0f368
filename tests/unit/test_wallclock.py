"""Local wall-clock time to instants: gaps and overlaps in five zones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.schedules.wallclock import gap_end, is_nonexistent, to_instant, to_instant_cron
from engine.timezones import get_zone

CASES = [
    # zone, local time, RFC 5545 instant, cron instant, nonexistent?
    ("America/New_York", "2026-03-08T02:30", "2026-03-08T07:30Z", "2026-03-08T07:00Z", True),
    ("America/New_York", "2026-11-01T01:30", "2026-11-01T05:30Z", "2026-11-01T05:30Z", False),
    ("America/New_York", "2026-07-01T09:00", "2026-07-01T13:00Z", "2026-07-01T13:00Z", False),
    ("Europe/Chisinau", "2026-03-29T03:15", "2026-03-29T01:15Z", "2026-03-29T01:00Z", True),
    ("Europe/Chisinau", "2026-03-29T02:15", "2026-03-29T00:15Z", "2026-03-29T00:15Z", False),
    ("Europe/Chisinau", "2026-10-25T03:15", "2026-10-25T00:15Z", "2026-10-25T00:15Z", False),
    ("Australia/Sydney", "2026-10-04T02:30", "2026-10-03T16:30Z", "2026-10-03T16:00Z", True),
    ("Australia/Sydney", "2026-04-05T02:30", "2026-04-04T15:30Z", "2026-04-04T15:30Z", False),
    ("Asia/Kolkata", "2026-03-08T02:30", "2026-03-07T21:00Z", "2026-03-07T21:00Z", False),
    ("UTC", "2026-03-29T01:30", "2026-03-29T01:30Z", "2026-03-29T01:30Z", False),
]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(("zone", "local", "rfc", "cron", "gap"), CASES)
def test_local_to_instant(zone: str, local: str, rfc: str, cron: str, gap: bool) -> None:
    tz = get_zone(zone)
    naive = datetime.fromisoformat(local)
    assert to_instant(naive, tz) == instant(rfc)
    assert to_instant_cron(naive, tz) == instant(cron)
    assert is_nonexistent(naive, tz) is gap


def test_gap_end_is_the_transition_for_every_time_in_the_gap() -> None:
    tz = get_zone("America/New_York")
    ends = {gap_end(datetime(2026, 3, 8, 2, minute), tz) for minute in range(0, 60, 7)}
    assert ends == {datetime(2026, 3, 8, 7, 0, tzinfo=UTC)}
