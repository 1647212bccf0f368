"""Acceptance of the MCP server: the SDK's client over real HTTP against real API, scheduler
and worker processes, and over stdio through ``ordinaut mcp``."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import clone_database, drop_database
from tests.e2e.workload import pipeline_task
from tests.mcp_support import MODES, call_ok, mcp_client, text, tool_names
from tests.support import ADMIN_TOKEN, REPO, Cluster, Process, api_client, auth, cluster

pytestmark = pytest.mark.e2e

ECHO = {"id": "echo", "uses": "debug.echo", "with": {"value": "${params.x}"}, "save_as": "echoed"}
BAD_TASK = {
    "title": "",
    "schedule_kind": "rrule",
    "schedule_expr": "FREQ=SOMETIMES",
    "payload": {
        "pipeline": [
            {"id": "a", "uses": "debug.echo", "with": {"v": "${steps.ghost.value}"}},
            {"id": "b", "uses": "weather.nowhere"},
        ]
    },
}
BAD_PATHS = (
    "$.title",
    "$.schedule_expr",
    "$.payload.pipeline[0].with.v",
    "$.payload.pipeline[1].uses",
)


@pytest.fixture(scope="module")
def running(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two APIs (as behind one load balancer), a scheduler and a worker."""
    database = clone_database(server_url, template_url)
    workdir = Path(tmp_path_factory.mktemp("mcp"))
    try:
        with cluster(database, workdir) as processes:
            processes.api()
            processes.api()
            processes.scheduler()
            processes.worker(concurrency=5)
            yield processes
    finally:
        drop_database(server_url, database)


def apis(running: Cluster) -> list[Process]:
    return [process for process in running.processes if process.name == "api"]


def base_url(process: Process) -> str:
    return f"http://127.0.0.1:{process.port}"


@pytest.fixture
async def rest(running: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(apis(running)[0]) as http:
        yield http


async def new_agent(rest: httpx.AsyncClient, *scopes: str) -> dict[str, Any]:
    """A new agent with ``scopes`` (its ``token`` included)."""
    name = f"mcp-{time.monotonic_ns()}"
    created = await rest.post("/agents", json={"name": name, "scopes": list(scopes)})
    assert created.status_code == 201, created.text
    agent: dict[str, Any] = created.json()
    return agent


def echo_task(**overrides: Any) -> dict[str, Any]:
    """An event task (it runs only when asked) echoing its parameter ``x`` = 42."""
    return pipeline_task(ECHO, params={"x": 42}, title="echo over mcp", **overrides)


async def check_the_whole_flow(mcp: Client) -> None:
    """Create, run with a wait, read the run, and a bad document: what an agent does."""
    task = await call_ok(mcp, "create_task", {"task": echo_task()})
    run = await call_ok(mcp, "run_task_now", {"task_id": task["id"], "wait_seconds": 30})
    assert run["status"] == "succeeded", run
    assert run["trigger"] == "manual"
    assert run["steps"][0]["id"] == "echo"
    assert run["steps"][0]["output"] == {"value": 42}
    assert (await call_ok(mcp, "get_run", {"run_id": run["id"]})) == run
    runs = await call_ok(mcp, "list_runs", {"task_id": task["id"]})
    assert [r["id"] for r in runs["items"]] == [run["id"]]
    refused = await mcp.call_tool("create_task", {"task": BAD_TASK})
    assert refused.is_error
    for path in BAD_PATHS:
        assert f"\n- {path}: " in text(refused), text(refused)


@pytest.mark.parametrize("mode", MODES)
async def test_initialize_list_per_scope_and_run_a_task(running, rest, mode):
    api = apis(running)[0]
    writer = await new_agent(rest, "tasks:read", "tasks:write", "runs:read", "tools:read")
    reader = await new_agent(rest, "runs:read")
    async with mcp_client(base_url(api), writer["token"], mode=mode) as mcp:
        assert mcp.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        assert mcp.server_info is not None and mcp.server_info.name == "ordinaut"
        assert "run_task_now" in await tool_names(mcp)
        assert "cancel_run" not in await tool_names(mcp)
        await check_the_whole_flow(mcp)
    async with mcp_client(base_url(api), reader["token"], mode=mode) as mcp:
        assert await tool_names(mcp) == {"list_runs", "get_run", "wait_for_run", "whoami"}
        refused = await mcp.call_tool("create_task", {"task": echo_task()})
        assert refused.is_error and "tasks:write" in text(refused)


async def test_agents_are_isolated_over_mcp(running, rest):
    api = base_url(apis(running)[0])
    scopes = ("tasks:read", "tasks:write", "runs:read", "runs:write")
    alice, bob = await new_agent(rest, *scopes), await new_agent(rest, *scopes)
    async with mcp_client(api, alice["token"]) as mcp:
        task = await call_ok(mcp, "create_task", {"task": echo_task()})
        run = await call_ok(mcp, "run_task_now", {"task_id": task["id"], "wait_seconds": 30})
    async with mcp_client(api, bob["token"]) as mcp:
        tasks = await call_ok(mcp, "list_tasks", {})
        assert task["id"] not in {t["id"] for t in tasks["items"]}
        for name, arguments in (
            ("get_task", {"task_id": task["id"]}),
            ("pause_task", {"task_id": task["id"]}),
            ("run_task_now", {"task_id": task["id"]}),
            ("get_run", {"run_id": run["id"]}),
            ("retry_run", {"run_id": run["id"]}),
        ):
            result = await mcp.call_tool(name, arguments)
            assert result.is_error and text(result).startswith("404 not_found"), name
    assert (await rest.get(f"/tasks/{task['id']}")).json()["status"] == "active"
    assert len((await rest.get("/runs", params={"task_id": task["id"]})).json()["items"]) == 1


async def test_no_token_is_a_401_and_the_advertised_metadata_answers(running):
    url = base_url(apis(running)[0])
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        answer = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        assert answer.status_code == 401
        challenge = answer.headers["www-authenticate"]
        advertised = challenge.split('resource_metadata="', 1)[1].split('"', 1)[0]
        assert advertised == f"{url}/.well-known/oauth-protected-resource/mcp"
        metadata = await http.get(advertised)
        assert metadata.status_code == 200
        assert metadata.json()["resource"] == f"{url}/mcp"
        started = time.monotonic()
        held = await http.get("/mcp", headers=auth())  # stateless: no stream to hold open
        assert held.status_code == 405 and time.monotonic() - started < 5
    with pytest.raises(Exception):  # noqa: B017 - the SDK wraps the 401 in an ExceptionGroup
        async with mcp_client(url, None) as mcp:
            await mcp.list_tools()


class RoundRobin(httpx2.AsyncBaseTransport):
    """A load balancer in front of several API processes: each request goes to the next."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = itertools.cycle(ports)
        self.inner = httpx2.AsyncHTTPTransport()
        self.sent: list[tuple[int, str]] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self.ports)
        request.url = request.url.copy_with(port=port)
        method = json.loads(request.content or b"{}").get("method", request.method)
        self.sent.append((port, method))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("mode", MODES)
async def test_two_api_processes_serve_alternate_requests_of_one_client(running, rest, mode):
    first, second = apis(running)
    balancer = RoundRobin([first.port, second.port])  # type: ignore[list-item]
    agent = await new_agent(rest, "tasks:read", "tasks:write", "runs:read")
    async with mcp_client(base_url(first), agent["token"], mode=mode, transport=balancer) as mcp:
        await check_the_whole_flow(mcp)
        listed = await call_ok(mcp, "list_tasks", {"limit": 1})
        assert listed["items"]
    calls = {port for port, method in balancer.sent if method == "tools/call"}
    assert calls == {first.port, second.port}, balancer.sent
    for process in (first, second):
        assert "POST /mcp 200" in process.output()


async def test_tool_calls_are_in_the_audit_log(running, rest):
    agent = await new_agent(rest, "tasks:read", "tasks:write", "runs:read")
    async with mcp_client(base_url(apis(running)[1]), agent["token"]) as mcp:
        task = await call_ok(mcp, "create_task", {"task": echo_task()})
        await call_ok(mcp, "run_task_now", {"task_id": task["id"], "wait_seconds": 30})
        await call_ok(mcp, "get_task", {"task_id": task["id"]})
    entries = (await rest.get("/audit", params={"actor": agent["id"]})).json()["items"]
    assert [(e["action"], e["details"]["mcp_tool"]) for e in entries] == [
        ("tasks.run_now", "run_task_now"),
        ("tasks.create", "create_task"),
    ]
    assert all(e["actor_name"] == agent["name"] and e["subject_id"] == task["id"] for e in entries)


@asynccontextmanager
async def stdio_client(api: Process, token: str, *argv: str) -> AsyncIterator[Client]:
    """``ordinaut mcp`` as a desktop client starts it: a command with its environment."""
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "ops.cli", "mcp", *argv],
        cwd=str(REPO),
        env={
            "ORDINAUT_URL": base_url(api),
            "ORDINAUT_TOKEN": token,
            "ORDINAUT_LOG_LEVEL": "WARNING",
        },
    )
    async with Client(parameters) as client:
        yield client


async def test_the_same_flow_over_stdio_through_ordinaut_mcp(running, rest):
    agent = await new_agent(rest, "tasks:read", "tasks:write", "runs:read")
    async with stdio_client(apis(running)[0], agent["token"]) as mcp:
        assert mcp.server_info is not None and mcp.server_info.name == "ordinaut"
        assert await tool_names(mcp) == {
            "create_task",
            "validate_task",
            "list_tasks",
            "get_task",
            "update_task",
            "pause_task",
            "resume_task",
            "cancel_task",
            "run_task_now",
            "preview_schedule",
            "list_runs",
            "get_run",
            "wait_for_run",
            "whoami",
        }
        await check_the_whole_flow(mcp)
        assert (await call_ok(mcp, "whoami", {}))["id"] == agent["id"]
    async with stdio_client(apis(running)[1], ADMIN_TOKEN, "--read-only") as mcp:
        names = await tool_names(mcp)
        assert "list_tools" in names and "create_task" not in names


def test_ordinaut_mcp_refuses_a_bad_token_in_one_line(running):
    result = running.run(
        "mcp", ORDINAUT_URL=base_url(apis(running)[0]), ORDINAUT_TOKEN="ord_not_a_token"
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    url = base_url(apis(running)[0])
    assert lines[-1].startswith(
        f"ordinaut: the API at {url} refused ORDINAUT_TOKEN: 401 unauthenticated"
    )
    unreachable = running.run("mcp", "--url", "http://127.0.0.1:1", ORDINAUT_TOKEN="ord_x")
    assert unreachable.returncode == 1
    assert "ordinaut: cannot reach the Ordinaut API at http://127.0.0.1:1: " in unreachable.stderr
    missing = running.run("mcp", ORDINAUT_URL=base_url(apis(running)[0]))
    assert missing.returncode == 1
    assert "ORDINAUT_TOKEN is not set" in missing.stderr


async def test_a_dead_run_is_reported_and_retried_over_mcp(running, rest):
    agent = await new_agent(rest, "tasks:read", "tasks:write", "runs:read", "runs:write")
    failing = {"id": "flaky", "uses": "debug.fail", "with": {"times": 5, "message": "boom"}}
    async with mcp_client(base_url(apis(running)[0]), agent["token"]) as mcp:
        task = await call_ok(mcp, "create_task", {"task": pipeline_task(failing, max_retries=0)})
        dead = await call_ok(mcp, "run_task_now", {"task_id": task["id"], "wait_seconds": 30})
        assert dead["status"] == "dead"
        assert dead["error"]["step_id"] == "flaky" and "boom" in dead["error"]["message"]
        retried = await call_ok(mcp, "retry_run", {"run_id": dead["id"]})
        assert (retried["trigger"], retried["retry_of"]) == ("retry", dead["id"])
        ended = await call_ok(mcp, "wait_for_run", {"run_id": retried["id"]})
        assert ended["status"] == "dead" and ended["id"] != dead["id"]
