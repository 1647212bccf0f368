"""Per-agent quotas (issue 17): each one refuses with a body that names it, an admin sets
and resets them, an agent cannot set its own, and the Python client raises at once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ordinaut import AsyncClient, QuotaExceededError
from tests.api.conftest import AgentHandle, client_for, quick_task
from tests.factories import insert_dead_run
from tests.support import ADMIN_TOKEN

WRITER = ("tasks:read", "tasks:write", "runs:read", "runs:write", "events:publish")


async def set_quotas(client: httpx.AsyncClient, agent: AgentHandle, **quotas: Any) -> dict:
    response = await client.patch(f"/agents/{agent.id}", json={"quotas": quotas})
    assert response.status_code == 200, response.text
    return response.json()


def assert_names_quota(response: httpx.Response, status: int, name: str, limit: int) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"][0]["path"] == f"quotas.{name}"
    assert f"quota {name}" in error["message"] and f"at most {limit} " in error["message"]
    assert "PATCH /agents/" in error["message"]  # how to raise it
    assert f"ORDINAUT_QUOTA_{name.upper()}" in error["message"]
    assert "retry-after" not in response.headers


async def test_agents_show_the_quotas_that_apply_and_their_overrides(app_factory, fresh_db):
    app = await app_factory(quota_active_tasks=7, quota_event_fanout=3)
    async with client_for(app, ADMIN_TOKEN) as client:
        created = await client.post("/agents", json={"name": "q1", "scopes": list(WRITER)})
        agent = created.json()
        assert agent["quotas"] == {
            "active_tasks": 7,
            "queued_runs": 10000,
            "concurrent_runs": 1000,
            "event_fanout": 3,
        }
        assert set(agent["quota_overrides"].values()) == {None}
        patched = await client.patch(
            f"/agents/{agent['id']}", json={"quotas": {"active_tasks": 50, "queued_runs": 5}}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["quotas"]["active_tasks"] == 50
        assert patched.json()["quota_overrides"]["queued_runs"] == 5
        reset = await client.patch(
            f"/agents/{agent['id']}", json={"quotas": {"active_tasks": None}}
        )
        assert reset.json()["quotas"] == {**agent["quotas"], "queued_runs": 5}
        assert reset.json()["quota_overrides"]["active_tasks"] is None
        async with client_for(app, agent["token"]) as own:
            me = await own.get("/agents/me")
            assert me.json()["quotas"]["queued_runs"] == 5


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", 2_000_000_000])
async def test_a_quota_must_be_a_positive_integer(client, make_agent, value):
    agent = await make_agent(*WRITER)
    response = await client.patch(f"/agents/{agent.id}", json={"quotas": {"queued_runs": value}})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["path"] == "$.quotas.queued_runs"


async def test_an_unknown_quota_is_refused(client, make_agent):
    agent = await make_agent(*WRITER)
    response = await client.patch(f"/agents/{agent.id}", json={"quotas": {"tasks": 3}})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "$.quotas.tasks"


async def test_an_agent_cannot_set_its_own_quotas(make_agent):
    agent = await make_agent(*WRITER)
    response = await agent.client.patch("/agents/me", json={"quotas": {"active_tasks": 10**6}})
    assert response.status_code == 403, response.text
    assert "admin" in response.json()["error"]["message"]
    assert "quotas" in response.json()["error"]["message"]


async def test_the_active_tasks_quota_refuses_a_create(client, make_agent):
    agent = await make_agent(*WRITER)
    await set_quotas(client, agent, active_tasks=2)
    ids = []
    for n in range(2):
        created = await agent.client.post("/tasks", json=quick_task(title=f"t{n}"))
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    refused = await agent.client.post("/tasks", json=quick_task(title="one too many"))
    assert_names_quota(refused, 429, "active_tasks", 2)
    # an admin creating for the agent is held to the agent's quota too
    on_behalf = await client.post("/tasks", json=quick_task(created_by=agent.id))
    assert_names_quota(on_behalf, 429, "active_tasks", 2)
    # a canceled task frees its place; a paused one keeps it
    await agent.client.post(f"/tasks/{ids[0]}/pause")
    assert (await agent.client.post("/tasks", json=quick_task())).status_code == 429
    await agent.client.post(f"/tasks/{ids[1]}/cancel")
    assert (await agent.client.post("/tasks", json=quick_task())).status_code == 201


async def test_concurrent_creates_cannot_overshoot_the_quota(client, make_agent):
    agent = await make_agent(*WRITER)
    await set_quotas(client, agent, active_tasks=3)
    answers = await asyncio.gather(
        *(agent.client.post("/tasks", json=quick_task(title=f"t{n}")) for n in range(8))
    )
    assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 5


async def test_the_queued_runs_quota_refuses_run_now(client, make_agent):
    agent = await make_agent(*WRITER)
    await set_quotas(client, agent, queued_runs=2)
    task = (await agent.client.post("/tasks", json=quick_task())).json()
    for _ in range(2):
        queued = await agent.client.post(f"/tasks/{task['id']}/run_now")
        assert queued.status_code == 202, queued.text
    refused = await agent.client.post(f"/tasks/{task['id']}/run_now")
    assert_names_quota(refused, 429, "queued_runs", 2)
    # the quota is the task owner's, whoever asks
    assert (await client.post(f"/tasks/{task['id']}/run_now")).status_code == 429
    runs = await agent.client.get("/runs", params={"task_id": task["id"]})
    assert len(runs.json()["items"]) == 2


async def test_the_queued_runs_quota_refuses_the_retry_of_a_dead_run(
    client, make_agent, fresh_db: str
):
    """A dead run's retry queues a new run, so it counts against the quota like run_now;
    once a place is free it is accepted."""
    agent = await make_agent(*WRITER)
    await set_quotas(client, agent, queued_runs=1)
    task = (await agent.client.post("/tasks", json=quick_task())).json()
    dead = await insert_dead_run(fresh_db, task["id"], agent.id)
    queued = await agent.client.post(f"/tasks/{task['id']}/run_now")
    assert queued.status_code == 202, queued.text
    refused = await agent.client.post(f"/runs/{dead}/retry")
    assert_names_quota(refused, 429, "queued_runs", 1)
    canceled = await agent.client.post(f"/runs/{queued.json()['id']}/cancel")
    assert canceled.status_code == 200, canceled.text
    retried = await agent.client.post(f"/runs/{dead}/retry")
    assert retried.status_code == 202, retried.text
    assert retried.json()["retry_of"] == dead


async def test_the_event_fanout_quota_refuses_the_whole_event(client, make_agent):
    agent = await make_agent(*WRITER)
    await set_quotas(client, agent, event_fanout=2)
    for n in range(3):
        created = await agent.client.post(
            "/tasks",
            json=quick_task(title=f"e{n}", schedule_kind="event", schedule_expr="orders.created"),
        )
        assert created.status_code == 201, created.text
    refused = await agent.client.post("/events", json={"topic": "orders.created"})
    assert_names_quota(refused, 422, "event_fanout", 2)
    assert (await agent.client.get("/runs")).json()["items"] == []  # nothing queued
    await set_quotas(client, agent, event_fanout=3)
    published = await agent.client.post("/events", json={"topic": "orders.created"})
    assert published.status_code == 202, published.text
    assert len(published.json()["runs"]) == 3


async def test_the_client_raises_a_quota_error_at_once(app: FastAPI, client, make_agent):
    agent = await make_agent(*WRITER)
    await set_quotas(client, agent, queued_runs=1)
    task = (await agent.client.post("/tasks", json=quick_task())).json()
    sent = 0

    async def count(request: httpx.Request) -> None:
        nonlocal sent
        sent += 1

    transport = httpx.ASGITransport(app=app)
    async with AsyncClient(url="http://api", token=agent.token, transport=transport) as sdk:
        sdk._http.event_hooks["request"].append(count)
        await sdk.tasks.run_now(task["id"])
        with pytest.raises(QuotaExceededError) as refused:
            await sdk.tasks.run_now(task["id"])
    assert refused.value.status == 429 and refused.value.quota == "queued_runs"
    assert sent == 2  # the refused request was not sent again
