"""RRULE anchor signatures: anchors with equal signatures give the same occurrences once
past the later anchor plus the margin (what lets the scheduler share one parsed schedule
among a million DTSTART-less tasks), and anchors that differ where it matters differ."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from engine.schedules import parse_schedule
from engine.schedules.rrule import ANCHOR_MARGIN, anchor_signature
from engine.timezones import get_zone

RULES = [
    "FREQ=HOURLY;BYMINUTE=15",
    "FREQ=HOURLY",
    "FREQ=HOURLY;INTERVAL=5",
    "FREQ=MINUTELY;INTERVAL=7",
    "FREQ=MINUTELY;INTERVAL=30",
    "FREQ=MINUTELY;BYMINUTE=0,30",
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=3;BYHOUR=2;BYMINUTE=30",
    "FREQ=WEEKLY",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;WKST=SU",
    "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=9",
    "FREQ=MONTHLY;INTERVAL=2",
    "FREQ=YEARLY;INTERVAL=2",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=17;BYMINUTE=0",
    "RRULE:FREQ=DAILY;BYHOUR=2,3;BYMINUTE=30\nRRULE:FREQ=WEEKLY;INTERVAL=3;BYDAY=SU",
    "RRULE:FREQ=HOURLY;INTERVAL=2\nEXDATE:20260310T040000Z",
]
ZONES = ["UTC", "America/New_York", "Europe/Chisinau", "Australia/Lord_Howe", "Asia/Kolkata"]
BASE = datetime(2026, 2, 20, tzinfo=UTC)


def anchors(rng: random.Random, count: int) -> list[datetime]:
    """Creation minutes over ~50 days around two DST changes, at a few times of day, some a
    year or two later (so that yearly and monthly signatures meet too)."""
    return [
        BASE
        + timedelta(days=rng.randrange(50) + rng.choice([0, 0, 365, 730]))
        + timedelta(minutes=rng.choice([0, 1, 30, 150, 7 * 60 + 3]))
        for _ in range(count)
    ]


def first(text: str, zone: str, anchor: datetime, after: datetime, n: int = 40) -> list[datetime]:
    schedule = parse_schedule("rrule", text, zone, anchor=anchor)
    assert schedule is not None
    return list(islice(schedule.occurrences_after(after), n))


@pytest.mark.parametrize("text", RULES)
@pytest.mark.parametrize("zone", ZONES)
def test_equal_signatures_mean_equal_occurrences_past_the_margin(text: str, zone: str) -> None:
    rng = random.Random(f"{text}{zone}")
    tz = get_zone(zone)
    by_signature: dict[object, datetime] = {}
    compared = 0
    for anchor in anchors(rng, 80):
        signature = anchor_signature(text, tz, anchor)
        assert signature is not None and signature != ()
        earlier = by_signature.setdefault(signature, anchor)
        if earlier == anchor:
            continue
        later = max(earlier, anchor)
        for after in (later + ANCHOR_MARGIN, later + ANCHOR_MARGIN + timedelta(days=17, hours=5)):
            assert first(text, zone, earlier, after) == first(text, zone, anchor, after)
            compared += 1
    assert compared > 0


@pytest.mark.parametrize(
    ("text", "a", "b"),
    [
        # 7-minute steps counted from different minutes
        ("FREQ=MINUTELY;INTERVAL=7", "2026-03-01T10:00Z", "2026-03-01T10:01Z"),
        # DAILY without BYHOUR runs at the anchor's hour and minute
        ("FREQ=DAILY", "2026-03-01T10:00Z", "2026-03-01T11:00Z"),
        # every other week from different weeks
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "2026-03-02T10:00Z", "2026-03-09T10:00Z"),
    ],
)
def test_anchors_that_matter_differ(text: str, a: str, b: str) -> None:
    utc = get_zone("UTC")
    first_anchor, second_anchor = datetime.fromisoformat(a), datetime.fromisoformat(b)
    assert anchor_signature(text, utc, first_anchor) != anchor_signature(text, utc, second_anchor)
    after = second_anchor + ANCHOR_MARGIN
    assert first(text, "UTC", first_anchor, after) != first(text, "UTC", second_anchor, after)


def test_dtstart_makes_the_anchor_irrelevant_and_count_makes_it_all() -> None:
    utc = get_zone("UTC")
    with_start = "DTSTART;TZID=Europe/Chisinau:20260101T090000\nRRULE:FREQ=DAILY;INTERVAL=2"
    assert anchor_signature(with_start, utc, BASE) == ()
    assert anchor_signature("FREQ=DAILY;COUNT=5", utc, BASE) is None
