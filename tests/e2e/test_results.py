"""Results for agents, with real processes: waiting for a run (``?wait=N``), what a run
shows of everything that happened (attempts, step tries, skip reasons, timing, steps of a
running run), and following runs live (``GET /runs/stream``), each agent seeing only its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import clone_database, drop_database
from tests.e2e.workload import create_task, pipeline_task, run_now, sleep_task
from tests.support import Cluster, api_client, cluster, eventually

pytestmark = pytest.mark.e2e

AGENT_SCOPES = ["tasks:read", "tasks:write", "runs:read", "runs:write"]


@pytest.fixture(scope="module")
def running(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One API and two workers for the module (each test makes its own agents and tasks)."""
    database = clone_database(server_url, template_url)
    workdir = Path(tmp_path_factory.mktemp("results"))
    try:
        with cluster(
            database,
            workdir,
            ORDINAUT_RETRY_BASE_SECONDS="0.05",
            ORDINAUT_STREAM_RECHECK_SECONDS="0.5",
        ) as processes:
            processes.api()
            processes.worker(concurrency=5)
            processes.worker(concurrency=5)
            yield processes
    finally:
        drop_database(server_url, database)


@pytest.fixture
async def admin(running: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(running.processes[0]) as http:
        yield http


@pytest.fixture
async def agent(running: Cluster, admin: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    async with agent_client(running, admin) as http:
        yield http


@contextlib.asynccontextmanager
async def agent_client(running: Cluster, admin: httpx.AsyncClient) -> AsyncIterator[Any]:
    created = await admin.post(
        "/agents", json={"name": f"a-{time.time_ns()}", "scopes": AGENT_SCOPES}
    )
    assert created.status_code == 201, created.text
    async with api_client(running.processes[0], created.json()["token"]) as http:
        yield http


def adds_up(timing: dict[str, int]) -> bool:
    parts = ("queue_ms", "earlier_attempts_ms", "steps_ms", "step_backoff_ms", "overhead_ms")
    return sum(timing[p] for p in parts) + timing["completion_ms"] == timing["total_ms"]


async def test_run_now_with_wait_answers_the_finished_run_in_one_call(agent):
    step = {"id": "echo", "uses": "debug.echo", "with": {"answer": "${params.n}"}}
    task = await create_task(agent, pipeline_task(step, params={"n": 42}))
    response = await agent.post(f"/tasks/{task['id']}/run_now", params={"wait": 10})
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] == "succeeded" and run["steps"][0]["output"] == {"answer": 42}
    assert run["attempts"] == [] and run["steps"][0]["tries"] == []
    assert run["timing"] is not None and adds_up(run["timing"]), run["timing"]
    assert run["webhook_deliveries"] == []


async def test_a_wait_ends_with_the_run_or_when_its_time_runs_out(agent):
    short = await create_task(agent, sleep_task(1))
    (run_id,) = await run_now(agent, short["id"])
    started = time.monotonic()
    run = (await agent.get(f"/runs/{run_id}", params={"wait": 20})).json()
    assert run["status"] == "succeeded" and 0.3 < time.monotonic() - started < 10

    long = await create_task(agent, sleep_task(30))
    (run_id,) = await run_now(agent, long["id"])
    started = time.monotonic()
    run = (await agent.get(f"/runs/{run_id}", params={"wait": 1.5})).json()
    assert run["status"] in ("queued", "running") and 1.4 < time.monotonic() - started < 5
    await agent.post(f"/runs/{run_id}/cancel")
    # A cancel ends the run: a waiter hears it at once.
    started = time.monotonic()
    run = (await agent.get(f"/runs/{run_id}", params={"wait": 20})).json()
    assert run["status"] == "canceled" and time.monotonic() - started < 10

    for bad in ("61", "-1", "soon"):
        refused = await agent.get(f"/runs/{run_id}", params={"wait": bad})
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["path"] == "query.wait"


async def test_waiting_on_another_agents_run_is_a_404(running, admin, agent):
    task = await create_task(agent, sleep_task(5))
    (run_id,) = await run_now(agent, task["id"])
    async with agent_client(running, admin) as other:
        started = time.monotonic()
        response = await other.get(f"/runs/{run_id}", params={"wait": 10})
        assert response.status_code == 404 and time.monotonic() - started < 3
        response = await other.post(f"/tasks/{task['id']}/run_now", params={"wait": 10})
        assert response.status_code == 404
    await agent.post(f"/runs/{run_id}/cancel")


async def test_a_retried_run_shows_its_failed_attempts(agent):
    step = {"id": "flaky", "uses": "debug.fail", "with": {"times": 2}}
    task = await create_task(agent, pipeline_task(step, max_retries=3, backoff_strategy="fixed"))
    run = (await agent.post(f"/tasks/{task['id']}/run_now", params={"wait": 20})).json()
    assert (run["status"], run["attempt"]) == ("succeeded", 3)
    assert [a["number"] for a in run["attempts"]] == [1, 2]
    for attempt in run["attempts"]:
        assert attempt["worker_id"] and attempt["duration_ms"] is not None
        assert attempt["started_at"] <= attempt["finished_at"] <= run["started_at"]
        assert attempt["error"]["type"] == "tool_error" and attempt["error"]["step_id"] == "flaky"
        assert attempt["error"]["message"].startswith("debug.fail: failing attempt")
    timing = run["timing"]
    assert adds_up(timing) and timing["earlier_attempts_ms"] >= 100  # two waits of 50 ms
    listed = (await agent.get("/runs", params={"task_id": task["id"]})).json()["items"]
    assert listed[0]["attempts"] == run["attempts"]


async def test_a_step_retried_inside_a_run_shows_its_tries_and_backoff(agent):
    steps: list[dict[str, Any]] = [
        {"id": "flaky", "uses": "debug.fail", "with": {"times": 2}, "max_retries": 3},
        {"id": "nap", "uses": "debug.sleep", "with": {"seconds": 0.2}},
    ]
    task = await create_task(agent, pipeline_task(*steps, max_retries=0))
    run = (await agent.post(f"/tasks/{task['id']}/run_now", params={"wait": 20})).json()
    assert run["status"] == "succeeded" and run["attempts"] == []
    flaky = run["steps"][0]
    assert flaky["attempt"] == 3 and [t["try"] for t in flaky["tries"]] == [1, 2]
    assert [t["error"]["type"] for t in flaky["tries"]] == ["tool_error", "tool_error"]
    # Step backoff: base * 2^(n-1) with ORDINAUT_RETRY_BASE_SECONDS=0.05 → 50 ms, 100 ms.
    first, second = (t["backoff_ms"] for t in flaky["tries"])
    assert 45 <= first < 1000 and 95 <= second < 1000, flaky["tries"]
    assert all(t["started_at"] < flaky["started_at"] for t in flaky["tries"])
    timing = run["timing"]
    assert adds_up(timing), timing
    assert timing["step_backoff_ms"] == sum(t["backoff_ms"] for t in flaky["tries"])
    assert timing["steps_ms"] >= 200  # the nap
    assert run["duration_ms"] >= timing["steps_ms"] + timing["step_backoff_ms"]


async def test_a_skipped_step_says_why(agent):
    steps = [
        {"id": "check", "uses": "debug.echo", "with": {"ok": False}, "save_as": "check"},
        {"id": "notify", "uses": "debug.echo", "with": {}, "if": "${steps.check.ok}"},
    ]
    task = await create_task(agent, pipeline_task(*steps))
    run = (await agent.post(f"/tasks/{task['id']}/run_now", params={"wait": 20})).json()
    skipped = run["steps"][1]
    assert skipped["status"] == "skipped"
    assert skipped["skip_reason"] == {"if": "steps.check.ok", "value": False}


async def test_a_running_run_shows_the_steps_it_finished(agent):
    steps = [{"id": f"s{i}", "uses": "debug.sleep", "with": {"seconds": 0.8}} for i in range(5)]
    task = await create_task(agent, pipeline_task(*steps))
    (run_id,) = await run_now(agent, task["id"])
    seen: list[tuple[str, int]] = []

    async def probe() -> dict[str, Any]:
        run = (await agent.get(f"/runs/{run_id}")).json()
        seen.append((run["status"], len(run["steps"])))
        return run

    run = await eventually(probe, until=lambda r: r["status"] == "succeeded", interval=0.1)
    while_running = sorted({count for status, count in seen if status == "running"})
    # Written about a second after each step (and by the heartbeat), not only at the end.
    assert len([c for c in while_running if 1 <= c < 5]) >= 2, seen
    assert [s["id"] for s in run["steps"]] == [f"s{i}" for i in range(5)]


@dataclass
class Stream:
    """A ``GET /runs/stream`` read in the background: its events, in order."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # the server closed it
    content_type: str = ""

    def about(self, run_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (name, data)
            for name, data in self.events
            if data.get("id") == run_id or data.get("run_id") == run_id
        ]


@contextlib.asynccontextmanager
async def following(http: httpx.AsyncClient, **params: Any) -> AsyncIterator[Stream]:
    stream = Stream()

    async def read() -> None:
        async with http.stream("GET", "/runs/stream", params=params, timeout=None) as response:
            stream.content_type = response.headers["content-type"]
            block: list[str] = []
            async for line in response.aiter_lines():
                stream.raw.append(line)
                if line.startswith(": subscribed"):
                    stream.subscribed.set()
                if line:
                    block.append(line)
                    continue
                fields = dict(part.split(": ", 1) for part in block if not part.startswith(":"))
                block = []
                if "event" in fields:
                    assert fields["id"].isdigit()
                    stream.events.append((fields["event"], json.loads(fields["data"])))
        stream.ended.set()

    reader = asyncio.create_task(read())
    await asyncio.wait_for(stream.subscribed.wait(), timeout=10)
    try:
        yield stream
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_the_stream_delivers_each_state_change_to_its_agent_only(running, admin, agent):
    steps = [
        {"id": "flaky", "uses": "debug.fail", "with": {"times": 1}},
        {"id": "echo", "uses": "debug.echo", "with": {"x": 1}},
    ]
    task = await create_task(agent, pipeline_task(*steps, max_retries=1, backoff_strategy="fixed"))
    async with (
        agent_client(running, admin) as other,
        following(agent) as mine,
        following(other) as theirs,
        following(admin, task_id=task["id"], status="succeeded") as watching,
    ):
        theirs_task = await create_task(other, pipeline_task(steps[1]))
        (run_id,) = await run_now(agent, task["id"])
        (their_run,) = await run_now(other, theirs_task["id"])
        await eventually(
            lambda: _value(mine.about(run_id)),
            until=lambda events: any(name == "run.succeeded" for name, _ in events),
        )
        await eventually(
            lambda: _value(theirs.about(their_run)),
            until=lambda events: any(name == "run.succeeded" for name, _ in events),
        )
        await eventually(lambda: _value(watching.events), until=lambda e: len(e) >= 3)
        final = (await agent.get(f"/runs/{run_id}")).json()

    assert mine.content_type.startswith("text/event-stream")
    events = mine.about(run_id)
    states = [name for name, _ in events if name.startswith("run.")]
    assert states == [
        "run.queued",
        "run.running",
        "run.failed",
        "run.running",
        "run.succeeded",
    ], events
    assert [data["attempt"] for name, data in events if name.startswith("run.")] == [0, 1, 1, 2, 2]
    # The last attempt's steps, in order, before the state they led to.
    last = [data for name, data in events if name == "step.finished" and data["attempt"] == 2]
    assert [(d["index"], d["step"]["id"]) for d in last] == [(0, "flaky"), (1, "echo")]
    assert [name for name, _ in events][-3:] == ["step.finished", "step.finished", "run.succeeded"]
    succeeded = events[-1][1]
    final.pop("webhook_deliveries")
    assert succeeded["run"] == final and succeeded["task_id"] == task["id"]
    # Isolation: neither agent hears the other's runs; the admin's filters hold.
    assert mine.about(their_run) == [] and theirs.about(run_id) == []
    assert {name for name, _ in watching.events} == {"step.finished", "run.succeeded"}
    assert all(d.get("task_id") == task["id"] for _, d in watching.events)


async def test_a_closed_stream_is_forgotten(running, agent):
    api = running.processes[0]
    metrics_url = f"http://127.0.0.1:{api.port}/metrics"

    async def subscribers() -> float:
        async with httpx.AsyncClient() as http:
            text = (await http.get(metrics_url)).text
        (line,) = [row for row in text.splitlines() if row.startswith("ordinaut_run_stream_subs")]
        return float(line.split()[-1])

    await eventually(subscribers, until=lambda n: n == 0, message="earlier streams to close")
    async with following(agent), following(agent):
        assert await subscribers() == 2
    await eventually(subscribers, until=lambda n: n == 0, message="streams to close")


async def test_a_stream_ends_when_its_token_loses_access(running, admin):
    """Each way of taking access away closes an open stream within the recheck period
    (0.5 s here): a rotated (revoked) token, a scope taken away, a deleted agent. Until
    then it delivers, and an untouched agent's stream stays open."""
    agents = []
    for _ in range(4):
        created = await admin.post(
            "/agents", json={"name": f"s-{time.time_ns()}", "scopes": AGENT_SCOPES}
        )
        assert created.status_code == 201, created.text
        agents.append(created.json())
    api = running.processes[0]
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(api_client(api, a["token"])) for a in agents]
        streams = [await stack.enter_async_context(following(c)) for c in clients]
        rotated, narrowed, deleted, untouched = (a["id"] for a in agents)
        task = await create_task(
            clients[0], pipeline_task({"id": "e", "uses": "debug.echo", "with": {"x": 1}})
        )
        (run_id,) = await run_now(clients[0], task["id"])
        await eventually(
            lambda: _value(streams[0].about(run_id)),
            until=lambda events: any(name == "run.succeeded" for name, _ in events),
            message="the stream to deliver while its token is valid",
        )

        rotation = await admin.post(f"/agents/{rotated}/tokens")
        assert rotation.status_code == 201, rotation.text
        narrowing = await admin.patch(f"/agents/{narrowed}", json={"scopes": ["tasks:read"]})
        assert narrowing.status_code == 200, narrowing.text
        assert (await admin.delete(f"/agents/{deleted}")).status_code == 204
        for stream in streams[:3]:
            await asyncio.wait_for(stream.ended.wait(), timeout=5)
        await asyncio.sleep(1.5)  # three recheck periods
        assert not streams[3].ended.is_set()
        assert (await clients[3].get("/agents/me")).json()["id"] == untouched


async def test_a_console_run_stream_ends_when_its_session_does(running, admin, agent):
    """The console's stream of a running run closes within the recheck period once its
    session is signed out, although the run goes on."""
    task = await create_task(agent, sleep_task(20))
    (run_id,) = await run_now(agent, task["id"])
    await eventually(
        lambda: agent.get(f"/runs/{run_id}"),
        until=lambda r: r.json()["status"] == "running",
        message="the run to start",
    )
    api = running.processes[0]
    base = f"http://127.0.0.1:{api.port}"
    token = agent.headers["authorization"].split(" ", 1)[1]
    async with httpx.AsyncClient(base_url=base, timeout=10) as browser:
        signed_in = await browser.post("/ui/login", data={"token": token}, headers={"origin": base})
        assert signed_in.status_code == 303 and "ordinaut_session" in browser.cookies
        page = (await browser.get(f"/ui/runs/{run_id}")).text
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found, page
        csrf = found.group(1)
        lines: list[str] = []
        async with browser.stream("GET", f"/ui/runs/{run_id}/stream", timeout=None) as events:
            assert events.status_code == 200
            lines_read = events.aiter_lines()
            lines.append(await anext(lines_read))  # "event: changed": subscribed
            out = await browser.post(
                "/ui/logout", data={"csrf_token": csrf}, headers={"origin": base}
            )
            assert out.status_code == 303
            async with asyncio.timeout(5):
                lines.extend([line async for line in lines_read])
    assert lines[0] == "event: changed"
    assert "event: ended" not in lines  # closed for the session, not because the run ended
    assert (await agent.get(f"/runs/{run_id}")).json()["status"] == "running"
    await agent.post(f"/runs/{run_id}/cancel")


async def _value(value: Any) -> Any:
    return value
