"""A pipeline may use ``events.publish`` only when the task's owner holds
``events:publish`` (issue 17, defect 11): checked at submit (POST, PATCH, validate), as a
422 naming the step; at run time the step fails if the scope was removed since
(tests/integration/test_publish_scope.py)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import quick_task

PUBLISHING = [
    {"id": "echo", "uses": "debug.echo", "with": {}},
    {"id": "announce", "uses": "events.publish", "with": {"topic": "work.done"}},
]


def publishing_task(**overrides: Any) -> dict[str, Any]:
    return quick_task(payload={"pipeline": PUBLISHING}, **overrides)


async def test_an_owner_without_the_scope_cannot_submit_a_publishing_pipeline(make_agent):
    writer = await make_agent("tasks:write", "tasks:read")
    response = await writer.client.post("/tasks", json=publishing_task())
    assert response.status_code == 422, response.text
    detail = response.json()["error"]["details"][0]
    assert detail["path"] == "$.payload.pipeline[1].uses"
    assert detail["type"] == "forbidden"
    assert "events:publish" in detail["message"]
    validated = (await writer.client.post("/tasks/validate", json=publishing_task())).json()
    assert validated["valid"] is False
    assert validated["problems"][0]["path"] == "$.payload.pipeline[1].uses"

    created = await writer.client.post("/tasks", json=quick_task())
    task_id = created.json()["id"]
    patch = await writer.client.patch(
        f"/tasks/{task_id}", json={"payload": {"pipeline": PUBLISHING}}
    )
    assert patch.status_code == 422, patch.text
    assert patch.json()["error"]["details"][0]["path"] == "$.payload.pipeline[1].uses"


async def test_an_owner_with_the_scope_may(make_agent):
    publisher = await make_agent("tasks:write", "tasks:read", "events:publish")
    assert (await publisher.client.post("/tasks", json=publishing_task())).status_code == 201


async def test_an_admin_creating_for_an_agent_is_judged_by_that_agents_scopes(client, make_agent):
    writer = await make_agent("tasks:write")
    response = await client.post("/tasks", json=publishing_task(created_by=writer.id))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["path"] == "$.payload.pipeline[1].uses"
    assert (await client.post("/tasks", json=publishing_task())).status_code == 201
