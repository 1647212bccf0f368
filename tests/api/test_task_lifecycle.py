"""PATCH, DELETE, pause, resume, cancel, snooze and preview of stored tasks, with the
scheduler expanding in-process against the same database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from scheduler.tick import Scheduler

PIPELINE = {"pipeline": [{"id": "e", "uses": "debug.echo", "with": {"x": 1}}]}


def cron_task(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "every minute",
        "schedule_kind": "cron",
        "schedule_expr": "* * * * *",
        "timezone": "UTC",
        "payload": PIPELINE,
        **overrides,
    }


async def create(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/tasks", json=cron_task(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def tick(app: FastAPI, horizon: float = 3600) -> None:
    """One scheduler tick materialising ``horizon`` seconds ahead."""
    settings = replace(app.state.settings, scheduler_horizon_seconds=horizon)
    await Scheduler(settings, app.state.pool).tick()


async def waiting(app: FastAPI, task_id: str) -> list[dict[str, Any]]:
    async with app.state.pool.connection() as conn:
        cursor = await conn.execute(
            """
            SELECT id, trigger, state, scheduled_for, run_at, priority, concurrency_key
              FROM due_work
             WHERE task_id = %s ORDER BY run_at
            """,
            (task_id,),
        )
        return await cursor.fetchall()


def at(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def next_minute() -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)


async def test_next_run_at_is_the_first_occurrence(client: httpx.AsyncClient, app: FastAPI) -> None:
    task = await create(client, schedule_expr="0 9 * * *", timezone="Europe/Chisinau")
    preview = (await client.get(f"/tasks/{task['id']}/preview?count=1")).json()["occurrences"]
    assert at(task["next_run_at"]) == at(preview[0])
    await tick(app, horizon=2 * 86400)  # materialised: next_run_at now comes from due_work
    again = (await client.get(f"/tasks/{task['id']}")).json()
    assert at(again["next_run_at"]) == at(preview[0])


@pytest.mark.parametrize(
    ("kind", "expr"),
    [
        ("cron", "0 0 31 4 *"),
        ("cron", "0 0 30 2 *"),
        ("rrule", "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=3"),
        ("rrule", "FREQ=DAILY;UNTIL=20200101T000000Z"),
        ("rrule", "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31"),
    ],
)
async def test_never_firing_schedules_are_rejected_at_create(
    client: httpx.AsyncClient, kind: str, expr: str
) -> None:
    response = await client.post("/tasks", json=cron_task(schedule_kind=kind, schedule_expr=expr))
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert {
        "path": "$.schedule_expr",
        "message": "the schedule never fires after now",
        "type": "never_fires",
    } in details


async def test_pause_removes_pending_scheduled_work_and_is_idempotent(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    task = await create(client)
    await tick(app)
    assert len(await waiting(app, task["id"])) >= 59
    manual = await client.post(f"/tasks/{task['id']}/run_now")
    assert manual.status_code == 202
    for _ in range(2):
        paused = await client.post(f"/tasks/{task['id']}/pause")
        assert paused.status_code == 200
        assert paused.json()["status"] == "paused"
        assert paused.json()["next_run_at"] is None
    rows = await waiting(app, task["id"])
    assert [row["trigger"] for row in rows] == ["manual"]  # asked for explicitly: kept
    await tick(app)
    assert len(await waiting(app, task["id"])) == 1  # a paused task is not expanded


async def test_resume_continues_from_now(client: httpx.AsyncClient, app: FastAPI) -> None:
    task = await create(client)
    await client.post(f"/tasks/{task['id']}/pause")
    before = datetime.now(UTC)
    for _ in range(2):
        resumed = await client.post(f"/tasks/{task['id']}/resume")
        assert resumed.status_code == 200
        assert resumed.json()["status"] == "active"
    next_run = at(resumed.json()["next_run_at"])
    assert before < next_run <= before + timedelta(minutes=1)
    await tick(app, horizon=120)
    rows = await waiting(app, task["id"])
    assert rows and all(row["scheduled_for"] > before for row in rows)


async def test_illegal_transitions_are_conflicts(client: httpx.AsyncClient) -> None:
    task = await create(client)
    canceled = await client.post(f"/tasks/{task['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert (await client.post(f"/tasks/{task['id']}/cancel")).status_code == 200
    for action in ("resume", "pause"):
        response = await client.post(f"/tasks/{task['id']}/{action}")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "conflict"
    snooze = await client.post(f"/tasks/{task['id']}/snooze", json={"delay_seconds": 60})
    assert snooze.status_code == 409
    patch = await client.patch(f"/tasks/{task['id']}", json={"title": "x"})
    assert patch.status_code == 409


async def test_cancel_removes_waiting_runs_and_records_requested_ones(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    task = await create(client)
    await tick(app)
    manual = (await client.post(f"/tasks/{task['id']}/run_now")).json()
    await client.post(f"/tasks/{task['id']}/cancel")
    assert await waiting(app, task["id"]) == []
    run = (await client.get(f"/runs/{manual['id']}")).json()
    assert run["status"] == "canceled"
    assert run["error"]["message"] == "task canceled"
    assert (await client.get(f"/tasks/{task['id']}")).json()["next_run_at"] is None


async def test_delete_cancels_and_hides(client: httpx.AsyncClient, app: FastAPI) -> None:
    task = await create(client)
    await tick(app)
    deleted = await client.delete(f"/tasks/{task['id']}")
    assert deleted.status_code == 204
    assert await waiting(app, task["id"]) == []
    assert (await client.get(f"/tasks/{task['id']}")).status_code == 404
    assert (await client.delete(f"/tasks/{task['id']}")).status_code == 404
    assert (await client.post(f"/tasks/{task['id']}/resume")).status_code == 404
    listed = (await client.get("/tasks")).json()["items"]
    assert task["id"] not in [t["id"] for t in listed]


async def test_another_agents_task_is_not_found(client: httpx.AsyncClient, make_agent) -> None:
    task = await create(client)
    other = await make_agent("tasks:read", "tasks:write")
    for method, path, body in [
        ("POST", "pause", None),
        ("POST", "resume", None),
        ("POST", "cancel", None),
        ("POST", "snooze", {"delay_seconds": 5}),
        ("PATCH", "", {"title": "mine now"}),
        ("DELETE", "", None),
        ("GET", "preview", None),
    ]:
        url = f"/tasks/{task['id']}" + (f"/{path}" if path else "")
        response = await other.client.request(method, url, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get(f"/tasks/{task['id']}")).json()["status"] == "active"


async def test_lifecycle_needs_tasks_write(client: httpx.AsyncClient, make_agent) -> None:
    task = await create(client)
    reader = await make_agent("tasks:read")
    assert (await reader.client.post(f"/tasks/{task['id']}/pause")).status_code == 403
    # tasks:read suffices for a preview; the admin's task is simply not the reader's.
    assert (await reader.client.get(f"/tasks/{task['id']}/preview")).status_code == 404


async def test_snooze_delays_the_next_occurrence_not_yet_materialised(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    task = await create(client, schedule_expr="0 * * * *")
    first = at(task["next_run_at"])
    snoozed = await client.post(f"/tasks/{task['id']}/snooze", json={"delay_seconds": 600})
    assert snoozed.status_code == 200, snoozed.text
    rows = await waiting(app, task["id"])
    assert len(rows) == 1
    assert rows[0]["scheduled_for"] == first  # the occurrence keeps its identity
    assert rows[0]["run_at"] == first + timedelta(seconds=600)
    assert at(snoozed.json()["next_run_at"]) == first + timedelta(seconds=600)
    await tick(app, horizon=3 * 3600)  # the scheduler carries on after it, no duplicate
    scheduled = [row["scheduled_for"] for row in await waiting(app, task["id"])]
    assert scheduled == sorted(set(scheduled)) and scheduled[0] == first


async def test_snooze_delays_a_materialised_run_and_next_run_at_shows_the_next(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    task = await create(client)
    await tick(app, horizon=300)
    first = (await waiting(app, task["id"]))[0]
    snoozed = await client.post(f"/tasks/{task['id']}/snooze", json={"delay_seconds": 90})
    assert snoozed.status_code == 200
    moved = next(r for r in await waiting(app, task["id"]) if r["id"] == first["id"])
    assert moved["run_at"] >= first["run_at"] + timedelta(seconds=90)
    # The next minute's occurrence is now earlier than the snoozed one: next_run_at says so.
    assert at(snoozed.json()["next_run_at"]) == first["scheduled_for"] + timedelta(minutes=1)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"delay_seconds": 0},
        {"delay_seconds": -5},
        {"delay_seconds": "60"},
        {"delay_seconds": 10**9},
    ],
)
async def test_snooze_validates_its_body(client: httpx.AsyncClient, body: dict) -> None:
    task = await create(client)
    response = await client.post(f"/tasks/{task['id']}/snooze", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"].startswith("$")


async def test_snooze_with_nothing_pending_is_a_conflict(client: httpx.AsyncClient) -> None:
    task = await create(client, schedule_kind="event", schedule_expr="orders.created")
    response = await client.post(f"/tasks/{task['id']}/snooze", json={"delay_seconds": 60})
    assert response.status_code == 409


async def test_patch_without_schedule_change_keeps_the_work(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    task = await create(client)
    await tick(app)
    before = await waiting(app, task["id"])
    change = {"title": "renamed", "priority": 2, "concurrency_key": "lane"}
    patched = await client.patch(f"/tasks/{task['id']}", json=change)
    assert patched.status_code == 200, patched.text
    assert (patched.json()["title"], patched.json()["concurrency_key"]) == ("renamed", "lane")
    after = await waiting(app, task["id"])
    assert [r["id"] for r in after] == [r["id"] for r in before]
    assert {r["priority"] for r in after} == {2}  # waiting runs follow the new priority
    owner = patched.json()["created_by"]
    assert {r["concurrency_key"] for r in after} == {f"{owner}/lane"}  # and the owner's key


async def test_patch_of_the_schedule_recomputes_pending_work(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    task = await create(client)
    await tick(app)
    patched = await client.patch(
        f"/tasks/{task['id']}",
        json={"schedule_expr": "30 9 * * *", "timezone": "Asia/Kolkata"},
    )
    assert patched.status_code == 200, patched.text
    assert await waiting(app, task["id"]) == []  # the old minutes are gone
    preview = (await client.get(f"/tasks/{task['id']}/preview?count=1")).json()["occurrences"]
    assert preview[0].endswith("T09:30:00+05:30")
    assert at(patched.json()["next_run_at"]) == at(preview[0])
    await tick(app, horizon=2 * 86400)
    rows = await waiting(app, task["id"])
    assert [r["scheduled_for"] for r in rows] == [
        at(preview[0]),
        at(preview[0]) + timedelta(days=1),
    ]


async def test_patch_to_another_kind(client: httpx.AsyncClient, app: FastAPI) -> None:
    task = await create(client)
    await tick(app)
    to_event = await client.patch(
        f"/tasks/{task['id']}", json={"schedule_kind": "event", "schedule_expr": "a.b"}
    )
    assert to_event.status_code == 200 and to_event.json()["next_run_at"] is None
    assert await waiting(app, task["id"]) == []
    to_rrule = await client.patch(
        f"/tasks/{task['id']}",
        json={"schedule_kind": "rrule", "schedule_expr": "FREQ=HOURLY;BYMINUTE=15"},
    )
    assert to_rrule.status_code == 200
    assert at(to_rrule.json()["next_run_at"]).minute == 15


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"schedule_expr": "not cron"}, "$.schedule_expr"),
        ({"schedule_expr": "0 0 31 4 *"}, "$.schedule_expr"),
        ({"timezone": "Nowhere/City"}, "$.timezone"),
        ({"priority": 12}, "$.priority"),
        ({"created_by": "00000000-0000-0000-0000-000000000000"}, "$"),
        (
            {"payload": {"pipeline": [{"id": "x", "uses": "no.such.tool"}]}},
            "$.payload.pipeline[0].uses",
        ),
        ({}, "$"),
    ],
)
async def test_patch_is_validated_as_a_whole_document(
    client: httpx.AsyncClient, body: dict, path: str
) -> None:
    task = await create(client)
    response = await client.patch(f"/tasks/{task['id']}", json=body)
    assert response.status_code == 422, response.text
    assert path in [d["path"] for d in response.json()["error"]["details"]]
    unchanged = (await client.get(f"/tasks/{task['id']}")).json()
    assert unchanged["schedule_expr"] == "* * * * *"


async def test_patch_of_a_paused_task_then_resume(client: httpx.AsyncClient) -> None:
    task = await create(client)
    await client.post(f"/tasks/{task['id']}/pause")
    patched = await client.patch(f"/tasks/{task['id']}", json={"schedule_expr": "0 12 * * *"})
    assert patched.status_code == 200
    assert patched.json()["status"] == "paused" and patched.json()["next_run_at"] is None
    resumed = (await client.post(f"/tasks/{task['id']}/resume")).json()
    assert at(resumed["next_run_at"]).hour == 12


async def test_a_paused_once_task_that_missed_its_time_runs_when_resumed(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    task = await create(client, schedule_kind="once", schedule_expr=soon)
    await tick(app)
    await client.post(f"/tasks/{task['id']}/pause")
    assert await waiting(app, task["id"]) == []
    resumed = (await client.post(f"/tasks/{task['id']}/resume")).json()
    assert at(resumed["next_run_at"]) == at(soon)
    await tick(app)
    assert [r["scheduled_for"] for r in await waiting(app, task["id"])] == [at(soon)]


async def test_task_preview(client: httpx.AsyncClient) -> None:
    task = await create(
        client,
        schedule_kind="rrule",
        schedule_expr="DTSTART;TZID=Australia/Sydney:20271002T023000\nRRULE:FREQ=DAILY;COUNT=3",
        timezone="Australia/Sydney",
    )
    response = await client.get(
        f"/tasks/{task['id']}/preview", params={"count": 5, "after": "2026-01-01T00:00:00Z"}
    )
    assert response.json()["occurrences"] == [
        "2027-10-02T02:30:00+10:00",
        "2027-10-03T03:30:00+11:00",  # 02:30 does not exist that night: shifted by the gap
        "2027-10-04T02:30:00+11:00",
    ]
    bad = await client.get(f"/tasks/{task['id']}/preview", params={"after": "soon"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["path"] == "query.after"
    too_many = await client.get(f"/tasks/{task['id']}/preview", params={"count": 1001})
    assert too_many.status_code == 422


async def test_event_task_preview_is_empty(client: httpx.AsyncClient) -> None:
    task = await create(client, schedule_kind="event", schedule_expr="a.*")
    assert (await client.get(f"/tasks/{task['id']}/preview")).json() == {"occurrences": []}
