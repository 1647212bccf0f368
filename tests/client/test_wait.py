"""Waiting for a run: ``runs.wait`` and ``tasks.run_now(wait=...)``.

The loop asks ``GET /runs/{id}?wait=N`` (N ≤ 60, the seconds left to the millisecond).
Against a fake server on a fake clock: a server that long-polls is asked in 60-second
slices without pauses; one that answers at once (it does not hold requests) is asked again
only after growing pauses; one that refuses ``wait`` (422 naming ``query.wait``) is polled
without it. Against the real server, which holds the request until the run ends or N runs
out: one request per wait, no pause, no busy loop.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from ordinaut import Run, WaitTimeout
from tests.client.fakes import RUN_ID, TASK_ID, URL, Script, answer, run_document
from tests.client.harness import FakeTime, raised, resolve
from tests.client.test_journey import echo_task


def waits(script: Script) -> list[str | None]:
    return [r.url.params.get("wait") for r in script.requests]


async def test_a_server_that_answers_at_once_is_asked_again_after_growing_pauses(open_client):
    script = Script(
        *[answer(200, run_document("running"))] * 3, answer(200, run_document("succeeded"))
    )
    async with open_client(URL, "t", transport=script.transport()) as c:
        clock = FakeTime().install(c)
        run = await resolve(c.runs.wait(RUN_ID, timeout=30))
    assert run.status == "succeeded" and run.is_final
    assert clock.sleeps == [0.25, 0.5, 1.0]
    assert waits(script) == ["30", "29.75", "29.25", "28.25"]  # the time left, never past it
    assert all(r.url.path == f"/runs/{RUN_ID}" for r in script.requests)


async def test_the_pauses_stop_at_two_seconds_and_at_the_deadline(open_client):
    script = Script(answer(200, run_document("queued")))
    async with open_client(URL, "t", transport=script.transport()) as c:
        clock = FakeTime().install(c)
        error = await raised(WaitTimeout, lambda: c.runs.wait(RUN_ID, timeout=10))
    assert clock.sleeps == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 0.25]
    assert sum(clock.sleeps) == 10.0 and len(script.requests) == 9
    assert isinstance(error.run, Run) and error.run.status == "queued" and error.timeout == 10
    assert isinstance(error, TimeoutError)
    assert str(error) == f"run {RUN_ID} still queued after 10s"


async def test_a_long_polling_server_is_asked_in_slices_of_at_most_60_seconds(open_client):
    clock = FakeTime()

    def held(request: httpx.Request) -> httpx.Response:
        clock.now += float(request.url.params["wait"])  # the server holds the request
        return answer(200, run_document("running"))

    script = Script(held)
    async with open_client(URL, "t", transport=script.transport()) as c:
        clock.install(c)
        error = await raised(WaitTimeout, lambda: c.runs.wait(RUN_ID, timeout=150))
    assert waits(script) == ["60", "60", "30"] and clock.sleeps == []
    assert error.run.status == "running"


async def test_run_now_with_wait_asks_the_server_to_hold_the_answer(open_client):
    script = Script(answer(202, run_document("succeeded", steps=[]), request_id="x"))
    async with open_client(URL, "t", transport=script.transport()) as c:
        FakeTime().install(c)
        run = await resolve(c.tasks.run_now(TASK_ID, wait=90))
    assert run.status == "succeeded"
    [request] = script.requests
    assert (request.method, request.url.path, waits(script)) == (
        "POST",
        f"/tasks/{TASK_ID}/run_now",
        ["60"],
    )


async def test_run_now_with_wait_follows_the_run_until_it_is_final(open_client):
    script = Script(
        answer(202, run_document("queued")),
        answer(200, run_document("running")),
        answer(
            200,
            run_document(
                "dead",
                error={"step_id": "s", "type": "tool_failed", "message": "no", "retryable": False},
            ),
        ),
    )
    async with open_client(URL, "t", transport=script.transport()) as c:
        clock = FakeTime().install(c)
        run = await resolve(c.tasks.run_now(TASK_ID, wait=5))
    assert run.status == "dead" and run.error is not None and run.error.type == "tool_failed"
    assert [r.method for r in script.requests] == ["POST", "GET", "GET"]
    assert waits(script) == ["5", "4.75", "4.25"] and clock.sleeps == [0.25, 0.5]


async def test_run_now_without_wait_answers_the_queued_run(open_client):
    script = Script(answer(202, run_document("queued")))
    async with open_client(URL, "t", transport=script.transport()) as c:
        run = await resolve(c.tasks.run_now(TASK_ID))
    assert run.status == "queued" and waits(script) == [None]


@pytest.mark.e2e
async def test_a_run_that_outlasts_the_wait_on_the_real_server(live, open_client, kind):
    counted: list[httpx.Request] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            counted.append(request)
            return super().handle_request(request)

    class AsyncCounting(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            counted.append(request)
            return await super().handle_async_request(request)

    transport = Counting() if kind == "sync" else AsyncCounting()
    sleepy = echo_task("sleepy")
    sleepy["payload"]["pipeline"] = [{"id": "nap", "uses": "debug.sleep", "with": {"seconds": 3}}]
    async with open_client(live.url, transport=transport) as c:
        task = await resolve(c.tasks.create(sleepy))
        started = time.monotonic()
        error = await raised(WaitTimeout, lambda: c.tasks.run_now(task.id, wait=1.5))
        elapsed = time.monotonic() - started
        assert error.run.status in ("queued", "running") and error.run.task_id == task.id
        assert 1.5 <= elapsed < 3.0
        # The server held the POST for the whole 1.5 s: no further request, no pause.
        assert [r.url.params.get("wait") for r in counted[1:]] == ["1.5"], counted
        counted.clear()
        run = await resolve(c.runs.wait(error.run.id, timeout=30))
        answered = datetime.now(UTC)
        assert run.status == "succeeded" and run.step("nap").status == "succeeded"
        # One GET, answered the moment the run ended (how late the worker started it, on a
        # busy machine, is not this test's business: the database's and this process's
        # clocks are the same machine's).
        assert run.finished_at is not None
        assert len(counted) == 1 and (answered - run.finished_at).total_seconds() < 1.0


async def test_a_server_that_refuses_wait_is_polled_without_it(open_client):
    refused = {
        "error": {
            "code": "validation_error",
            "message": "query.wait: unknown query parameter",
            "details": [{"path": "query.wait", "message": "unknown", "type": "unknown_parameter"}],
            "request_id": "r1",
        }
    }
    script = Script(
        answer(422, refused),
        answer(200, run_document("running")),
        answer(200, run_document("succeeded")),
    )
    async with open_client(URL, "t", transport=script.transport()) as c:
        clock = FakeTime().install(c)
        run = await resolve(c.runs.wait(RUN_ID, timeout=30))
    assert run.status == "succeeded"
    assert waits(script) == ["30", None, None]  # refused once, then never sent again
    assert clock.sleeps == [0.25]
