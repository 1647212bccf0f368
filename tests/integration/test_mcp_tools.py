"""The ``mcp`` transport against a real MCP server (tests/servers/mcp_server.py) over stdio
and over streamable HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.catalog import ToolSpec, file_catalog
from engine.document import parse_pipeline
from engine.pipeline import Executor, RunInfo
from tests.support import REPO, eventually, free_port
from workers.tools.breaker import CircuitBreakers
from workers.tools.mcp import McpSessions, McpTransport
from workers.tools.router import ToolRouter

RUN = RunInfo("run-m", "task-m", 1, datetime(2026, 3, 29, tzinfo=UTC))
STDIO_SERVER = f"{sys.executable} -m tests.servers.mcp_server"
FORECAST_OUTPUT = {
    "type": "object",
    "properties": {"temperature": {"type": "number"}, "sunny": {"type": "boolean"}},
    "required": ["temperature", "sunny"],
}


def spawn_http_mcp_server(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.servers.mcp_server", "http", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_http_mcp_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = spawn_http_mcp_server(port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("the MCP HTTP server exited")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"http://127.0.0.1:{port}/mcp"
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the MCP HTTP server did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    process, url = start_http_mcp_server()
    try:
        yield url
    finally:
        stop(process)


@pytest.fixture(params=["stdio", "http"])
def server(request, http_server) -> str:
    return STDIO_SERVER if request.param == "stdio" else http_server


@pytest.fixture
async def transport() -> AsyncIterator[McpTransport]:
    mcp = McpTransport(McpSessions(connect_timeout=30), CircuitBreakers())
    try:
        yield mcp
    finally:
        await mcp.aclose()


def tools(server: str) -> list[ToolSpec]:
    def spec(name: str, **kwargs: Any) -> ToolSpec:
        return ToolSpec(
            f"test.{name}", "mcp", {"type": "object"}, server=server, tool=name, **kwargs
        )

    return [
        spec("forecast", output_schema=FORECAST_OUTPUT),
        spec("plain"),
        spec("words"),
        spec("fail"),
        spec("slow"),
        spec("whoami"),
        spec("missing"),
    ]


def executor(server: str, transport: McpTransport) -> Executor:
    return Executor(
        catalog=file_catalog().with_tools(tools(server)),
        call_tool=ToolRouter({"mcp": transport}),
        retry_base_seconds=0.01,
    )


async def call(ex: Executor, name: str, arguments: dict[str, Any], **step: Any):
    steps = parse_pipeline([{"id": "s", "uses": f"test.{name}", "with": arguments, **step}])
    outcome = await ex.run(steps, params={}, run=RUN)
    return outcome.steps[-1], outcome.error


async def test_structured_content_is_the_output(server, transport):
    ex = executor(server, transport)
    result, error = await call(ex, "forecast", {"city": "Paris", "days": 2})
    assert error is None
    assert result.output == {
        "city": "Paris",
        "days": 2,
        "temperature": 23.5,
        "sunny": True,
        "tags": ["test"],
    }


async def test_json_text_and_plain_text_content(server, transport):
    ex = executor(server, transport)
    result, _ = await call(ex, "plain", {"x": 4})
    assert result.output == {"x": 4, "doubled": 8}
    result, _ = await call(ex, "words", {"text": "hi"})
    assert result.output == {"text": "you said: hi"}


async def test_is_error_and_unknown_tools_are_step_errors(server, transport):
    ex = executor(server, transport)
    result, error = await call(ex, "fail", {"message": "the sky fell"})
    assert error is not None
    assert error.type == "tool_error"
    assert "the sky fell" in error.message
    assert result.status == "failed"
    _, error = await call(ex, "missing", {})
    assert error is not None and "missing" in error.message


async def test_one_session_serves_every_call(server, transport):
    ex = executor(server, transport)
    first, _ = await call(ex, "whoami", {})
    second, _ = await call(ex, "whoami", {})
    assert first.output["pid"] == second.output["pid"]
    assert second.output["calls"] == first.output["calls"] + 1


async def test_a_timeout_leaves_the_session_usable(server, transport):
    ex = executor(server, transport)
    await call(ex, "whoami", {})  # connect first: the timeout then measures the call
    started = time.monotonic()
    _, error = await call(ex, "slow", {"seconds": 5}, timeout_seconds=0.5)
    assert time.monotonic() - started < 3
    assert error is not None and (error.type, error.retryable) == ("timeout", True)
    result, error = await call(ex, "plain", {"x": 1})
    assert error is None and result.output["x"] == 1


async def test_a_dead_stdio_server_is_replaced_on_the_next_call(transport):
    ex = executor(STDIO_SERVER, transport)
    first, _ = await call(ex, "whoami", {})
    os.kill(first.output["pid"], signal.SIGKILL)  # the child our session started
    second, error = await call(ex, "whoami", {})
    assert error is None
    assert second.output["pid"] != first.output["pid"]


async def test_a_restarted_http_server_is_reconnected():
    # Polls fast while the server is down: a lenient breaker keeps the circuit closed.
    transport = McpTransport(McpSessions(), CircuitBreakers(failure_threshold=10_000))
    process, url = start_http_mcp_server()
    try:
        ex = executor(url, transport)
        first, _ = await call(ex, "whoami", {})
        stop(process)
        port = int(url.split(":")[2].split("/")[0])
        process = spawn_http_mcp_server(port)
        second, error = await eventually(
            lambda: call(ex, "whoami", {}),
            until=lambda result: result[1] is None or not result[1].retryable,
            timeout=30,
            message="the restarted MCP server to answer",
        )
        assert error is None
        assert second.output["pid"] != first.output["pid"]
    finally:
        stop(process)
        await transport.aclose()


async def test_an_unreachable_server_is_a_retryable_error(transport):
    for server in (f"{sys.executable} -c 'import sys; sys.exit(3)'", "http://127.0.0.1:9/mcp"):
        _, error = await call(executor(server, transport), "whoami", {})
        assert error is not None
        assert error.retryable
        assert "MCP server <server>" in error.message
        assert server not in error.message  # a command line or URL may carry credentials
