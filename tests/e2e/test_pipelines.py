"""Pipelines end to end with real processes: Ordinaut's documented examples, and the
acceptance test (a real MCP tool and an HTTP tool, typed values, a step skipped by ``if``)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from engine.examples import quick_start_pipeline
from tests.servers.http_tool_server import serve_http_tools
from tests.support import api_client, cluster, eventually

pytestmark = pytest.mark.e2e

PAST = "2020-01-01T00:00:00Z"


def once(title: str, pipeline: list[dict[str, Any]], params: dict[str, Any] | None = None):
    return {
        "title": title,
        "schedule_kind": "once",
        "schedule_expr": PAST,
        "max_retries": 0,
        "payload": {"params": params or {}, "pipeline": pipeline},
    }


async def finished_run(client: httpx.AsyncClient, task_id: str, timeout: float = 30) -> dict:
    """The task's first run once it is finished (succeeded, dead or canceled)."""

    async def runs() -> list[dict]:
        return (await client.get("/runs", params={"task_id": task_id})).json()["items"]

    items = await eventually(
        runs,
        until=lambda rs: bool(rs) and rs[0]["status"] in ("succeeded", "dead", "canceled"),
        timeout=timeout,
        message=f"a finished run of task {task_id}",
    )
    return (await client.get(f"/runs/{items[0]['id']}")).json()


async def create(client: httpx.AsyncClient, document: dict[str, Any]) -> str:
    response = await client.post("/tasks", json=document)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


QUICK_START = quick_start_pipeline()

IF_OVER_A_STEP: list[dict[str, Any]] = [
    {"id": "check", "uses": "debug.echo", "with": {"ok": False, "n": 3}, "save_as": "check"},
    {"id": "only_if_ok", "uses": "debug.log", "with": {"message": "ok"}, "if": "steps.check.ok"},
    {
        "id": "otherwise",
        "uses": "debug.echo",
        "with": {"n_plus": "${sum([steps.check.n, `1`])}", "note": "n was ${steps.check.n}"},
        "if": "${!(steps.check.ok) && steps.check.n > `2`}",
    },
]


ON_EVENT: list[dict[str, Any]] = [
    {
        "id": "use_payload",
        "uses": "debug.echo",
        "with": {
            "city": "${event.payload.city}",
            "temperature": "${event.payload.temperature}",
            "line": "${event.topic}: ${event.payload.city} at ${event.payload.temperature}",
        },
    }
]

PUBLISH: list[dict[str, Any]] = [
    {
        "id": "publish",
        "uses": "events.publish",
        "with": {
            "topic": "reports.daily.ready",
            "payload": {"city": "${params.city}", "temperature": "${params.t}"},
        },
        "save_as": "published",
    },
    {"id": "count", "uses": "debug.echo", "with": {"runs": "${length(steps.published.runs)}"}},
]

# The run fails after publishing and is retried: the retry must not publish a second time.
PUBLISH_THEN_FAIL: list[dict[str, Any]] = [
    {"id": "publish", "uses": "events.publish", "with": {"topic": "audit.published"}},
    {"id": "fail_once", "uses": "debug.fail", "with": {"times": 1}},
]


async def test_documented_examples_run_end_to_end(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path, ORDINAUT_RETRY_BASE_SECONDS="0.2") as running:
        api = running.api()
        running.scheduler()
        worker = running.worker(concurrency=4)
        async with api_client(api) as client:
            listener = await create(
                client,
                {
                    "title": "on report",
                    "schedule_kind": "event",
                    "schedule_expr": "reports.*.ready",
                    "payload": {"pipeline": ON_EVENT},
                },
            )
            quick = await create(client, once("quick start", QUICK_START, {"city": "Chisinau"}))
            branch = await create(client, once("if over a step", IF_OVER_A_STEP))
            publisher = await create(
                client, once("publisher", PUBLISH, {"city": "Chisinau", "t": 21.5})
            )
            audit_listener = await create(
                client,
                {
                    "title": "on publish",
                    "schedule_kind": "event",
                    "schedule_expr": "audit.published",
                    "payload": {"pipeline": [{"id": "e", "uses": "debug.echo", "with": {}}]},
                },
            )
            retried = await create(
                client, {**once("publish, fail, retry", PUBLISH_THEN_FAIL), "max_retries": 1}
            )

            run = await finished_run(client, quick)
            assert run["status"] == "succeeded", run
            greet, log = run["steps"]
            assert greet["output"] == {"message": "Hello Chisinau"}
            assert log["output"] == {"message": "Hello Chisinau", "level": "info"}
            assert (log["status"], log["attempt"]) == ("succeeded", 1)
            assert log["started_at"] and log["duration_ms"] is not None

            run = await finished_run(client, branch)
            assert run["status"] == "succeeded", run
            assert [s["status"] for s in run["steps"]] == ["succeeded", "skipped", "succeeded"]
            assert run["steps"][2]["output"] == {"n_plus": 4, "note": "n was 3"}

            run = await finished_run(client, publisher)
            assert run["status"] == "succeeded", run
            published = run["steps"][0]["output"]
            assert [r["task_id"] for r in published["runs"]] == [listener]
            assert run["steps"][1]["output"] == {"runs": 1}

            run = await finished_run(client, listener)
            assert run["status"] == "succeeded", run
            assert run["trigger"] == "event"
            assert run["id"] == published["runs"][0]["run_id"]
            assert run["steps"][0]["output"] == {
                "city": "Chisinau",
                "temperature": 21.5,
                "line": "reports.daily.ready: Chisinau at 21.5",
            }

            run = await finished_run(client, retried)
            assert (run["status"], run["attempt"]) == ("succeeded", 2), run
            await finished_run(client, audit_listener)
            audit_runs = await client.get("/runs", params={"task_id": audit_listener})
            assert [r["id"] for r in audit_runs.json()["items"]] == [
                r["run_id"] for r in run["steps"][0]["output"]["runs"]
            ]  # one run from the first attempt's publication; the retry published nothing

            await eventually(
                _async(lambda: "Hello Chisinau" in worker.output()),
                message="debug.log's line in the worker log",
            )


async def test_the_acceptance_pipeline_mcp_and_http_tools(fresh_db, tmp_path):
    with serve_http_tools() as http_server, cluster(fresh_db, tmp_path) as running:
        api = running.api()
        running.scheduler()
        running.worker(concurrency=4, ORDINAUT_HTTP_ALLOW="127.0.0.1")
        async with api_client(api) as client:
            # Registered while the worker runs: it must see them without a restart.
            for tool in (
                {
                    "address": "weather.forecast",
                    "transport": "mcp",
                    "server": f"{sys.executable} -m tests.servers.mcp_server",
                    "tool": "forecast",
                    "input_schema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                        "required": ["city"],
                    },
                    "output_schema": {
                        "type": "object",
                        "properties": {
                            "temperature": {"type": "number"},
                            "sunny": {"type": "boolean"},
                        },
                        "required": ["temperature", "sunny"],
                    },
                    "timeout_seconds": 60,
                },
                {
                    "address": "reports.store",
                    "transport": "http",
                    "endpoint": http_server.url + "/echo",
                    "input_schema": {
                        "type": "object",
                        "properties": {"temperature": {"type": "number"}},
                        "required": ["temperature", "sunny", "tags"],
                    },
                },
            ):
                created = await client.post("/tools", json=tool)
                assert created.status_code == 201, created.text

            document = once(
                "weather report",
                [
                    {
                        "id": "forecast",
                        "uses": "weather.forecast",
                        "with": {"city": "${params.city}", "days": "${params.days}"},
                        "save_as": "weather",
                    },
                    {
                        "id": "store",
                        "uses": "reports.store",
                        "with": {
                            "temperature": "${steps.weather.temperature}",
                            "sunny": "${steps.weather.sunny}",
                            "tags": "${steps.weather.tags}",
                            "summary": "${steps.weather.city}: ${steps.weather.temperature}°C",
                        },
                        "save_as": "stored",
                    },
                    {
                        "id": "umbrella",
                        "uses": "debug.log",
                        "with": {"message": "take an umbrella", "level": "warning"},
                        "if": "steps.weather.sunny == `false`",
                    },
                    {
                        "id": "check",
                        "uses": "http.request",
                        "with": {"method": "GET", "url": http_server.url + "/text"},
                        "save_as": "check",
                    },
                    {
                        "id": "done",
                        "uses": "debug.echo",
                        "with": {
                            "received": "${steps.stored.received.temperature}",
                            "status": "${steps.check.status}",
                        },
                    },
                ],
                {"city": "Paris", "days": 2},
            )
            task_id = await create(client, document)
            run = await finished_run(client, task_id, timeout=60)
            assert run["status"] == "succeeded", run
            statuses = {s["id"]: s["status"] for s in run["steps"]}
            assert statuses == {
                "forecast": "succeeded",
                "store": "succeeded",
                "umbrella": "skipped",
                "check": "succeeded",
                "done": "succeeded",
            }
            forecast = run["steps"][0]["output"]
            assert forecast["temperature"] == 23.5 and forecast["sunny"] is True
            assert run["steps"][4]["output"] == {"received": 23.5, "status": 200}

        posted = [r for r in http_server.requests if r.path == "/echo"]
        assert len(posted) == 1
        body = posted[0].body
        # Typed values crossed two tools unchanged: number, boolean, array; text interpolated.
        assert body == {
            "temperature": 23.5,
            "sunny": True,
            "tags": ["test"],
            "summary": "Paris: 23.5°C",
        }
        assert posted[0].headers["idempotency-key"] == f"{run['id']}:store"


async def test_bad_pipelines_are_422_with_every_problem(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        async with api_client(api) as client:
            document = once(
                "broken",
                [
                    {"id": "a", "uses": "weather.nowhere", "with": {"city": "X"}},
                    {"id": "b", "uses": "debug.echo", "with": {"x": "${steps.ghost.value}"}},
                    {"id": "b", "uses": "debug.log", "with": {"message": 42}},
                    {
                        "id": "c",
                        "uses": "http.request",
                        "with": {"method": "FETCH", "url": "file:///etc/passwd"},
                    },
                    {"id": "d", "uses": "debug.echo", "if": "steps.a.ok ==="},
                ],
            )
            response = await client.post("/tasks", json=document)
            assert response.status_code == 422
            error = response.json()["error"]
            assert error["code"] == "validation_error"
            assert [(d["path"], d["type"]) for d in error["details"]] == [
                ("$.payload.pipeline[0].uses", "unknown_tool"),
                ("$.payload.pipeline[1].with.x", "unknown_step_reference"),
                ("$.payload.pipeline[2].id", "duplicate_id"),
                ("$.payload.pipeline[2].with.message", "schema"),
                ("$.payload.pipeline[3].with.method", "schema"),
                ("$.payload.pipeline[3].with.url", "schema"),
                ("$.payload.pipeline[4].if", "jmespath"),
            ]
            assert (await client.get("/tasks")).json()["items"] == []


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return bool(check())

    return probe
