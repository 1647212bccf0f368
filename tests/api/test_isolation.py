"""Object isolation: an agent sees and changes only its own tasks and runs; another agent's
object is a 404 (no existence leak); ``created_by`` other than the caller needs admin."""

from __future__ import annotations

import uuid

import httpx

from tests.api.conftest import quick_task

ALL = ("tasks:read", "tasks:write", "runs:read", "runs:write", "events:publish", "tools:read")


async def test_agents_see_only_their_own_tasks_and_runs(client: httpx.AsyncClient, make_agent):
    alice = await make_agent(*ALL)
    bob = await make_agent(*ALL)
    task = (await alice.client.post("/tasks", json=quick_task(title="alice's"))).json()
    run = (await alice.client.post(f"/tasks/{task['id']}/run_now")).json()

    assert [t["id"] for t in (await alice.client.get("/tasks")).json()["items"]] == [task["id"]]
    assert (await bob.client.get("/tasks")).json()["items"] == []
    assert task["id"] in [t["id"] for t in (await client.get("/tasks")).json()["items"]]

    assert (await bob.client.get(f"/tasks/{task['id']}")).status_code == 404
    missing = await bob.client.get(f"/tasks/{uuid.uuid4()}")
    foreign = await bob.client.get(f"/tasks/{task['id']}")
    # Not yours and does not exist look the same (apart from the id in the message).
    assert missing.status_code == foreign.status_code == 404
    assert missing.json()["error"]["code"] == foreign.json()["error"]["code"]

    assert (await bob.client.get("/runs")).json()["items"] == []
    by_task = await bob.client.get("/runs", params={"task_id": task["id"]})
    assert by_task.status_code == 200 and by_task.json()["items"] == []
    assert (await bob.client.get(f"/runs/{run['id']}")).status_code == 404
    assert (await bob.client.post(f"/runs/{run['id']}/cancel")).status_code == 404
    assert (await bob.client.post(f"/tasks/{task['id']}/run_now")).status_code == 404
    assert [r["id"] for r in (await alice.client.get("/runs")).json()["items"]] == [run["id"]]


async def test_created_by_someone_else_needs_admin(client: httpx.AsyncClient, make_agent):
    alice = await make_agent("tasks:read", "tasks:write")
    bob = await make_agent("tasks:read", "tasks:write")

    forged = await alice.client.post("/tasks", json=quick_task(created_by=bob.id))
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "forbidden"
    own = await alice.client.post("/tasks", json=quick_task(created_by=alice.id.upper()))
    assert own.status_code == 201
    assert own.json()["created_by"] == alice.id

    delegated = await client.post("/tasks", json=quick_task(created_by=bob.id))
    assert delegated.status_code == 201
    assert delegated.json()["created_by"] == bob.id
    assert (await bob.client.get(f"/tasks/{delegated.json()['id']}")).status_code == 200

    nobody = await client.post("/tasks", json=quick_task(created_by=str(uuid.uuid4())))
    assert nobody.status_code == 422
    assert nobody.json()["error"]["details"][0]["path"] == "$.created_by"
    garbage = await client.post("/tasks", json=quick_task(created_by="not-a-uuid"))
    assert garbage.status_code == 422
