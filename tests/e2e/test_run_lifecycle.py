"""The run state machine through the API with real workers: retries, timeouts, cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import clone_database, drop_database
from tests.e2e.workload import create_task, pipeline_task, run_now, run_status, sleep_task
from tests.support import Cluster, api_client, cluster, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One API, two workers and a scheduler for the whole module (each test uses its own
    tasks)."""
    database = clone_database(server_url, template_url)
    workdir = Path(tmp_path_factory.mktemp("lifecycle"))
    try:
        with cluster(database, workdir, ORDINAUT_RETRY_BASE_SECONDS="0.05") as processes:
            processes.api()
            processes.worker(concurrency=5)
            processes.worker(concurrency=5)
            processes.scheduler()  # for the `once` tasks; the others are event tasks
            yield processes
    finally:
        drop_database(server_url, database)


@pytest.fixture
async def client(running: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(running.processes[0]) as http:
        yield http


def failing(times: int, **overrides):
    step = {"id": "flaky", "uses": "debug.fail", "with": {"times": times}}
    return pipeline_task(step, backoff_strategy="fixed", **overrides)


async def test_retries_reach_success_on_the_right_attempt(client):
    task = await create_task(client, failing(2, max_retries=3))
    (run_id,) = await run_now(client, task["id"])
    run = await run_status(client, run_id, "succeeded", "dead")
    assert run["status"] == "succeeded"
    assert run["attempt"] == 3
    assert run["steps"][0]["output"] == {"attempt": 3}
    assert run["error"] is None


async def test_a_run_is_dead_after_max_retries(client):
    task = await create_task(client, failing(10, max_retries=2))
    (run_id,) = await run_now(client, task["id"])
    run = await run_status(client, run_id, "succeeded", "dead")
    assert run["status"] == "dead"
    assert run["attempt"] == 3
    assert run["error"]["step_id"] == "flaky"
    assert run["error"]["type"] == "tool_error" and run["error"]["retryable"] is True


async def test_invalid_tool_input_at_run_time_is_not_retried(client):
    step = {"id": "nap", "uses": "debug.sleep", "with": {"seconds": "${params.seconds}"}}
    task = await create_task(client, pipeline_task(step, params={"seconds": "soon"}, max_retries=5))
    (run_id,) = await run_now(client, task["id"])
    run = await run_status(client, run_id, "succeeded", "dead")
    assert (run["status"], run["attempt"]) == ("dead", 1)
    assert run["error"]["type"] == "invalid_input" and run["error"]["retryable"] is False


async def test_a_step_timeout_fails_the_attempt_and_the_worker_carries_on(client):
    step = {"id": "nap", "uses": "debug.sleep", "with": {"seconds": 30}, "timeout_seconds": 0.3}
    task = await create_task(client, pipeline_task(step, max_retries=0))
    (run_id,) = await run_now(client, task["id"])
    run = await run_status(client, run_id, "succeeded", "dead")
    assert run["status"] == "dead"
    assert run["error"]["type"] == "timeout" and run["error"]["step_id"] == "nap"
    assert run["steps"][0]["status"] == "failed"
    quick = await create_task(client, sleep_task(0))
    (after,) = await run_now(client, quick["id"])
    assert (await run_status(client, after, "succeeded"))["status"] == "succeeded"


async def test_a_run_timeout_stops_the_whole_run(client):
    steps = [
        {"id": "first", "uses": "debug.echo", "with": {"n": 1}},
        {"id": "nap", "uses": "debug.sleep", "with": {"seconds": 30}},
    ]
    task = await create_task(client, pipeline_task(*steps, timeout_seconds=1, max_retries=0))
    (run_id,) = await run_now(client, task["id"])
    run = await run_status(client, run_id, "succeeded", "dead", timeout=15)
    assert run["status"] == "dead"
    assert run["error"]["type"] == "timeout" and "1s" in run["error"]["message"]
    assert [step["id"] for step in run["steps"]] == ["first"], "finished steps are kept"


async def test_cancel_a_running_run(client):
    task = await create_task(client, sleep_task(30))
    (run_id,) = await run_now(client, task["id"])
    await run_status(client, run_id, "running")
    response = await client.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 200, response.text
    run = await run_status(client, run_id, "canceled", timeout=5)
    assert run["error"]["type"] == "canceled"
    again = await client.post(f"/runs/{run_id}/cancel")
    assert again.status_code == 409


async def test_cancel_a_queued_run(client):
    blocker = await create_task(client, sleep_task(30, concurrency_key="lane"))
    (running_id,) = await run_now(client, blocker["id"])
    await run_status(client, running_id, "running")
    (queued_id,) = await run_now(client, blocker["id"])
    assert (await client.get(f"/runs/{queued_id}")).json()["status"] == "queued"
    response = await client.post(f"/runs/{queued_id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"
    await client.post(f"/runs/{running_id}/cancel")
    assert (await run_status(client, running_id, "canceled", timeout=5))["status"] == "canceled"


async def test_retry_of_a_dead_run_queues_a_new_run(client):
    task = await create_task(client, failing(1, max_retries=0))
    (run_id,) = await run_now(client, task["id"])
    await run_status(client, run_id, "dead")
    response = await client.post(f"/runs/{run_id}/retry")
    assert response.status_code == 202, response.text
    retry = response.json()
    assert retry["id"] != run_id and retry["trigger"] == "retry" and retry["retry_of"] == run_id
    finished = await run_status(client, retry["id"], "succeeded", "dead")
    assert (finished["attempt"], finished["trigger"]) == (1, "retry")


async def test_only_failed_or_dead_runs_can_be_retried(client):
    task = await create_task(client, sleep_task(0))
    (run_id,) = await run_now(client, task["id"])
    await run_status(client, run_id, "succeeded")
    refused = await client.post(f"/runs/{run_id}/retry")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"


async def test_outputs_postgres_cannot_store_are_stored_replaced(client):
    """A NUL character and a lone surrogate (reachable from a template or a tool's JSON) are
    refused by jsonb; the run is recorded with them replaced and the worker goes on (it used
    to retry the refused batch forever). A template that gives NaN or an infinity fails its
    step instead (issue 17: no non-finite number reaches a tool)."""
    echo = {
        "id": "odd",
        "uses": "debug.echo",
        "with": {
            "nul": 'a${`"\\u0000"`}b',
            "lone": '${`"\\udc80"`}',
            "pair": '${`"\\ud83d\\ude00"`}',
            "ok": "fine",
        },
    }
    task = await create_task(client, pipeline_task(echo))
    (run_id,) = await run_now(client, task["id"])
    run = await run_status(client, run_id, "succeeded", "dead")
    assert run["status"] == "succeeded", run
    assert run["steps"][0]["output"] == {
        "nul": "a\ufffdb",
        "lone": "\ufffd",
        "pair": "\U0001f600",
        "ok": "fine",
    }
    nan = {"id": "nan", "uses": "debug.echo", "with": {"inf": ["${`-Infinity`}", 1.5]}}
    task = await create_task(client, pipeline_task(nan))
    (run_id,) = await run_now(client, task["id"])
    run = await run_status(client, run_id, "succeeded", "dead")
    assert (run["status"], run["error"]["type"]) == ("dead", "template_error"), run
    later = await create_task(client, failing(0))
    (later_run,) = await run_now(client, later["id"])
    assert (await run_status(client, later_run, "succeeded", "dead"))["status"] == "succeeded"


async def test_a_once_task_is_completed_whatever_its_run_ended_as(client):
    """`once` → completed after its run ends: succeeded, dead or canceled alike."""
    past = {"schedule_kind": "once", "schedule_expr": "2020-01-01T00:00:00Z"}
    dead = await create_task(client, failing(5, max_retries=0, **past))
    slow = await create_task(client, sleep_task(30, **past))

    async def only_run(task_id: str, *statuses: str) -> dict:
        async def runs() -> list[dict]:
            return (await client.get("/runs", params={"task_id": task_id})).json()["items"]

        (run,) = await eventually(runs, until=lambda items: len(items) == 1, timeout=20)
        return await run_status(client, run["id"], *statuses)

    assert (await only_run(dead["id"], "dead", "succeeded"))["status"] == "dead"
    running = await only_run(slow["id"], "running")
    assert (await client.post(f"/runs/{running['id']}/cancel")).status_code == 200
    await run_status(client, running["id"], "canceled", timeout=5)
    for task in (dead, slow):

        async def status(task_id: str = task["id"]) -> str:
            return str((await client.get(f"/tasks/{task_id}")).json()["status"])

        await eventually(status, until=lambda s: s == "completed", timeout=10)
