"""POST /events: which tasks a topic reaches, what the queued runs carry, and validation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from engine.errors import ValidationFailed
from store.events import publish_event

PIPELINE = {
    "pipeline": [{"id": "e", "uses": "debug.echo", "with": {"order": "${event.payload.order_id}"}}]
}


async def event_task(client: httpx.AsyncClient, pattern: str, **overrides: Any) -> str:
    response = await client.post(
        "/tasks",
        json={
            "title": pattern,
            "schedule_kind": "event",
            "schedule_expr": pattern,
            "payload": PIPELINE,
            **overrides,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_topic_queues_one_run_per_matching_active_task(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    exact = await event_task(client, "orders.eu.created")
    wildcard = await event_task(client, "orders.*.created")
    leading = await event_task(client, "*.eu.created")
    await event_task(client, "orders.*")  # one segment only: no match
    await event_task(client, "orders.eu.created.v2")  # deeper: no match
    paused = await event_task(client, "orders.eu.created")
    await client.post(f"/tasks/{paused}/pause")
    deleted = await event_task(client, "orders.eu.created")
    await client.delete(f"/tasks/{deleted}")
    await client.post(  # a cron task is never reached by events
        "/tasks",
        json={
            "title": "c",
            "schedule_kind": "cron",
            "schedule_expr": "0 0 1 1 *",
            "payload": PIPELINE,
        },
    )

    response = await client.post(
        "/events", json={"topic": "orders.eu.created", "payload": {"order_id": 42}}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert {run["task_id"] for run in body["runs"]} == {exact, wildcard, leading}
    run = (await client.get(f"/runs/{body['runs'][0]['run_id']}")).json()
    assert run["trigger"] == "event"
    assert run["status"] == "queued"
    assert run["event"]["id"] == body["event_id"]
    assert run["event"]["topic"] == "orders.eu.created"
    assert run["event"]["payload"] == {"order_id": 42}
    assert "published_at" in run["event"]
    async with app.state.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT topic, payload FROM events WHERE id = %s", (body["event_id"],)
        )
        assert await cursor.fetchone() == {
            "topic": "orders.eu.created",
            "payload": {"order_id": 42},
        }


async def test_no_match_still_records_the_event(client: httpx.AsyncClient) -> None:
    response = await client.post("/events", json={"topic": "nobody.listens"})
    assert response.status_code == 202
    assert response.json()["runs"] == []
    assert response.json()["event_id"]


async def test_deep_topics_match_segment_by_segment(client: httpx.AsyncClient) -> None:
    pattern = "a.b.c.d.e.*.g.h.i.j"
    task = await event_task(client, pattern)
    await event_task(client, "a.b.c.d.e.f.g.h.i")
    response = await client.post("/events", json={"topic": "a.b.c.d.e.f.g.h.i.j"})
    assert [run["task_id"] for run in response.json()["runs"]] == [task]


async def test_an_agents_events_reach_only_its_own_tasks(
    client: httpx.AsyncClient, make_agent
) -> None:
    alice = await make_agent("tasks:write", "tasks:read", "events:publish")
    bob = await make_agent("tasks:write", "tasks:read", "events:publish")
    alices = await event_task(alice.client, "deploy.done")
    bobs = await event_task(bob.client, "deploy.done")
    admins = await event_task(client, "deploy.done")

    by_alice = (await alice.client.post("/events", json={"topic": "deploy.done"})).json()
    assert [run["task_id"] for run in by_alice["runs"]] == [alices]
    by_admin = (await client.post("/events", json={"topic": "deploy.done"})).json()
    assert {run["task_id"] for run in by_admin["runs"]} == {alices, bobs, admins}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "$"),
        ({"topic": ""}, "$.topic"),
        ({"topic": "orders.*"}, "$.topic"),
        ({"topic": "a..b"}, "$.topic"),
        ({"topic": 5}, "$.topic"),
        ({"topic": "x" * 201}, "$.topic"),
        ({"topic": "a", "extra": True}, "$"),
    ],
)
async def test_invalid_events_are_422(client: httpx.AsyncClient, body: dict, path: str) -> None:
    response = await client.post("/events", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["path"] == path


async def test_publishing_needs_the_scope(make_agent) -> None:
    writer = await make_agent("tasks:write")
    response = await writer.client.post("/events", json={"topic": "a.b"})
    assert response.status_code == 403


async def test_publish_event_validates_the_topic_itself(app: FastAPI) -> None:
    """The store function (also used by the events.publish tool) refuses a bad topic."""
    async with app.state.pool.connection() as conn:
        with pytest.raises(ValidationFailed) as failure:
            await publish_event(
                conn, topic="a.*", payload={}, published_by=None, owner_filter=None, fanout_limit=9
            )
    assert failure.value.problems[0].path == "$.topic"


async def test_a_source_publishes_once(client: httpx.AsyncClient, app: FastAPI) -> None:
    """The events.publish tool passes ``<run id>:<step id>`` as the source: a retried run gets
    the first publication's answer and queues nothing more."""
    listener = await event_task(client, "orders.replayed")

    async def publish(n: int, source: str) -> tuple[Any, list[dict[str, Any]]]:
        async with app.state.pool.connection() as conn:
            return await publish_event(
                conn,
                topic="orders.replayed",
                payload={"n": n},
                published_by=None,
                fanout_limit=1000,
                owner_filter=None,
                source=source,
            )

    first = await publish(1, "run-1:publish")
    again = await publish(2, "run-1:publish")
    other = await publish(3, "run-2:publish")
    assert again == first
    assert [str(r["task_id"]) for r in first[1]] == [listener]
    assert other[0] != first[0]
    runs = (await client.get("/runs", params={"task_id": listener})).json()["items"]
    assert sorted(r["id"] for r in runs) == sorted(str(r["run_id"]) for r in first[1] + other[1])
