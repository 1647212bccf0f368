"""GET /workers: the registry with each worker's counters and whether it is live; admin
only (hosts and pids are the operator's business)."""

from __future__ import annotations

from datetime import datetime

import httpx
from fastapi import FastAPI

from store import workers as workers_store
from tests.api.conftest import MakeAgent


async def test_the_registry_with_live_and_silent_workers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async with app.state.pool.connection() as conn:
        await workers_store.register_worker(
            conn, worker_id="w-live", host="node-a", pid=101, concurrency=8
        )
        await workers_store.register_worker(
            conn, worker_id="w-silent", host="node-b", pid=202, concurrency=4
        )
        await workers_store.heartbeat_worker(conn, worker_id="w-live", inflight=3, processed=42)
        await conn.execute(
            "UPDATE workers SET started_at = now() - interval '1 hour',"
            " last_seen_at = now() - interval '40 seconds' WHERE id = 'w-silent'"
        )
    response = await client.get("/workers")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    silent, live = body["items"]  # oldest first
    assert (live["id"], live["host"], live["pid"], live["concurrency"]) == (
        "w-live",
        "node-a",
        101,
        8,
    )
    assert (live["inflight"], live["processed"], live["live"]) == (3, 42, True)
    assert (silent["id"], silent["live"]) == ("w-silent", False)
    assert datetime.fromisoformat(live["last_seen_at"]).tzinfo is not None


async def test_only_admins_see_the_workers(make_agent: MakeAgent) -> None:
    reader = await make_agent("runs:read", "tasks:read")
    assert (await reader.client.get("/workers")).status_code == 403
