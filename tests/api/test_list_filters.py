"""GET /runs and GET /tasks: every filter narrows the list to exactly the matching rows, and
cursor paging visits every row once, newest first (ties broken by id), ending with a null
``next_cursor``. Runs are queued with ``run_now`` or written straight to ``runs`` /
``due_work`` with chosen queue times (no worker runs here)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from store import due_work as due_work_store
from tests.api.conftest import MakeAgent, quick_task

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
PIPELINE = {"pipeline": [{"id": "e", "uses": "debug.echo", "with": {"x": 1}}]}
ERROR = {"step_id": None, "type": "boom", "message": "failed", "retryable": False}


async def new_task(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await http.post("/tasks", json=quick_task(**overrides))
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


async def run_now(http: httpx.AsyncClient, task_id: str) -> str:
    response = await http.post(f"/tasks/{task_id}/run_now")
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def finished_run(
    app: FastAPI, task: dict[str, Any], *, status: str = "succeeded", queued_at: datetime = T0
) -> str:
    """A finished run of ``task`` written to history with the given queue time."""
    run_id = uuid.uuid4()
    async with app.state.pool.connection() as conn:
        await conn.execute(
            """
            INSERT INTO runs (id, task_id, agent_id, trigger, status, scheduled_for, queued_at,
                              attempt, finished_at, error)
            VALUES (%s, %s, %s, 'manual', %s, %s, %s, 1, %s, %s)
            """,
            (
                run_id,
                task["id"],
                task["created_by"],
                status,
                queued_at,
                queued_at,
                queued_at + timedelta(seconds=1),
                None if status == "succeeded" else Jsonb(ERROR),
            ),
        )
    return str(run_id)


async def set_queued_at(app: FastAPI, run_id: str, at: datetime) -> None:
    """Move an unfinished run's queue time (``due_work.created_at``)."""
    async with app.state.pool.connection() as conn:
        await conn.execute("UPDATE due_work SET created_at = %s WHERE id = %s", (at, run_id))


async def list_ids(http: httpx.AsyncClient, path: str, **params: Any) -> list[str]:
    """The ids of one page of at most 500 items (all of them in these tests)."""
    response = await http.get(path, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    return [item["id"] for item in body["items"]]


async def walk(
    http: httpx.AsyncClient, path: str, limit: int, **params: Any
) -> list[dict[str, Any]]:
    """Every item, following ``next_cursor`` page by page; each page but the last is full
    and carries a cursor, the last one has ``next_cursor`` null."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await http.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit, "a page before the last is short"
    raise AssertionError("paging never ended")


def newest_first(items: list[dict[str, Any]], key: str) -> bool:
    """Whether ``items`` are in (``key`` desc, id desc) order, strictly (so no duplicates)."""
    keys = [(datetime.fromisoformat(i[key]), UUID(i["id"])) for i in items]
    return all(a > b for a, b in itertools.pairwise(keys))


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


async def test_runs_filter_by_task_id(client: httpx.AsyncClient, app: FastAPI) -> None:
    first = await new_task(client, title="first")
    second = await new_task(client, title="second")
    first_runs = {await run_now(client, first["id"]), await run_now(client, first["id"])}
    first_runs.add(await finished_run(app, first))
    second_runs = {await run_now(client, second["id"]), await finished_run(app, second)}

    assert set(await list_ids(client, "/runs", task_id=first["id"])) == first_runs
    assert set(await list_ids(client, "/runs", task_id=second["id"])) == second_runs
    assert set(await list_ids(client, "/runs")) == first_runs | second_runs
    assert await list_ids(client, "/runs", task_id=str(uuid.uuid4())) == []


async def test_runs_filter_by_status(client: httpx.AsyncClient, app: FastAPI) -> None:
    task = await new_task(client)
    running = await run_now(client, task["id"])
    async with app.state.pool.connection() as conn:
        leased = await due_work_store.lease_batch(
            conn, worker_id="w-test", limit=10, lease_seconds=300
        )
    assert [str(row["id"]) for row in leased] == [running]
    queued = await run_now(client, task["id"])
    failed = await run_now(client, task["id"])
    async with app.state.pool.connection() as conn:
        await conn.execute(
            """
            UPDATE due_work
               SET state = 'failed', attempt = 1, last_error = %s,
                   run_at = now() + interval '1 hour'
             WHERE id = %s
            """,
            (Jsonb({**ERROR, "retryable": True}), failed),
        )
    expected = {
        "running": running,
        "queued": queued,
        "failed": failed,
        "succeeded": await finished_run(app, task, status="succeeded"),
        "dead": await finished_run(app, task, status="dead"),
        "canceled": await finished_run(app, task, status="canceled"),
    }

    for status, run_id in expected.items():
        response = await client.get("/runs", params={"status": status})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert ids(items) == [run_id], status
        assert items[0]["status"] == status
    assert set(await list_ids(client, "/runs")) == set(expected.values())
    # Filters combine: this task's queued runs, and none of another task's.
    other = await new_task(client, title="other")
    await run_now(client, other["id"])
    assert await list_ids(client, "/runs", task_id=task["id"], status="queued") == [queued]
    assert await list_ids(client, "/runs", task_id=other["id"], status="dead") == []
    assert (await client.get("/runs", params={"status": "done"})).status_code == 422


async def test_runs_since_and_until_bound_the_queue_time(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    task = await new_task(client)
    at = [T0 + timedelta(hours=h) for h in range(5)]
    by_hour = [await finished_run(app, task, queued_at=at[h]) for h in (0, 1, 3, 4)]
    pending = await run_now(client, task["id"])  # an unfinished run is filtered the same way
    await set_queued_at(app, pending, at[2])
    hour = dict(zip((0, 1, 3, 4), by_hour, strict=True)) | {2: pending}

    def runs_at(*hours: int) -> list[str]:
        return [hour[h] for h in sorted(hours, reverse=True)]  # newest first

    # since is inclusive, until exclusive.
    assert await list_ids(client, "/runs", since=at[1].isoformat()) == runs_at(1, 2, 3, 4)
    assert await list_ids(client, "/runs", until=at[3].isoformat()) == runs_at(0, 1, 2)
    assert await list_ids(
        client, "/runs", since=at[1].isoformat(), until=at[3].isoformat()
    ) == runs_at(1, 2)
    between = (at[1] + timedelta(seconds=1)).isoformat()
    assert await list_ids(client, "/runs", since=between) == runs_at(2, 3, 4)
    assert await list_ids(client, "/runs", until=between) == runs_at(0, 1)
    # Offsets are honoured: 15:00+02:00 is 13:00Z (hour 1).
    plus_two = (at[1] + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
    assert await list_ids(client, "/runs", since=plus_two) == runs_at(1, 2, 3, 4)
    assert await list_ids(client, "/runs", since=at[4].isoformat(), until=at[4].isoformat()) == []
    assert (await client.get("/runs", params={"since": "yesterday"})).status_code == 422


async def test_runs_cursor_paging_visits_every_run_once_newest_first(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    task = await new_task(client)
    other = await new_task(client, title="other")
    made: list[str] = []
    # Five runs share one queue time (ties broken by id, across page boundaries), finished
    # and unfinished runs interleave in time, and the newest are still queued.
    for _ in range(3):
        made.append(await finished_run(app, task, queued_at=T0))
    for _ in range(2):
        run_id = await run_now(client, task["id"])
        await set_queued_at(app, run_id, T0)
        made.append(run_id)
    made.append(await finished_run(app, task, queued_at=T0 - timedelta(minutes=5)))
    pending = await run_now(client, task["id"])
    await set_queued_at(app, pending, T0 - timedelta(minutes=2))
    made.append(pending)
    made.append(await finished_run(app, other, status="dead", queued_at=T0 + timedelta(hours=1)))
    made += [await run_now(client, task["id"]), await run_now(client, other["id"])]
    assert len(set(made)) == 10

    everything = await walk(client, "/runs", limit=500)
    assert set(ids(everything)) == set(made) and len(everything) == len(made)
    assert newest_first(everything, "queued_at")
    for limit in (1, 2, 3, 4, 9, 10, 11):
        paged = await walk(client, "/runs", limit=limit)
        assert ids(paged) == ids(everything), f"limit={limit}"

    # Paging within a filter stays within it.
    of_task = await walk(client, "/runs", limit=2, task_id=task["id"])
    assert ids(of_task) == [i["id"] for i in everything if i["task_id"] == task["id"]]
    assert len(of_task) == 8
    just_after = (T0 + timedelta(microseconds=1)).isoformat()
    tied = await walk(client, "/runs", limit=2, since=T0.isoformat(), until=just_after)
    assert ids(tied) == [
        i["id"] for i in everything if datetime.fromisoformat(i["queued_at"]) == T0
    ]
    assert sorted(ids(tied)) == sorted(made[:5])
    assert (await client.get("/runs", params={"cursor": "not-a-cursor"})).status_code == 422


async def test_runs_first_page_and_cursor(client: httpx.AsyncClient) -> None:
    task = await new_task(client)
    made = [await run_now(client, task["id"]) for _ in range(3)]
    first = (await client.get("/runs", params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (await client.get("/runs", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert rest["next_cursor"] is None
    assert sorted(ids(first["items"]) + ids(rest["items"])) == sorted(made)
    exact = (await client.get("/runs", params={"limit": 3})).json()
    assert len(exact["items"]) == 3 and exact["next_cursor"] is None
    assert (await client.get("/runs", params={"limit": 0})).status_code == 422
    assert (await client.get("/runs", params={"limit": 501})).status_code == 422


async def test_an_agent_lists_only_its_own_runs(
    client: httpx.AsyncClient, app: FastAPI, make_agent: MakeAgent
) -> None:
    alice = await make_agent("tasks:read", "tasks:write", "runs:read")
    bob = await make_agent("tasks:read", "tasks:write", "runs:read")
    alice_task = await new_task(alice.client, title="alice's")
    bob_task = await new_task(bob.client, title="bob's")
    alice_runs = [await run_now(alice.client, alice_task["id"]) for _ in range(3)]
    alice_runs.append(await finished_run(app, alice_task, status="dead"))
    bob_runs = [await run_now(bob.client, bob_task["id"]), await finished_run(app, bob_task)]

    for limit in (1, 500):
        seen = await walk(alice.client, "/runs", limit=limit)
        assert sorted(ids(seen)) == sorted(alice_runs), limit
    assert sorted(ids(await walk(bob.client, "/runs", limit=1))) == sorted(bob_runs)
    assert await list_ids(alice.client, "/runs", task_id=bob_task["id"]) == []
    assert await list_ids(alice.client, "/runs", status="succeeded") == []
    assert sorted(await list_ids(client, "/runs")) == sorted(alice_runs + bob_runs)


async def test_tasks_filter_by_status(client: httpx.AsyncClient, app: FastAPI) -> None:
    active = await new_task(client, title="active")
    paused = await new_task(client, title="paused")
    canceled = await new_task(client, title="canceled")
    completed = await new_task(client, title="completed")
    deleted = await new_task(client, title="deleted")
    assert (await client.post(f"/tasks/{paused['id']}/pause")).status_code == 200
    assert (await client.post(f"/tasks/{canceled['id']}/cancel")).status_code == 200
    assert (await client.delete(f"/tasks/{deleted['id']}")).status_code in (200, 204)
    async with app.state.pool.connection() as conn:
        await conn.execute(
            "UPDATE tasks SET status = 'completed', next_expand_at = NULL WHERE id = %s",
            (completed["id"],),
        )

    expected = {
        "active": active,
        "paused": paused,
        "canceled": canceled,  # a deleted task is canceled too, but hidden
        "completed": completed,
    }
    for status, task in expected.items():
        response = await client.get("/tasks", params={"status": status})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert ids(items) == [task["id"]], status
        assert items[0]["status"] == status
    assert set(await list_ids(client, "/tasks")) == {t["id"] for t in expected.values()}
    assert (await client.get("/tasks", params={"status": "deleted"})).status_code == 422


async def test_tasks_filter_by_schedule_kind(client: httpx.AsyncClient) -> None:
    kinds = {
        "once": {},
        "cron": {"schedule_kind": "cron", "schedule_expr": "0 9 * * *", "timezone": "UTC"},
        "rrule": {"schedule_kind": "rrule", "schedule_expr": "FREQ=HOURLY;BYMINUTE=15"},
        "event": {"schedule_kind": "event", "schedule_expr": "orders.*"},
    }
    made: dict[str, list[str]] = {}
    for kind, fields in kinds.items():
        made[kind] = [(await new_task(client, title=f"{kind}-{n}", **fields))["id"] for n in (1, 2)]
    paused_cron = made["cron"][0]
    assert (await client.post(f"/tasks/{paused_cron}/pause")).status_code == 200

    for kind, task_ids in made.items():
        items = (await client.get("/tasks", params={"schedule_kind": kind})).json()["items"]
        assert sorted(ids(items)) == sorted(task_ids), kind
        assert {item["schedule_kind"] for item in items} == {kind}
    both = {"schedule_kind": "cron", "status": "paused"}
    assert await list_ids(client, "/tasks", **both) == [paused_cron]
    both = {"schedule_kind": "cron", "status": "active"}
    assert await list_ids(client, "/tasks", **both) == [made["cron"][1]]
    assert await list_ids(client, "/tasks", schedule_kind="event", status="paused") == []
    assert (await client.get("/tasks", params={"schedule_kind": "daily"})).status_code == 422


async def test_tasks_cursor_paging_visits_every_task_once_newest_first(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    made = [(await new_task(client, title=f"t{n}"))["id"] for n in range(9)]
    event = await new_task(client, title="e", schedule_kind="event", schedule_expr="a.b")
    made.append(event["id"])
    # Four tasks share one creation time, so ties cross page boundaries.
    async with app.state.pool.connection() as conn:
        await conn.execute(
            "UPDATE tasks SET created_at = %s WHERE id = ANY(%s::uuid[])", (T0, made[2:6])
        )

    everything = await walk(client, "/tasks", limit=500)
    assert sorted(ids(everything)) == sorted(made)
    assert newest_first(everything, "created_at")
    for limit in (1, 2, 3, 4, 9, 10, 11):
        paged = await walk(client, "/tasks", limit=limit)
        assert ids(paged) == ids(everything), f"limit={limit}"
    once = await walk(client, "/tasks", limit=2, schedule_kind="once")
    assert ids(once) == [i["id"] for i in everything if i["id"] != event["id"]]
    assert (await client.get("/tasks", params={"cursor": "bm9wZQ"})).status_code == 422


async def test_an_agent_pages_through_only_its_own_tasks(
    client: httpx.AsyncClient, make_agent: MakeAgent
) -> None:
    alice = await make_agent("tasks:read", "tasks:write")
    bob = await make_agent("tasks:read", "tasks:write")
    alice_tasks = [(await new_task(alice.client, title=f"a{n}"))["id"] for n in range(3)]
    bob_tasks = [(await new_task(bob.client, title=f"b{n}"))["id"] for n in range(2)]

    assert ids(await walk(alice.client, "/tasks", limit=1)) == alice_tasks[::-1]
    assert ids(await walk(bob.client, "/tasks", limit=1)) == bob_tasks[::-1]
    assert sorted(await list_ids(client, "/tasks")) == sorted(alice_tasks + bob_tasks)


@pytest.mark.parametrize("path", ["/runs", "/tasks"])
async def test_an_empty_list_has_no_cursor(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, params={"limit": 1})
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}
