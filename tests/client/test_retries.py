"""Retries and backoff, proven against a fake HTTP layer (``httpx.MockTransport``): which
answers and failures are retried, after how long, how often, and which never are."""

from __future__ import annotations

import httpx
import pytest

from ordinaut import APIError, RateLimitedError, ServerError, TransportError, UnavailableError
from tests.client.fakes import (
    TASK_ID,
    URL,
    Script,
    agent_document,
    answer,
    rate_limited,
    task_document,
)
from tests.client.harness import FakeTime, raised, resolve

TASK = {"title": "t", "schedule_kind": "once", "schedule_expr": "2030-01-01T00:00:00Z"}


async def test_a_429_with_retry_after_0_is_retried_then_succeeds(open_client):
    script = Script(rate_limited("0"), answer(200, agent_document()))
    async with open_client(URL, "t", transport=script.transport()) as c:
        me = await resolve(c.agents.me())
    assert me.name == "admin"
    assert len(script.requests) == 2
    assert all(r.headers["authorization"] == "Bearer t" for r in script.requests)


async def test_retry_after_is_honoured_and_max_retries_bounds_the_attempts(open_client):
    script = Script(rate_limited("2"))
    async with open_client(URL, "t", transport=script.transport(), max_retries=2) as c:
        time = FakeTime().install(c)
        error = await raised(RateLimitedError, lambda: c.agents.me())
    assert len(script.requests) == 3  # the first try and two retries
    assert time.sleeps == [2.0, 2.0]
    assert error.retry_after == 2.0 and error.status == 429 and error.code == "rate_limited"
    assert str(error) == "429 rate_limited: slow down"


async def test_without_retry_after_the_backoff_grows_and_is_capped(open_client):
    script = Script(answer(503, {"error": {"code": "store_unavailable", "message": "db down"}}))
    async with open_client(URL, "t", transport=script.transport(), max_retries=6) as c:
        time = FakeTime().install(c)
        error = await raised(UnavailableError, lambda: c.tasks.get("x"))
    assert len(script.requests) == 7 and error.status == 503
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(c / 2 <= s <= c for s, c in zip(time.sleeps, ceilings, strict=True)), time.sleeps


async def test_a_retry_after_beyond_a_minute_is_left_to_the_caller(open_client):
    script = Script(rate_limited("3600"), answer(200, agent_document()))
    async with open_client(URL, "t", transport=script.transport()) as c:
        time = FakeTime().install(c)
        error = await raised(RateLimitedError, lambda: c.agents.me())
    assert error.retry_after == 3600.0 and len(script.requests) == 1 and time.sleeps == []


async def test_max_retries_0_sends_once(open_client):
    script = Script(rate_limited("0"), answer(200, agent_document()))
    async with open_client(URL, "t", transport=script.transport(), max_retries=0) as c:
        await raised(RateLimitedError, lambda: c.agents.me())
    assert len(script.requests) == 1


async def test_other_errors_are_not_retried(open_client):
    script = Script(
        answer(500, {"error": {"code": "internal", "message": "bug"}}),
        answer(200, agent_document()),
    )
    async with open_client(URL, "t", transport=script.transport()) as c:
        error = await raised(ServerError, lambda: c.agents.me())
    assert len(script.requests) == 1 and type(error) is ServerError
    assert str(error) == "500 internal: bug"


async def test_a_post_without_idempotency_key_is_not_resent_once_it_may_have_arrived(open_client):
    script = Script(httpx.ReadError("connection reset"), answer(201, {}))
    async with open_client(URL, "t", transport=script.transport()) as c:
        FakeTime().install(c)
        error = await raised(TransportError, lambda: c.tasks.create(TASK))
    assert len(script.requests) == 1
    assert isinstance(error, ConnectionError) and isinstance(error.__cause__, httpx.ReadError)
    assert "POST /tasks" in str(error)


async def test_a_post_with_idempotency_key_is_resent_with_the_same_key(open_client):
    script = Script(httpx.ReadError("connection reset"), answer(201, task_document()))
    async with open_client(URL, "t", transport=script.transport()) as c:
        FakeTime().install(c)
        task = await resolve(c.tasks.create(TASK, idempotency_key="k-1"))
    assert str(task.id) == TASK_ID
    assert [r.headers["idempotency-key"] for r in script.requests] == ["k-1", "k-1"]
    assert script.requests[0].content == script.requests[1].content


async def test_a_post_that_never_left_is_resent(open_client):
    script = Script(
        httpx.ConnectError("connection refused"), answer(202, {"event_id": TASK_ID, "runs": []})
    )
    async with open_client(URL, "t", transport=script.transport()) as c:
        time = FakeTime().install(c)
        published = await resolve(c.events.publish("a.b"))
    assert published.runs == () and len(script.requests) == 2 and len(time.sleeps) == 1


async def test_reads_and_idempotent_posts_are_resent_after_a_broken_connection(open_client):
    script = Script(httpx.RemoteProtocolError("eof"), answer(200, agent_document()))
    async with open_client(URL, "t", transport=script.transport()) as c:
        FakeTime().install(c)
        assert (await resolve(c.agents.me())).name == "admin"
    script = Script(httpx.ReadTimeout("slow"), answer(200, {"valid": True, "problems": []}))
    async with open_client(URL, "t", transport=script.transport()) as c:
        FakeTime().install(c)
        assert (await resolve(c.tasks.validate(TASK))).valid
    assert len(script.requests) == 2


async def test_connection_failures_give_transport_error_after_the_retries(open_client):
    script = Script(httpx.ConnectError("connection refused"))
    async with open_client(URL, "t", transport=script.transport(), max_retries=2) as c:
        time = FakeTime().install(c)
        await raised(TransportError, lambda: c.agents.me())
    assert len(script.requests) == 3 and len(time.sleeps) == 2


@pytest.mark.parametrize(
    ("status", "error_type", "line"),
    [
        (408, APIError, "408 http_408: Request Timeout"),
        (502, ServerError, "502 http_502: Bad Gateway: <html>proxy</html>"),
        (504, ServerError, "504 http_504: Gateway Timeout"),
    ],
)
async def test_statuses_other_than_429_and_503_are_final(open_client, status, error_type, line):
    body = httpx.Response(status, text="<html>proxy</html>" if status == 502 else "")
    script = Script(body, answer(200, agent_document()))
    async with open_client(URL, "t", transport=script.transport()) as c:
        error = await raised(APIError, lambda: c.agents.me())
    assert len(script.requests) == 1 and type(error) is error_type
    assert (error.status, str(error)) == (status, line)
