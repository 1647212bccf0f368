"""The audit log: written for every successful mutating call by middleware, readable by
admins with filters and cursor pagination, never in the way of a response."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from store.db import connect
from tests.api.conftest import quick_task


async def entries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/audit", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_mutations_are_recorded_with_actor_subject_details_and_request_id(
    client: httpx.AsyncClient, make_agent
):
    bot = await make_agent("tasks:read", "tasks:write", "runs:write")
    created = await bot.client.post(
        "/tasks",
        json=quick_task(
            payload={
                "params": {"api_key": "k-123", "city": "Chisinau"},
                "pipeline": [{"id": "e", "uses": "debug.echo", "with": {}}],
            }
        ),
        headers={"X-Request-ID": "audit-create-1"},
    )
    assert created.status_code == 201
    task_id = created.json()["id"]
    run = await bot.client.post(f"/tasks/{task_id}/run_now")
    assert (await bot.client.post(f"/runs/{run.json()['id']}/cancel")).status_code == 200

    mine = await entries(client, actor=bot.id)
    assert [e["action"] for e in mine] == ["runs.cancel", "tasks.run_now", "tasks.create"]
    create = mine[-1]
    assert create["actor_name"] == bot.name
    assert create["subject_type"] == "task" and create["subject_id"] == task_id
    assert create["request_id"] == "audit-create-1"
    assert create["details"]["method"] == "POST"
    assert create["details"]["route"] == "/tasks"
    assert create["details"]["status"] == 201
    assert create["details"]["body"]["payload"]["params"] == {
        "api_key": "[redacted]",
        "city": "Chisinau",
    }
    run_now = mine[1]
    assert run_now["subject_id"] == task_id
    assert run_now["details"]["result_id"] == run.json()["id"]
    assert mine[0]["subject_type"] == "run" and mine[0]["subject_id"] == run.json()["id"]


async def test_agent_management_is_recorded_without_tokens(client: httpx.AsyncClient):
    created = await client.post("/agents", json={"name": "audited", "scopes": []})
    agent_id = created.json()["id"]
    rotated = await client.post(f"/agents/{agent_id}/tokens", params={"keep_existing": True})
    await client.patch(f"/agents/{agent_id}", json={"scopes": ["tasks:read"]})
    await client.delete(f"/agents/{agent_id}")
    history = await entries(client, subject_type="agent", subject_id=agent_id)
    assert [e["action"] for e in history] == [
        "agents.delete",
        "agents.update",
        "agents.tokens.create",
        "agents.create",
    ]
    assert history[2]["details"]["query"] == {"keep_existing": "true"}
    text = str(history)
    for token in (created.json()["token"], rotated.json()["token"]):
        assert token not in text


async def test_reads_failures_and_read_only_posts_are_not_recorded(
    client: httpx.AsyncClient, make_agent
):
    bot = await make_agent("tasks:read")
    await bot.client.get("/tasks")
    await bot.client.post("/tasks/validate", json=quick_task())  # needs only tasks:read
    await bot.client.post("/tasks", json=quick_task())  # 403
    await client.post("/tasks", json={"title": 5})  # 422
    assert await entries(client, actor=bot.id) == []
    assert all(e["details"]["status"] < 400 for e in await entries(client))


async def test_filters_and_cursor_pagination(client: httpx.AsyncClient, make_agent):
    bot = await make_agent("tasks:write")
    ids = []
    for _ in range(5):
        ids.append((await bot.client.post("/tasks", json=quick_task())).json()["id"])
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"actor": bot.id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/audit", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    assert len(await entries(client, action="tasks.create", actor=bot.id)) == 5
    assert len(await entries(client, action="tasks.*", actor=bot.id)) == 5
    assert await entries(client, action="agents.*", actor=bot.id) == []
    [one] = await entries(client, subject_type="task", subject_id=ids[2])
    assert one["subject_id"] == ids[2]
    newest = (await entries(client, actor=bot.id))[0]
    assert await entries(client, actor=bot.id, since=newest["at"]) == [newest]
    assert newest not in await entries(client, actor=bot.id, until=newest["at"])


async def test_only_admins_read_the_audit_log(make_agent):
    bot = await make_agent("tasks:read", "tasks:write", "runs:read", "runs:write")
    assert (await bot.client.get("/audit")).status_code == 403


async def test_a_failing_audit_write_never_breaks_the_response(
    client: httpx.AsyncClient, fresh_db: str, caplog: pytest.LogCaptureFixture
):
    conn = await connect(fresh_db)
    async with conn:
        await conn.execute("ALTER TABLE audit_log RENAME TO audit_log_away")
        try:
            with caplog.at_level(logging.ERROR, logger="ordinaut.api.audit"):
                created = await client.post("/tasks", json=quick_task())
        finally:
            await conn.execute("ALTER TABLE audit_log_away RENAME TO audit_log")
    assert created.status_code == 201
    assert (await client.get(f"/tasks/{created.json()['id']}")).status_code == 200
    assert "could not record the audit entry" in caplog.text


async def test_concurrent_mutations_each_get_their_entry(client: httpx.AsyncClient, make_agent):
    bot = await make_agent("tasks:write")
    answers = await asyncio.gather(
        *(bot.client.post("/tasks", json=quick_task(title=f"t{i}")) for i in range(25))
    )
    created = {a.json()["id"] for a in answers}
    # Written before each answer went out (group commit), so readable at once.
    recorded = await entries(client, actor=bot.id)
    assert {e["subject_id"] for e in recorded} == created
    assert len(recorded) == 25
