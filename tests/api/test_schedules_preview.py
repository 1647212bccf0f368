"""POST /schedules/preview: the RFC 5545 examples end to end, and input validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from engine.schedules import parse_schedule
from engine.schedules.preview import preview
from engine.timezones import get_zone
from tests.unit.rfc5545_examples import EXAMPLES, Example

NEW_YORK = get_zone("America/New_York")


def with_offset(local: str) -> str:
    return datetime.fromisoformat(local).replace(tzinfo=NEW_YORK).isoformat()


def dtstart_of(example: Example) -> datetime:
    stamp = example.recurrence.splitlines()[0].rsplit(":", 1)[1]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=NEW_YORK)


async def test_every_rfc5545_example_comes_out_exactly(client: httpx.AsyncClient) -> None:
    for example in EXAMPLES:
        after = (dtstart_of(example) - timedelta(seconds=1)).astimezone(UTC)
        count = len(example.expected) + (0 if example.open_ended else 1)
        response = await client.post(
            "/schedules/preview",
            json={
                "schedule_kind": "rrule",
                "schedule_expr": example.recurrence,
                "timezone": "America/New_York",
                "count": count,
                "after": after.isoformat(),
            },
        )
        assert response.status_code == 200, (example.title, response.text)
        expected = [with_offset(t) for t in example.expected]
        assert response.json() == {"occurrences": expected}, example.title


async def test_offsets_are_the_zones(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/schedules/preview",
        json={
            "schedule_kind": "rrule",
            "schedule_expr": "DTSTART;TZID=America/New_York:19971025T090000\n"
            "RRULE:FREQ=DAILY;COUNT=2",
            "timezone": "America/New_York",
            "after": "1997-01-01T00:00:00Z",
        },
    )
    assert response.json()["occurrences"] == [
        "1997-10-25T09:00:00-04:00",
        "1997-10-26T09:00:00-05:00",
    ]


async def test_cron_preview_in_chisinau(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/schedules/preview",
        json={
            "schedule_kind": "cron",
            "schedule_expr": "0 9 * * mon-fri",
            "timezone": "Europe/Chisinau",
            "count": 3,
            "after": "2026-03-27T12:00:00",  # naive: Chisinau wall-clock time
        },
    )
    assert response.status_code == 200
    assert response.json()["occurrences"] == [
        "2026-03-30T09:00:00+03:00",
        "2026-03-31T09:00:00+03:00",
        "2026-04-01T09:00:00+03:00",
    ]


async def test_after_defaults_to_now_and_is_exclusive(client: httpx.AsyncClient) -> None:
    body = {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "UTC", "count": 2}
    before = datetime.now(UTC)
    occurrences = (await client.post("/schedules/preview", json=body)).json()["occurrences"]
    first = datetime.fromisoformat(occurrences[0])
    assert before < first <= before + timedelta(minutes=1)
    again = await client.post("/schedules/preview", json={**body, "after": occurrences[0]})
    assert again.json()["occurrences"][0] == occurrences[1]


async def test_timezone_defaults_to_the_servers(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/schedules/preview",
        json={"schedule_kind": "once", "schedule_expr": "2030-01-01T09:00:00"},
    )
    assert response.json() == {"occurrences": ["2030-01-01T09:00:00+00:00"]}


@pytest.mark.parametrize(
    "body",
    [
        {"schedule_kind": "cron", "schedule_expr": "0 0 31 4 *"},
        {"schedule_kind": "cron", "schedule_expr": "0 0 30 2 *"},
        {
            "schedule_kind": "rrule",
            "schedule_expr": "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=2",
        },
        {"schedule_kind": "rrule", "schedule_expr": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"},
        {"schedule_kind": "once", "schedule_expr": "2020-01-01T00:00:00Z"},
        {"schedule_kind": "event", "schedule_expr": "orders.*.created"},
    ],
)
async def test_schedules_that_never_fire_preview_empty(
    client: httpx.AsyncClient, body: dict
) -> None:
    response = await client.post("/schedules/preview", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"occurrences": []}


@pytest.mark.parametrize(
    ("body", "path", "reason"),
    [
        ({"schedule_kind": "cron", "schedule_expr": "61 * * * *"}, "$.schedule_expr", "minute"),
        ({"schedule_kind": "cron", "schedule_expr": "* * * *"}, "$.schedule_expr", "5 fields"),
        ({"schedule_kind": "rrule", "schedule_expr": "FREQ=SOMETIMES"}, "$.schedule_expr", "FREQ"),
        ({"schedule_kind": "once", "schedule_expr": "tomorrow"}, "$.schedule_expr", "ISO 8601"),
        ({"schedule_kind": "event", "schedule_expr": "a..b"}, "$.schedule_expr", "segment"),
        ({"schedule_kind": "daily", "schedule_expr": "x"}, "$.schedule_kind", ""),
        ({"schedule_kind": "cron"}, "$", "schedule_expr"),
        (
            {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "Mars/Base"},
            "$.timezone",
            "unknown time zone",
        ),
        ({"schedule_kind": "cron", "schedule_expr": "* * * * *", "count": 0}, "$.count", ""),
        ({"schedule_kind": "cron", "schedule_expr": "* * * * *", "count": 1001}, "$.count", ""),
        ({"schedule_kind": "cron", "schedule_expr": "* * * * *", "count": "5"}, "$.count", ""),
        (
            {"schedule_kind": "cron", "schedule_expr": "* * * * *", "after": "yesterday"},
            "$.after",
            "ISO 8601",
        ),
        (
            {"schedule_kind": "cron", "schedule_expr": "* * * * *", "after": "0001-01-01T00:00:00"},
            "$.after",
            "between",
        ),
        ({"schedule_kind": "cron", "schedule_expr": "* * * * *", "extra": 1}, "$", "extra"),
    ],
)
async def test_invalid_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, body: dict, path: str, reason: str
) -> None:
    response = await client.post("/schedules/preview", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(d["path"] == path and reason in d["message"] for d in error["details"]), error


async def test_preview_needs_tasks_read(make_agent) -> None:
    body = {"schedule_kind": "cron", "schedule_expr": "* * * * *"}
    reader = await make_agent("tasks:read")
    assert (await reader.client.post("/schedules/preview", json=body)).status_code == 200
    publisher = await make_agent("events:publish")
    assert (await publisher.client.post("/schedules/preview", json=body)).status_code == 403


async def test_a_rule_with_decades_between_occurrences_is_previewed_within_a_budget(
    client: httpx.AsyncClient,
) -> None:
    """A leap day that is a Monday comes every 28 years: 1000 of them would take seconds of
    computing, so the preview returns what its 2 s budget finds (at least one), in order."""
    response = await client.post(
        "/schedules/preview",
        json={
            "schedule_kind": "rrule",
            "schedule_expr": "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=23;"
            "BYMINUTE=59;BYSECOND=59",
            "timezone": "UTC",
            "count": 1000,
            "after": "2026-01-01T00:00:00Z",
        },
    )
    assert response.status_code == 200, response.text
    occurrences = response.json()["occurrences"]
    assert occurrences[:2] == ["2044-02-29T23:59:59+00:00", "2072-02-29T23:59:59+00:00"]
    assert occurrences == sorted(occurrences)
    assert all(datetime.fromisoformat(o).weekday() == 0 for o in occurrences)


def test_the_preview_budget_stops_the_search_and_keeps_what_it_found() -> None:
    schedule = parse_schedule("cron", "* * * * *", "UTC", anchor=datetime(2026, 1, 1, tzinfo=UTC))
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert len(preview(schedule, "UTC", after=after, count=500)) == 500
    assert preview(schedule, "UTC", after=after, count=500, budget_seconds=0) == [
        "2026-01-01T00:01:00+00:00"
    ]
