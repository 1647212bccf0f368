"""What the logs and the start-delay metric show of real work: a line per finished run and
per retried step try, a ``process`` on every line, probes out of the access log at INFO,
and late-queued runs kept out of ``ordinaut_run_start_delay_seconds``."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import api_client, cluster, eventually, free_port

pytestmark = pytest.mark.e2e


def lines(process: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.output().splitlines() if line.startswith("{")]


def sample(metrics: str, name: str, trigger: str) -> float:
    found = re.search(rf'^{name}{{trigger="{trigger}"}} (\S+)$', metrics, re.M)
    assert found, name
    return float(found.group(1))


def task(title: str, when: str, kind: str = "once", **step: Any) -> dict[str, Any]:
    uses = step.pop("uses", "debug.echo")
    arguments = step.pop("with", {"x": 1})
    return {
        "title": title,
        "schedule_kind": kind,
        "schedule_expr": when,
        "payload": {"pipeline": [{"id": "s", "uses": uses, "with": arguments, **step}]},
    }


async def test_logs_and_start_delay_of_real_runs(fresh_db: str, tmp_path: Path) -> None:
    metrics_port = free_port()
    with cluster(fresh_db, tmp_path, ORDINAUT_RETRY_BASE_SECONDS="0.05") as running:
        api = running.api()
        running.scheduler()
        worker = running.worker(concurrency=4, metrics_port=metrics_port)
        backdated = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        async with api_client(api) as http:
            old = (await http.post("/tasks", json=task("backdated", backdated))).json()
            flaky_doc = task(
                "flaky",
                "0 0 1 1 *",
                "cron",
                uses="debug.fail",
                max_retries=2,
                **{"with": {"times": 1}},
            )
            flaky = (await http.post("/tasks", json=flaky_doc)).json()
            manual = (await http.post(f"/tasks/{flaky['id']}/run_now")).json()

            async def finished() -> list[dict[str, Any]]:
                answer = await http.get("/runs", params={"status": "succeeded"})
                return answer.json()["items"]

            runs = await eventually(finished, until=lambda r: len(r) == 2, timeout=30)
            for _ in range(3):  # probes that must not reach the access log at INFO
                assert (await http.get("/health/ready")).status_code == 200
        async with httpx.AsyncClient() as scraper:
            metrics = (await scraper.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    assert {r["task_id"] for r in runs} == {old["id"], flaky["id"]}
    assert manual["id"] in {r["id"] for r in runs}

    assert sample(metrics, "ordinaut_run_late_start_seconds_count", "schedule") == 1
    assert sample(metrics, "ordinaut_run_late_start_seconds_sum", "schedule") > 7000
    assert sample(metrics, "ordinaut_run_start_delay_seconds_count", "schedule") == 0
    assert sample(metrics, "ordinaut_run_start_delay_seconds_count", "manual") == 1
    assert sample(metrics, "ordinaut_run_start_delay_seconds_sum", "manual") < 5

    worker_lines = lines(worker)
    assert all(line["process"] == "worker" for line in worker_lines)
    finished_lines = [
        entry for entry in worker_lines if entry["message"].startswith("run succeeded in ")
    ]
    assert {entry["run_id"] for entry in finished_lines} == {r["id"] for r in runs}
    for line in finished_lines:
        assert line["level"] == "info" and line["status"] == "succeeded"
        assert {"task_id", "attempt", "duration_ms", "worker_id"} <= set(line)
    (retry,) = [entry for entry in worker_lines if "try 1 failed, retrying" in entry["message"]]
    assert retry["run_id"] == manual["id"] and retry["step_id"] == "s"
    assert retry["message"].startswith("step s try 1 failed, retrying in ")

    api_lines = lines(api)
    assert all(line["process"] == "api" for line in api_lines)
    access = [entry["message"] for entry in api_lines if entry["logger"] == "ordinaut.api.access"]
    assert any(m.startswith("POST /tasks ") for m in access)
    assert not any("/health" in m for m in access), access
