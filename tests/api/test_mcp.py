"""``/mcp`` with the app in process: the SDK's client (both protocol eras) over the real
ASGI stack, real tokens, a real database. The acceptance tests over real HTTP, with real
API, scheduler and worker processes, are in ``tests/e2e/test_mcp.py``."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.mcp.tools import TOOLS
from engine.document import TASK_PROPERTIES
from engine.tokens import SCOPES
from observability.logging import JsonFormatter
from tests.api.conftest import client_for, quick_task
from tests.mcp_support import MODES, call_ok, in_process, mcp_client, text, tool_names
from tests.support import ADMIN_TOKEN

BASE = "http://127.0.0.1:8080"
READ_TOOLS = {tool.name for tool in TOOLS if tool.read_only}
ALL_TOOLS = {tool.name for tool in TOOLS}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def session(app: FastAPI, token: str | None = ADMIN_TOKEN, **options: Any) -> Any:
    return mcp_client(BASE, token, transport=in_process(app), **options)


def raw_client(app: FastAPI, host: str = "127.0.0.1:8080") -> httpx.AsyncClient:
    """Plain HTTP to the app, for what the MCP client hides (statuses, headers)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


@pytest.mark.parametrize("mode", MODES)
async def test_the_tools_listed_follow_the_token_scopes(app, make_agent, mode):
    reader = await make_agent("tasks:read")
    runs = await make_agent("runs:read", "runs:write")
    nobody = await make_agent()
    async with session(app, mode=mode) as admin:
        assert await tool_names(admin) == ALL_TOOLS
    async with session(app, reader.token, mode=mode) as client:
        assert await tool_names(client) == {
            "validate_task",
            "list_tasks",
            "get_task",
            "preview_schedule",
            "whoami",
        }
    async with session(app, runs.token, mode=mode) as client:
        assert await tool_names(client) == {
            "list_runs",
            "get_run",
            "wait_for_run",
            "cancel_run",
            "retry_run",
            "whoami",
        }
    async with session(app, nobody.token, mode=mode) as client:
        assert await tool_names(client) == {"whoami"}
        assert (await call_ok(client, "whoami", {}))["id"] == nobody.id


@pytest.mark.parametrize("mode", MODES)
async def test_a_tool_the_scopes_do_not_allow_is_an_error_and_does_nothing(
    app, client, make_agent, mode
):
    reader = await make_agent("tasks:read")
    async with session(app, reader.token, mode=mode) as mcp:
        result = await mcp.call_tool("create_task", {"task": quick_task()})
        assert result.is_error
        assert "needs the 'tasks:write' scope" in text(result)
        unknown = await mcp.call_tool("drop_database", {})
        assert unknown.is_error and "unknown tool 'drop_database'" in text(unknown)
    assert (await client.get("/tasks")).json()["items"] == []


async def test_read_only_mode_lists_and_runs_only_read_tools(app_factory, make_agent):
    app = await app_factory(mcp_read_only=True)
    async with client_for(app, ADMIN_TOKEN) as http:
        task = (await http.post("/tasks", json=quick_task())).json()
    async with session(app) as admin:
        listed = (await admin.list_tools()).tools
        assert {tool.name for tool in listed} == READ_TOOLS
        assert all(tool.annotations and tool.annotations.read_only_hint for tool in listed)
        refused = await admin.call_tool("cancel_task", {"task_id": task["id"]})
        assert refused.is_error and "read-only" in text(refused)
        assert (await call_ok(admin, "get_task", {"task_id": task["id"]}))["status"] == "active"


async def test_every_tool_is_described_for_a_model_with_schemas_and_annotations(app):
    async with session(app) as admin:
        listed = {tool.name: tool for tool in (await admin.list_tools()).tools}
    for name, tool in listed.items():
        assert tool.description and len(tool.description) > 80, name
        assert tool.input_schema["type"] == "object", name
        assert tool.output_schema and tool.output_schema["type"] == "object", name
        hints = tool.annotations
        assert hints is not None and hints.read_only_hint is not None, name
        assert hints.idempotent_hint is not None, name
        if not hints.read_only_hint:
            assert hints.destructive_hint is not None, name
    assert listed["cancel_task"].annotations.destructive_hint is True
    assert listed["create_task"].annotations.destructive_hint is False
    assert listed["pause_task"].annotations.idempotent_hint is True
    # The task document's schema is the engine's declaration, not a copy.
    document = listed["create_task"].input_schema["properties"]["task"]
    assert set(document["properties"]) == set(TASK_PROPERTIES)
    assert document["additionalProperties"] is False
    step = listed["create_task"].input_schema["$defs"]["PipelineStep"]
    assert set(step["required"]) == {"id", "uses"}


@pytest.mark.parametrize("mode", MODES)
async def test_a_task_through_its_life_over_mcp(app, client, make_agent, mode):
    bot = await make_agent("tasks:read", "tasks:write")
    async with session(app, bot.token, mode=mode) as mcp:
        created = await call_ok(mcp, "create_task", {"task": quick_task(title="first")})
        second = await call_ok(mcp, "create_task", {"task": quick_task(title="second")})
        rest = (await client.get(f"/tasks/{created['id']}")).json()
        assert created == {**rest, "next_run_at": created["next_run_at"]}
        assert created["created_by"] == bot.id
        fetched = await call_ok(mcp, "get_task", {"task_id": created["id"]})
        assert fetched["title"] == "first"
        patched = {"task_id": created["id"], "patch": {"title": "renamed", "priority": 2}}
        updated = await call_ok(mcp, "update_task", patched)
        assert (updated["title"], updated["priority"]) == ("renamed", 2)
        paused = await call_ok(mcp, "pause_task", {"task_id": created["id"]})
        assert paused["status"] == "paused" and paused["next_run_at"] is None
        again = await call_ok(mcp, "pause_task", {"task_id": created["id"]})
        assert again["status"] == "paused"
        assert (await call_ok(mcp, "resume_task", {"task_id": created["id"]}))["status"] == "active"
        canceled = await call_ok(mcp, "cancel_task", {"task_id": created["id"]})
        assert canceled["status"] == "canceled"
        first_page = await call_ok(mcp, "list_tasks", {"limit": 1})
        assert [t["id"] for t in first_page["items"]] == [second["id"]]
        next_page = {"limit": 1, "cursor": first_page["next_cursor"]}
        rest_page = await call_ok(mcp, "list_tasks", next_page)
        assert [t["id"] for t in rest_page["items"]] == [created["id"]]
        active = await call_ok(mcp, "list_tasks", {"status": "active"})
        assert [t["id"] for t in active["items"]] == [second["id"]]


@pytest.mark.parametrize("mode", MODES)
async def test_a_bad_task_document_names_every_problem_by_path(app, client, mode):
    document = {
        "title": "",
        "schedule_kind": "cron",
        "schedule_expr": "61 * * * *",
        "payload": {"pipeline": [{"id": "a", "uses": "weather.nowhere"}]},
        "priority": 0,
    }
    async with session(app, mode=mode) as mcp:
        result = await mcp.call_tool("create_task", {"task": document})
        assert result.is_error
        message = text(result)
        assert message.startswith("422 validation_error: ")
        for path in ("$.title", "$.priority", "$.schedule_expr", "$.payload.pipeline[0].uses"):
            assert f"\n- {path}: " in message, message
        checked = await call_ok(mcp, "validate_task", {"task": document})
    assert checked["valid"] is False
    assert {p["path"] for p in checked["problems"]} >= {"$.title", "$.payload.pipeline[0].uses"}
    assert (await client.get("/tasks")).json()["items"] == []


async def test_invalid_arguments_are_tool_errors_naming_the_argument(app):
    async with session(app) as mcp:
        missing = await mcp.call_tool("get_task", {})
        assert missing.is_error and "$: 'task_id' is a required property" in text(missing)
        too_many = await mcp.call_tool("list_tasks", {"limit": 1000})
        assert too_many.is_error and "- $.limit: 1000 is greater than" in text(too_many)
        extra = await mcp.call_tool("whoami", {"as": "someone else"})
        assert extra.is_error and "'as' was unexpected" in text(extra)
        not_a_document = await mcp.call_tool("create_task", {"task": "make me a task"})
        assert not_a_document.is_error and "$.task: " in text(not_a_document)
        bad_id = await mcp.call_tool("get_task", {"task_id": "not-a-uuid"})
        assert bad_id.is_error
        assert text(bad_id).startswith("422 validation_error")
        assert "path.task_id" in text(bad_id)


async def test_agents_cannot_see_or_touch_each_others_tasks(app, make_agent):
    alice = await make_agent("tasks:read", "tasks:write", "runs:read", "runs:write")
    bob = await make_agent("tasks:read", "tasks:write", "runs:read", "runs:write")
    async with session(app, alice.token) as mcp:
        task = await call_ok(mcp, "create_task", {"task": quick_task()})
        run = await call_ok(mcp, "run_task_now", {"task_id": task["id"]})
    async with session(app, bob.token) as mcp:
        assert (await call_ok(mcp, "list_tasks", {}))["items"] == []
        assert (await call_ok(mcp, "list_runs", {}))["items"] == []
        for name, arguments in (
            ("get_task", {"task_id": task["id"]}),
            ("update_task", {"task_id": task["id"], "patch": {"title": "mine"}}),
            ("cancel_task", {"task_id": task["id"]}),
            ("run_task_now", {"task_id": task["id"]}),
            ("get_run", {"run_id": run["id"]}),
            ("cancel_run", {"run_id": run["id"]}),
        ):
            result = await mcp.call_tool(name, arguments)
            assert result.is_error, name
            assert text(result).startswith("404 not_found"), (name, text(result))
    async with session(app, alice.token) as mcp:
        unchanged = await call_ok(mcp, "get_task", {"task_id": task["id"]})
        assert (unchanged["title"], unchanged["status"]) == ("t", "active")
        assert (await call_ok(mcp, "get_run", {"run_id": run["id"]}))["status"] == "queued"


async def test_waiting_returns_the_current_state_when_time_runs_out(app):
    # No worker runs here: the run stays queued.
    async with session(app) as mcp:
        task = await call_ok(mcp, "create_task", {"task": quick_task()})
        started = time.monotonic()
        run = await call_ok(mcp, "run_task_now", {"task_id": task["id"], "wait_seconds": 1})
        assert run["status"] == "queued"
        waited = await call_ok(mcp, "wait_for_run", {"run_id": run["id"], "timeout_seconds": 1})
        assert waited["status"] == "queued"
        assert time.monotonic() - started < 10
        too_long = await mcp.call_tool("wait_for_run", {"run_id": run["id"], "timeout_seconds": 61})
        assert too_long.is_error and "$.timeout_seconds" in text(too_long)
        canceled = await call_ok(mcp, "cancel_run", {"run_id": run["id"]})
        assert canceled["status"] == "canceled"
        finished = await call_ok(mcp, "wait_for_run", {"run_id": run["id"], "timeout_seconds": 30})
        assert finished["status"] == "canceled"
        retry = await mcp.call_tool("retry_run", {"run_id": run["id"]})
        assert retry.is_error and text(retry).startswith("409 conflict")


async def test_run_task_now_without_runs_read_returns_the_queued_run(app, make_agent):
    writer = await make_agent("tasks:read", "tasks:write")
    async with session(app, writer.token) as mcp:
        task = await call_ok(mcp, "create_task", {"task": quick_task()})
        started = time.monotonic()
        run = await call_ok(mcp, "run_task_now", {"task_id": task["id"], "wait_seconds": 20})
    assert run["status"] == "queued" and run["task_id"] == task["id"]
    assert time.monotonic() - started < 10


async def test_idempotency_keys_make_repeats_safe(app, client):
    async with session(app) as mcp:
        arguments = {"task": quick_task(), "idempotency_key": "create-once"}
        first = await call_ok(mcp, "create_task", arguments)
        second = await call_ok(mcp, "create_task", arguments)
        assert first["id"] == second["id"]
        other = await mcp.call_tool("create_task", {**arguments, "task": quick_task(title="x")})
        assert other.is_error and text(other).startswith("409 conflict")
        event = {"topic": "orders.created", "payload": {"n": 1}, "idempotency_key": "e-1"}
        published = await call_ok(mcp, "publish_event", event)
        assert published["runs"] == []
        assert (await call_ok(mcp, "publish_event", event))["event_id"] == published["event_id"]
    assert len((await client.get("/tasks")).json()["items"]) == 1


async def test_previews_the_catalog_and_whoami(app):
    async with session(app) as mcp:
        preview = await call_ok(
            mcp,
            "preview_schedule",
            {
                "schedule_kind": "cron",
                "schedule_expr": "30 8 * * mon-fri",
                "timezone": "Europe/Chisinau",
                "count": 3,
                "after": "2026-03-27T00:00:00Z",
            },
        )
        assert preview["occurrences"] == [
            "2026-03-27T08:30:00+02:00",
            "2026-03-30T08:30:00+03:00",
            "2026-03-31T08:30:00+03:00",
        ]
        page = await call_ok(mcp, "list_tools", {"limit": 2})
        assert len(page["items"]) == 2 and page["next_cursor"]
        following = await call_ok(mcp, "list_tools", {"cursor": page["next_cursor"]})
        addresses = [t["address"] for t in page["items"] + following["items"]]
        assert "debug.echo" in addresses and len(addresses) == len(set(addresses))
        assert (await call_ok(mcp, "whoami", {}))["scopes"] == ["admin"]


@pytest.mark.parametrize("mode", MODES)
async def test_tool_calls_are_audited_like_rest_calls(app, client, make_agent, mode):
    bot = await make_agent("tasks:read", "tasks:write")
    headers = {"X-Request-ID": "mcp-call-1"}
    async with session(app, bot.token, headers=headers, mode=mode) as mcp:
        task = await call_ok(mcp, "create_task", {"task": quick_task()})
        await call_ok(mcp, "get_task", {"task_id": task["id"]})
        await call_ok(mcp, "pause_task", {"task_id": task["id"]})
    entries = (await client.get("/audit", params={"actor": bot.id})).json()["items"]
    assert [e["action"] for e in entries] == ["tasks.pause", "tasks.create"]
    for entry in entries:
        assert entry["actor_name"] == bot.name
        assert entry["subject_id"] == task["id"]
        assert entry["request_id"] == "mcp-call-1"
    assert [e["details"]["mcp_tool"] for e in entries] == ["pause_task", "create_task"]
    # A REST client cannot pretend to be a tool.
    await bot.client.post(f"/tasks/{task['id']}/resume", headers={"X-MCP-Tool": "x"})
    latest = (await client.get("/audit", params={"actor": bot.id})).json()["items"][0]
    assert latest["action"] == "tasks.resume" and "mcp_tool" not in latest["details"]


async def test_no_token_is_a_401_that_points_at_metadata_that_answers(app, client, make_agent):
    doomed = await make_agent("tasks:read")
    async with raw_client(app) as http:
        for headers in ({}, {"Authorization": "Bearer ord_nope"}, {"Authorization": "Basic x"}):
            answer = await http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
            assert answer.status_code == 401
            challenge = answer.headers["www-authenticate"]
            assert challenge.startswith("Bearer ")
            url = f"{BASE}/.well-known/oauth-protected-resource/mcp"
            assert f'resource_metadata="{url}"' in challenge
        metadata = await http.get("/.well-known/oauth-protected-resource/mcp")
        assert metadata.status_code == 200
        document = metadata.json()
        assert document["resource"] == f"{BASE}/mcp"
        assert document["scopes_supported"] == list(SCOPES)
        assert document["bearer_methods_supported"] == ["header"]
        assert (await http.get(document["resource_documentation"])).status_code == 200
        assert (await doomed.client.get("/agents/me")).status_code == 200
        assert (await client.delete(f"/agents/{doomed.id}")).status_code == 204
        gone = {**MCP_HEADERS, "Authorization": f"Bearer {doomed.token}"}
        assert (await http.post("/mcp", json=INITIALIZE, headers=gone)).status_code == 401


async def test_the_public_url_names_the_resource(app_factory):
    app = await app_factory(public_url="https://ordinaut.example.com")
    async with raw_client(app, host="ordinaut.example.com") as http:
        answer = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert answer.status_code == 401
        url = "https://ordinaut.example.com/.well-known/oauth-protected-resource/mcp"
        assert f'resource_metadata="{url}"' in answer.headers["www-authenticate"]
        metadata = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
        assert metadata["resource"] == "https://ordinaut.example.com/mcp"
        assert metadata["authorization_servers"] == ["https://ordinaut.example.com"]


async def test_foreign_hosts_and_origins_are_refused(app, app_factory):
    token = {**MCP_HEADERS, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with raw_client(app, host="evil.example") as http:
        for headers in (MCP_HEADERS, token):
            refused = await http.post("/mcp", json=INITIALIZE, headers=headers)
            assert refused.status_code == 421
            assert refused.json()["error"]["code"] == "misdirected_request"
            assert "evil.example" not in refused.headers.get("www-authenticate", "")
        assert (await http.get("/.well-known/oauth-protected-resource/mcp")).status_code == 421
        assert (await http.get("/health")).status_code == 200  # REST is not concerned
    for host in ("localhost:8080", "127.0.0.1", "[::1]:9"):
        async with raw_client(app, host=host) as http:
            answer = await http.post("/mcp", json=INITIALIZE, headers=token)
            assert answer.status_code == 200, (host, answer.text)
    async with raw_client(app) as http:
        origin = {**token, "Origin": "http://evil.example"}
        assert (await http.post("/mcp", json=INITIALIZE, headers=origin)).status_code == 403
        local = {**token, "Origin": "http://localhost:3000"}
        assert (await http.post("/mcp", json=INITIALIZE, headers=local)).status_code == 200
    allowing = await app_factory(mcp_allowed_hosts=("ordinaut.internal:8443",))
    async with raw_client(allowing, host="ordinaut.internal:8443") as http:
        assert (await http.post("/mcp", json=INITIALIZE, headers=token)).status_code == 200
    async with raw_client(allowing, host="ordinaut.internal:9999") as http:
        assert (await http.post("/mcp", json=INITIALIZE, headers=token)).status_code == 421
    anything = await app_factory(mcp_allowed_hosts=("*",))
    async with raw_client(anything, host="whatever.example") as http:
        assert (await http.post("/mcp", json=INITIALIZE, headers=token)).status_code == 200


async def test_only_post_mcp_is_served_and_unknown_paths_stay_ordinaut_404s(app):
    token = {**MCP_HEADERS, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with raw_client(app) as http:
        answer = await http.post("/mcp", json=INITIALIZE, headers=token)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/json")
        assert "mcp-session-id" not in answer.headers  # stateless: any process can answer
        assert answer.json()["result"]["serverInfo"]["name"] == "ordinaut"
        for method in ("GET", "DELETE", "PUT"):
            refused = await http.request(method, "/mcp", headers=token)
            assert refused.status_code == 405, method
            assert refused.headers["allow"] == "POST"
            assert refused.json()["error"]["code"] == "method_not_allowed"
        for path in ("/mcp/tools", "/nothing-here", "/.well-known/oauth-protected-resource"):
            missing = await http.get(path, headers=token)
            assert missing.status_code == 404, path
            assert missing.json()["error"]["code"] == "not_found"
        metrics = (await http.get("/metrics")).text
        assert 'route="/mcp",status="200"' in metrics


async def test_a_database_outage_is_a_503_not_a_401(app):
    await app.state.pool.close()
    token = {**MCP_HEADERS, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with raw_client(app) as http:
        answer = await http.post("/mcp", json=INITIALIZE, headers=token)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["error"]["code"] == "store_unavailable"


async def test_tools_can_be_called_concurrently(app):
    async with session(app) as mcp:
        titles = [f"task {n}" for n in range(12)]
        created = await asyncio.gather(
            *(call_ok(mcp, "create_task", {"task": quick_task(title=t)}) for t in titles)
        )
    assert sorted(task["title"] for task in created) == sorted(titles)
    assert len({task["id"] for task in created}) == len(titles)
    assert all(uuid.UUID(task["id"]) for task in created)


@pytest.mark.parametrize("mode", MODES)
async def test_each_tool_call_is_logged_with_its_request_and_agent(app, make_agent, mode):
    bot = await make_agent("tasks:read")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:  # formats in the caller's context
            lines.append(JsonFormatter().format(record))

    handler, logger = Collect(), logging.getLogger("ordinaut.api.mcp")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        headers = {"X-Request-ID": "logged-1"}
        async with session(app, bot.token, headers=headers, mode=mode) as mcp:
            await call_ok(mcp, "whoami", {})
            await mcp.call_tool("get_task", {"task_id": str(uuid.uuid4())})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert len(lines) == 2
    assert all('"request_id": "logged-1"' in line for line in lines)
    assert all(f'"agent_id": "{bot.id}"' in line for line in lines)
    assert '"mcp_tool": "whoami"' in lines[0] and '"outcome": "ok"' in lines[0]
    assert "mcp tool get_task: 404 not_found" in lines[1] and '"outcome": "error"' in lines[1]
    assert bot.token not in "".join(lines)
