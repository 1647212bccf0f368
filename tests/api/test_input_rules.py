"""One set of rules for every JSON body and every text field (issue 17, defects 1, 10, 13).

- Non-finite numbers (``NaN``, ``Infinity``, ``1e400``), which Python's ``json`` accepts,
  are a 422 naming their path wherever a body is read, never a value that reaches a
  duration or an "interval out of range".
- A lone UTF-16 surrogate in any string or key is a 422 naming its path (PostgreSQL text
  cannot hold it; it was a 500 in ``title``, ``description``, ``concurrency_key`` and
  ``dedupe_key``).
- A zone that the tz data cannot load (``localtime``) is a 422 on create, PATCH and preview.
- Every route with a JSON body reads it the same way: the body is JSON whatever the
  ``Content-Type`` says (``POST /agents`` answered a puzzling 422 without
  ``application/json`` while ``POST /tasks`` accepted it).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.openapi import api_routes
from tests.api.conftest import quick_task

JSON = {"content-type": "application/json"}


def raw(document: Any, **replacements: str) -> bytes:
    """``document`` as JSON text with each placeholder string replaced by raw JSON text."""
    text = json.dumps(document)
    for placeholder, replacement in replacements.items():
        text = text.replace(json.dumps(placeholder), replacement)
    return text.encode()


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert details, response.text
    return details[0]


async def a_task(client: httpx.AsyncClient, **overrides: Any) -> str:
    response = await client.post("/tasks", json=quick_task(**overrides))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_numbers_are_422_naming_their_path(client, literal):
    sleepy = quick_task(
        payload={"pipeline": [{"id": "z", "uses": "debug.sleep", "with": {"seconds": "X"}}]}
    )
    response = await client.post("/tasks", content=raw(sleepy, X=literal), headers=JSON)
    found = problem(response)
    assert found["path"] == "$.payload.pipeline[0].with.seconds"
    assert found["type"] == "non_finite"
    validated = await client.post("/tasks/validate", content=raw(sleepy, X=literal), headers=JSON)
    assert validated.status_code == 200
    assert validated.json()["valid"] is False
    assert validated.json()["problems"][0]["path"] == "$.payload.pipeline[0].with.seconds"
    timeout = quick_task(
        payload={"pipeline": [{"id": "e", "uses": "debug.echo", "timeout_seconds": "X"}]}
    )
    response = await client.post("/tasks", content=raw(timeout, X=literal), headers=JSON)
    assert problem(response)["path"] == "$.payload.pipeline[0].timeout_seconds"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400"])
async def test_snooze_and_patch_refuse_non_finite_numbers_by_path(client, literal):
    task_id = await a_task(client, schedule_kind="cron", schedule_expr="0 9 * * *")
    snooze = await client.post(
        f"/tasks/{task_id}/snooze", content=raw({"delay_seconds": "X"}, X=literal), headers=JSON
    )
    found = problem(snooze)
    assert (found["path"], found["type"]) == ("$.delay_seconds", "non_finite")
    assert "out of range" not in snooze.text
    patch = await client.patch(
        f"/tasks/{task_id}", content=raw({"priority": "X"}, X=literal), headers=JSON
    )
    assert problem(patch)["path"] == "$.priority"


TEXT_FIELDS = ["title", "description", "concurrency_key", "dedupe_key"]


@pytest.mark.parametrize("field", TEXT_FIELDS)
async def test_a_lone_surrogate_in_any_text_field_is_422_on_create_and_patch(client, field):
    for surrogate in ("\\ud800", "\\udfff", "a\\udc80b"):
        document = quick_task(**{field: "PLACEHOLDER"})
        body = raw(document, PLACEHOLDER=f'"{surrogate}"')
        found = problem(await client.post("/tasks", content=body, headers=JSON))
        assert found["path"] == f"$.{field}"
        assert found["type"] == "surrogate"
        task_id = await a_task(client)
        body = raw({field: "PLACEHOLDER"}, PLACEHOLDER=f'"{surrogate}"')
        found = problem(await client.patch(f"/tasks/{task_id}", content=body, headers=JSON))
        assert found["path"] == f"$.{field}"


async def test_surrogates_in_keys_and_on_other_routes_are_422_too(client):
    params = quick_task(payload={"params": {"PLACEHOLDER": 1}, "pipeline": QUICK_PIPELINE})
    body = raw(params, PLACEHOLDER='"\\ud800"')
    assert problem(await client.post("/tasks", content=body, headers=JSON))["type"] == "surrogate"
    cases = [
        ("/events", {"topic": "a.b", "payload": {"x": "PLACEHOLDER"}}, "$.payload.x"),
        ("/agents", {"name": "PLACEHOLDER", "scopes": []}, "$.name"),
        (
            "/schedules/preview",
            {"schedule_kind": "cron", "schedule_expr": "PLACEHOLDER"},
            "$.schedule_expr",
        ),
        (
            "/tools",
            {
                "address": "x.y",
                "transport": "http",
                "endpoint": "http://example.com",
                "input_schema": {},
                "description": "PLACEHOLDER",
            },
            "$.description",
        ),
    ]
    for path, document, where in cases:
        body = raw(document, PLACEHOLDER='"\\udc00"')
        response = await client.post(path, content=body, headers=JSON)
        assert problem(response)["path"] == where, (path, response.text)


QUICK_PIPELINE = [{"id": "e", "uses": "debug.echo", "with": {"x": 1}}]


async def test_a_zone_the_tz_data_cannot_load_is_422_on_create_patch_and_preview(client):
    found = problem(await client.post("/tasks", json=quick_task(timezone="localtime")))
    assert found["path"] == "$.timezone"
    task_id = await a_task(client, schedule_kind="cron", schedule_expr="0 9 * * *")
    found = problem(await client.patch(f"/tasks/{task_id}", json={"timezone": "localtime"}))
    assert found["path"] == "$.timezone"
    preview = {"schedule_kind": "cron", "schedule_expr": "0 9 * * *", "timezone": "localtime"}
    found = problem(await client.post("/schedules/preview", json=preview))
    assert found["path"] == "$.timezone"


async def sample_bodies(client: httpx.AsyncClient) -> dict[tuple[str, str], tuple[str, Any]]:
    """A valid request for every route that takes a JSON body: (method, template) →
    (URL, body)."""
    task_id = await a_task(client, schedule_kind="cron", schedule_expr="0 9 * * *")
    agent = await client.post("/agents", json={"name": "sample-agent", "scopes": []})
    agent_id = agent.json()["id"]
    task = quick_task(title="by content type")
    return {
        ("POST", "/tasks"): ("/tasks", task),
        ("POST", "/tasks/validate"): ("/tasks/validate", task),
        ("PATCH", "/tasks/{task_id}"): (f"/tasks/{task_id}", {"title": "renamed"}),
        ("POST", "/tasks/{task_id}/snooze"): (f"/tasks/{task_id}/snooze", {"delay_seconds": 5}),
        ("POST", "/schedules/preview"): (
            "/schedules/preview",
            {"schedule_kind": "cron", "schedule_expr": "0 9 * * *", "count": 2},
        ),
        ("POST", "/events"): ("/events", {"topic": "content.type", "payload": {}}),
        ("POST", "/agents"): ("/agents", {"name": "NAME", "scopes": ["tasks:read"]}),
        ("PATCH", "/agents/{agent_id}"): (f"/agents/{agent_id}", {"name": "NAME"}),
        ("PATCH", "/agents/me"): ("/agents/me", {"webhook_url": "https://example.com/NAME"}),
        ("POST", "/tools"): (
            "/tools",
            {
                "address": "NAME.tool",
                "transport": "http",
                "endpoint": "https://example.com/tool",
                "input_schema": {"type": "object"},
            },
        ),
    }


def routes_with_a_body(app: FastAPI) -> set[tuple[str, str]]:
    document = app.openapi()
    found = set()
    for path, _route in api_routes(app):
        for method, operation in document["paths"].get(path, {}).items():
            if "requestBody" in operation:
                found.add((method.upper(), path))
    return found


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/json"]
)
async def test_every_json_body_is_read_the_same_whatever_the_content_type(
    app, client, content_type
):
    samples = await sample_bodies(client)
    assert set(samples) == routes_with_a_body(app)
    for number, ((method, template), (url, body)) in enumerate(sorted(samples.items())):
        text = json.dumps(body).replace("NAME", f"ct{number}{(content_type or 'none')[:4]}")
        headers = {"content-type": content_type} if content_type else {}
        request = client.build_request(method, url, content=text.encode(), headers=headers)
        if content_type is None:
            request.headers.pop("content-type", None)
        response = await client.send(request)
        assert response.status_code < 300, (method, template, content_type, response.text)
