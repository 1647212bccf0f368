"""``/tools`` and ``POST /tasks/validate`` through the real app and a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from engine.settings import Settings
from store.db import connect
from tests.factories import make_agent
from tests.support import ADMIN_TOKEN, auth

HTTP_TOOL = {
    "address": "crm.create_ticket",
    "transport": "http",
    "endpoint": "https://crm.example.com/hooks/ticket",
    "description": "Creates a ticket.",
    "input_schema": {
        "type": "object",
        "properties": {"subject": {"type": "string"}},
        "required": ["subject"],
        "additionalProperties": False,
    },
    "timeout_seconds": 15,
}


@pytest.fixture
async def client(fresh_db) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=fresh_db, bootstrap_admin_token=ADMIN_TOKEN))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=auth()
        ) as http:
            yield http


async def token_with(database_url: str, *scopes: str) -> str:
    conn = await connect(database_url)
    async with conn:
        _, token = await make_agent(conn, *scopes)
    return token


def task_with(pipeline: list[dict]) -> dict:
    return {
        "title": "t",
        "schedule_kind": "once",
        "schedule_expr": "2030-01-01T00:00:00Z",
        "payload": {"params": {"city": "Chisinau"}, "pipeline": pipeline},
    }


async def test_the_catalog_lists_builtin_tools_with_schemas(client):
    response = await client.get("/tools")
    assert response.status_code == 200
    body = response.json()
    addresses = [item["address"] for item in body["items"]]
    assert addresses == sorted(addresses)
    assert {"debug.echo", "debug.log", "http.request", "events.publish"} <= set(addresses)
    log = next(item for item in body["items"] if item["address"] == "debug.log")
    assert log["source"] == "catalog"
    assert log["input_schema"]["required"] == ["message"]
    assert body["next_cursor"] is None

    first = (await client.get("/tools", params={"limit": 2})).json()
    assert len(first["items"]) == 2
    second = await client.get("/tools", params={"limit": 2, "cursor": first["next_cursor"]})
    assert second.json()["items"][0]["address"] > first["items"][1]["address"]
    bad = await client.get("/tools", params={"cursor": "%%%"})
    assert bad.status_code == 422

    one = await client.get("/tools/http.request")
    assert one.status_code == 200 and one.json()["transport"] == "builtin"
    missing = await client.get("/tools/no.such")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_register_use_and_remove_a_runtime_tool(client):
    created = await client.post("/tools", json=HTTP_TOOL)
    assert created.status_code == 201, created.text
    tool = created.json()
    assert tool["source"] == "runtime"
    assert tool["endpoint"] == HTTP_TOOL["endpoint"]
    assert tool["output_schema"] == {"type": "object"}
    assert tool["created_at"]

    listed = (await client.get("/tools")).json()["items"]
    assert "crm.create_ticket" in [item["address"] for item in listed]
    assert (await client.get("/tools/crm.create_ticket")).json()["source"] == "runtime"

    duplicate = await client.post("/tools", json=HTTP_TOOL)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "conflict"

    pipeline = [{"id": "t", "uses": "crm.create_ticket", "with": {"subject": "${params.city}"}}]
    valid = await client.post("/tasks/validate", json=task_with(pipeline))
    assert valid.json() == {"valid": True, "problems": []}
    assert (await client.post("/tasks", json=task_with(pipeline))).status_code == 201
    literal = [{"id": "t", "uses": "crm.create_ticket", "with": {"subject": 5, "x": 1}}]
    invalid = (await client.post("/tasks/validate", json=task_with(literal))).json()
    assert [p["path"] for p in invalid["problems"]] == [
        "$.payload.pipeline[0].with",
        "$.payload.pipeline[0].with.subject",
    ]

    assert (await client.delete("/tools/crm.create_ticket")).status_code == 204
    assert (await client.delete("/tools/crm.create_ticket")).status_code == 404
    after = (await client.post("/tasks/validate", json=task_with(pipeline))).json()
    assert after["valid"] is False
    assert after["problems"][0]["type"] == "unknown_tool"


async def test_registration_is_validated(client):
    catalog_tool = {**HTTP_TOOL, "address": "debug.echo"}
    assert (await client.post("/tools", json=catalog_tool)).status_code == 409
    builtin = {**HTTP_TOOL, "address": "my.builtin", "transport": "builtin"}
    response = await client.post("/tools", json=builtin)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "$.transport"
    broken = {
        "address": "nodots",
        "transport": "mcp",
        "input_schema": {"type": "objekt"},
        "surprise": 1,
    }
    response = await client.post("/tools", json=broken)
    assert response.status_code == 422
    paths = {d["path"] for d in response.json()["error"]["details"]}
    assert {"$", "$.address"} <= paths
    bad_schema = {**HTTP_TOOL, "address": "a.b", "input_schema": {"type": "objekt"}}
    response = await client.post("/tools", json=bad_schema)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "$.input_schema"
    assert (await client.post("/tools", content=b"[")).status_code == 422
    assert (await client.delete("/tools/debug.echo")).status_code == 409


async def test_tools_need_their_scopes(client, fresh_db):
    reader = await token_with(fresh_db, "tools:read")
    nobody = await token_with(fresh_db, "runs:read")
    assert (await client.get("/tools", headers=auth(reader))).status_code == 200
    assert (await client.get("/tools", headers=auth(nobody))).status_code == 403
    assert (await client.post("/tools", json=HTTP_TOOL, headers=auth(reader))).status_code == 403
    assert (await client.delete("/tools/x.y", headers=auth(reader))).status_code == 403
    assert (await client.get("/tools", headers={"Authorization": ""})).status_code == 401
    validate = await client.post("/tasks/validate", json={}, headers=auth(nobody))
    assert validate.status_code == 403


async def test_validate_and_create_report_the_same_problems(client):
    document = task_with(
        [
            {"id": "a", "uses": "nope.tool"},
            {"id": "a", "uses": "debug.echo", "with": {"x": "${steps.ghost.y}"}},
            {
                "id": "fetch",
                "uses": "http.request",
                "with": {"method": "GET", "url": "gopher://x"},
            },
            {"id": "bad", "uses": "debug.echo", "if": "steps.a =="},
        ]
    )
    dry = await client.post("/tasks/validate", json=document)
    assert dry.status_code == 200
    assert dry.json()["valid"] is False
    expected = [
        "$.payload.pipeline[0].uses",
        "$.payload.pipeline[1].id",
        "$.payload.pipeline[1].with.x",
        "$.payload.pipeline[2].with.url",
        "$.payload.pipeline[3].if",
    ]
    assert [p["path"] for p in dry.json()["problems"]] == expected
    created = await client.post("/tasks", json=document)
    assert created.status_code == 422
    assert [d["path"] for d in created.json()["error"]["details"]] == expected
    not_json = await client.post(
        "/tasks/validate", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 200
    assert not_json.json()["problems"][0]["path"] == "$"


async def test_only_admins_see_where_a_runtime_tool_lives(client, fresh_db):
    """An endpoint URL or an MCP command line may carry credentials."""
    secret = {**HTTP_TOOL, "address": "crm.secret", "endpoint": "https://k:s3cr3t@crm.example"}
    assert (await client.post("/tools", json=secret)).status_code == 201
    reader = auth(await token_with(fresh_db, "tools:read"))
    for response in (
        await client.get("/tools/crm.secret", headers=reader),
        await client.get("/tools", headers=reader, params={"limit": 500}),
    ):
        assert response.status_code == 200
        assert "s3cr3t" not in response.text
    listed = await client.get("/tools/crm.secret", headers=reader)
    assert listed.json()["input_schema"] == secret["input_schema"]
    assert listed.json()["endpoint"] is None
    admin_view = await client.get("/tools/crm.secret")
    assert admin_view.json()["endpoint"] == secret["endpoint"]
