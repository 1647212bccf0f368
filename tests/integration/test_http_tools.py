"""HTTP tools against a real local HTTP server: the ``http`` transport and ``http.request``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from engine.catalog import Catalog, ToolSpec, file_catalog
from engine.document import parse_pipeline
from engine.pipeline import Executor, RunInfo
from tests.servers.http_tool_server import ToolServer, serve_http_tools
from workers.tools.breaker import CircuitBreakers
from workers.tools.builtin import BuiltinTransport
from workers.tools.http import HttpRequestTool, HttpTransport
from workers.tools.router import ToolRouter
from workers.tools.ssrf import AllowList

RUN = RunInfo("run-7", "task-7", 1, datetime(2026, 3, 29, tzinfo=UTC), agent_id="agent-1")
SCHEMA = {"type": "object"}


@pytest.fixture(scope="module")
def server() -> Iterator[ToolServer]:
    with serve_http_tools() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def http_tool(server: ToolServer, path: str, **kwargs: Any) -> ToolSpec:
    name = path.strip("/").split("?")[0].replace("/", "_") or "root"
    return ToolSpec(f"remote.{name}", "http", SCHEMA, endpoint=server.url + path, **kwargs)


def executor(
    client: httpx.AsyncClient,
    tools: list[ToolSpec] = (),  # type: ignore[assignment]
    *,
    allow: list[str] = (),  # type: ignore[assignment]
    breakers: CircuitBreakers | None = None,
    resolve: Any = None,
    max_response_bytes: int = 100_000,
) -> Executor:
    breakers = breakers or CircuitBreakers()
    request_tool = HttpRequestTool(
        client, AllowList.parse(allow), breakers, max_response_bytes=max_response_bytes
    )
    if resolve is not None:
        request_tool.resolve = resolve
    router = ToolRouter(
        {
            "builtin": BuiltinTransport(extra={"http.request": request_tool}),
            "http": HttpTransport(client, breakers, max_response_bytes=max_response_bytes),
        }
    )
    return Executor(
        catalog=file_catalog().with_tools(tools),
        call_tool=router,
        retry_base_seconds=0.01,
    )


async def one_step(ex: Executor, uses: str, arguments: dict[str, Any], **step: Any):
    steps = parse_pipeline([{"id": "call", "uses": uses, "with": arguments, **step}])
    outcome = await ex.run(steps, params={}, run=RUN)
    return outcome.steps[-1], outcome.error


async def test_http_transport_posts_arguments_with_an_idempotency_key(server, client):
    tool = http_tool(server, "/echo")
    result, error = await one_step(executor(client, [tool]), tool.address, {"n": 1, "s": "x"})
    assert error is None
    assert result.output["received"] == {"n": 1, "s": "x"}
    assert result.output["method"] == "POST"
    headers = result.output["headers"]
    assert headers["idempotency-key"] == "run-7:call"
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "kind", "retryable"),
    [
        ("/status/400", "tool_error", False),
        ("/status/404", "tool_error", False),
        ("/status/422", "tool_error", False),
        ("/status/429", "tool_error", True),
        ("/status/500", "tool_error", True),
        ("/status/503", "tool_error", True),
        ("/text", "tool_error", False),
        ("/list", "tool_error", False),
        ("/redirect", "tool_error", False),
        ("/big?bytes=500000", "tool_error", False),
    ],
)
async def test_http_transport_errors(server, client, path, kind, retryable):
    tool = http_tool(server, path)
    result, error = await one_step(executor(client, [tool]), tool.address, {})
    assert error is not None
    assert (error.type, error.retryable) == (kind, retryable)
    assert result.attempt == 1
    # The endpoint (it may carry credentials) never reaches the run's error: agents read it.
    assert server.url not in error.message and tool.address in error.message


async def test_http_transport_5xx_is_retried_within_the_run(server, client):
    tool = http_tool(server, "/flaky?fail=2")
    result, error = await one_step(executor(client, [tool]), tool.address, {}, max_retries=2)
    assert error is None
    assert result.attempt == 3
    assert result.output == {"calls": 3}


async def test_http_transport_timeout_is_retryable_and_prompt(server, client):
    tool = http_tool(server, "/slow?seconds=3")
    started = time.monotonic()
    _, error = await one_step(executor(client, [tool]), tool.address, {}, timeout_seconds=0.3)
    assert time.monotonic() - started < 2
    assert error is not None
    assert (error.type, error.retryable) == ("timeout", True)
    assert server.url not in error.message


async def test_the_circuit_opens_for_a_failing_endpoint(server, client):
    breakers = CircuitBreakers(failure_threshold=2, cooldown_seconds=60)
    tool = http_tool(server, "/status/502")
    ex = executor(client, [tool], breakers=breakers)
    before = server.counts.get("/status/502", 0)
    for _ in range(2):
        _, error = await one_step(ex, tool.address, {})
        assert error is not None and error.type == "tool_error"
    _, error = await one_step(ex, tool.address, {})
    assert error is not None
    assert (error.type, error.retryable) == ("circuit_open", True)
    assert server.counts["/status/502"] == before + 2  # the third call never left
    assert server.url not in error.message and "<endpoint>" in error.message


async def test_http_request_refuses_loopback_unless_allowed(server, client):
    arguments = {"method": "GET", "url": server.url + "/echo"}
    _, error = await one_step(executor(client), "http.request", arguments)
    assert error is not None
    assert (error.type, error.retryable) == ("tool_error", False)
    assert "loopback" in error.message and "ORDINAUT_HTTP_ALLOW" in error.message

    result, error = await one_step(executor(client, allow=["127.0.0.1"]), "http.request", arguments)
    assert error is None
    assert result.output["status"] == 200
    assert result.output["json"]["method"] == "GET"
    assert result.output["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize("url", ["http://localhost:1/", "http://[::1]:1/", "http://2130706433:1/"])
async def test_http_request_refuses_loopback_spellings(client, url):
    _, error = await one_step(executor(client), "http.request", {"method": "GET", "url": url})
    assert error is not None and "refusing" in error.message


async def test_http_request_returns_any_status_text_and_json(server, client):
    ex = executor(client, allow=["127.0.0.0/8"])
    result, _ = await one_step(ex, "http.request", {"method": "GET", "url": server.url + "/text"})
    assert result.output["text"] == "hello, world"
    assert "json" not in result.output
    result, _ = await one_step(
        ex,
        "http.request",
        {
            "method": "POST",
            "url": server.url + "/echo",
            "json": {"a": [1, 2]},
            "headers": {"X-Custom": "yes", "Host": "evil.example"},
        },
    )
    assert result.output["json"]["received"] == {"a": [1, 2]}
    assert result.output["json"]["headers"]["x-custom"] == "yes"
    assert result.output["json"]["headers"]["host"] == server.url.removeprefix("http://")
    result, error = await one_step(
        ex, "http.request", {"method": "GET", "url": server.url + "/status/404"}
    )
    assert error is None and result.output["status"] == 404
    result, error = await one_step(
        ex, "http.request", {"method": "GET", "url": server.url + "/redirect"}
    )
    assert error is None
    assert (result.output["status"], result.output["headers"]["location"]) == (302, "/echo")


async def test_http_request_fail_on_status(server, client):
    ex = executor(client, allow=["127.0.0.1"])
    for path, retryable in (("/status/404", False), ("/status/503", True)):
        _, error = await one_step(
            ex, "http.request", {"method": "GET", "url": server.url + path, "fail_on_status": True}
        )
        assert error is not None and error.retryable is retryable


async def test_http_request_limits_size_and_time(server, client):
    ex = executor(client, allow=["127.0.0.1"], max_response_bytes=10_000)
    _, error = await one_step(
        ex, "http.request", {"method": "GET", "url": server.url + "/big?bytes=20000"}
    )
    assert error is not None
    assert "larger than 10000 bytes" in error.message and not error.retryable
    started = time.monotonic()
    _, error = await one_step(
        ex,
        "http.request",
        {"method": "GET", "url": server.url + "/slow?seconds=3", "timeout_seconds": 0.3},
    )
    assert time.monotonic() - started < 2
    assert error is not None and error.type == "timeout"


async def test_http_request_connects_to_the_checked_address(server, client):
    """The name is resolved once, checked, and the connection goes to that address: a name
    that real DNS cannot resolve still reaches the server, with the name as Host."""
    port = server.url.rsplit(":", 1)[1]
    resolved: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    ex = executor(client, allow=["127.0.0.1"], resolve=resolve)
    url = f"http://tools.rebind.invalid:{port}/echo"
    result, error = await one_step(ex, "http.request", {"method": "GET", "url": url})
    assert error is None
    assert resolved == ["tools.rebind.invalid"]
    assert result.output["json"]["headers"]["host"] == f"tools.rebind.invalid:{port}"

    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]

    ex = executor(client, resolve=rebinding)
    _, error = await one_step(ex, "http.request", {"method": "GET", "url": url})
    assert error is not None and "refusing" in error.message


def test_catalog_timeouts_apply_to_http_tools(server):
    tool = http_tool(server, "/echo", timeout_seconds=2.5)
    assert Catalog([tool])[tool.address].timeout_seconds == 2.5


async def test_http_request_circuits_are_per_agent(server, client):
    """An agent whose calls keep failing (e.g. with a tiny timeout of its own) opens the
    circuit of that origin for itself only."""
    breakers = CircuitBreakers(failure_threshold=2, cooldown_seconds=60)
    ex = executor(client, allow=["127.0.0.1"], breakers=breakers)
    slow = {"method": "GET", "url": server.url + "/slow?seconds=1", "timeout_seconds": 0.05}
    for _ in range(2):
        _, error = await one_step(ex, "http.request", slow)
        assert error is not None and error.type == "timeout"
    _, error = await one_step(ex, "http.request", slow)
    assert error is not None and error.type == "circuit_open"
    ok = {"method": "GET", "url": server.url + "/status/200"}
    step = {"id": "call", "uses": "http.request", "with": ok}
    outcome = await ex.run(parse_pipeline([step]), params={}, run=replace(RUN, agent_id="agent-2"))
    assert outcome.error is None, outcome.error
    assert outcome.steps[0].output["status"] == 200


async def test_timeouts_are_deadlines_for_the_whole_request_even_when_the_server_trickles(
    server, client
):
    """Issue 17, defect 9: a server sending a byte a second never leaves a read idle for
    long, so per-read timeouts never fire. ``timeout_seconds`` of ``http.request`` and a
    step's ``timeout_seconds`` (for both HTTP transports) end the whole request."""
    ex = executor(client, allow=["127.0.0.1"])
    trickle = server.url + "/trickle?bytes=60&interval=0.25"
    started = time.monotonic()
    _, error = await one_step(
        ex, "http.request", {"method": "GET", "url": trickle, "timeout_seconds": 1}
    )
    assert time.monotonic() - started < 2.5
    assert error is not None and error.type == "timeout", error

    started = time.monotonic()
    _, error = await one_step(
        ex, "http.request", {"method": "GET", "url": trickle}, timeout_seconds=1
    )
    assert time.monotonic() - started < 2.5
    assert error is not None and error.type == "timeout", error

    tool = http_tool(server, "/trickle?bytes=60&interval=0.25")
    ex = executor(client, [tool])
    started = time.monotonic()
    _, error = await one_step(ex, tool.address, {}, timeout_seconds=1)
    assert time.monotonic() - started < 2.5
    assert error is not None and error.type == "timeout", error
