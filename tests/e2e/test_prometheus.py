"""A real Prometheus scrapes real `ordinaut api`, `scheduler` and `worker` processes; every
dashboard panel query and every alert rule is evaluated through its HTTP API.

Proves: each query parses, every metric it names is exported by a running process, every
panel returns data, every rule loads and evaluates, and every `ordinaut_` name used under
ops/ is exported. Also checks the processes' logs (JSON lines with context) and health.

Needs Debian's `prometheus` package (`.ci/run` installs it). Without it the test skips,
saying so — except under CI=true, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from observability import metrics
from store.db import connect
from tests.conftest import clone_database, drop_database
from tests.ops_files import (
    METRIC_NAME,
    RULES,
    alert_names,
    dashboard_sql_targets,
    dashboard_targets,
    dashboard_variable_queries,
    names_used_in_ops,
)
from tests.support import Cluster, Process, api_client, cluster, echo_task, eventually, free_port

pytestmark = pytest.mark.e2e

# What Grafana substitutes before sending a panel query; $__rate_interval is at least four
# scrape intervals (here 1 s), and a minute covers the whole workload.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$tool": ".*"}
JOBS = ("ordinaut-api", "ordinaut-scheduler", "ordinaut-worker")


def require_binary(name: str) -> str:
    """The binary's path; skip (fail under CI=true) when it is not installed."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path:
        return path
    message = (
        f"`{name}` not found: install Debian's `prometheus` package "
        "(apt-get install --no-install-recommends prometheus; .ci/run does)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Stack:
    """The running processes, Prometheus, and what the workload created."""

    running: Cluster
    api: Process
    scheduler: Process
    worker: Process
    prometheus_url: str
    task_ids: dict[str, str] = field(default_factory=dict)

    def targets(self) -> dict[str, Process]:
        return {
            "ordinaut-api": self.api,
            "ordinaut-scheduler": self.scheduler,
            "ordinaut-worker": self.worker,
        }


def prometheus_config(stack_ports: dict[str, int], rules_dir: Path) -> str:
    """Scrape every second; the job names are those of ops/prometheus/prometheus.yml."""
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        for job, port in stack_ports.items()
    )
    return (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {rules_dir}/*.yml\n"
        f"scrape_configs:\n{jobs}"
    )


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    return require_binary("prometheus")


@pytest.fixture(scope="module")
def module_db(server_url: str, template_url: str) -> Iterator[str]:
    url = clone_database(server_url, template_url)
    yield url
    drop_database(server_url, url)


@pytest.fixture(scope="module")
async def stack(
    prometheus_binary: str, module_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    workdir = tmp_path_factory.mktemp("observability")
    with cluster(module_db, workdir, ORDINAUT_RETRY_BASE_SECONDS="0.05") as running:
        api = running.api()
        scheduler = running.scheduler(metrics_port=free_port())
        worker = running.worker(concurrency=4, metrics_port=free_port(), ORDINAUT_LOG_LEVEL="DEBUG")
        ports = {
            "ordinaut-api": api.port,
            "ordinaut-scheduler": scheduler.port,
            "ordinaut-worker": worker.port,
        }
        config = workdir / "prometheus.yml"
        config.write_text(prometheus_config({k: v for k, v in ports.items() if v}, RULES))
        port = free_port()
        prometheus = start_prometheus(prometheus_binary, config, workdir, port)
        try:
            stack = Stack(running, api, scheduler, worker, f"http://127.0.0.1:{port}")
            await wait_ready(stack, prometheus, workdir / "prometheus.log")
            # Counters must be scraped at 0 before the runs: rate() sees no increase in a
            # series whose first sample already counts the run.
            await wait_for(stack, "count(up == 1)", len(JOBS))
            await run_workload(stack)
            await wait_scraped(stack)
            yield stack
        finally:
            prometheus.terminate()
            try:
                prometheus.wait(timeout=15)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                prometheus.wait()


def start_prometheus(
    binary: str, config: Path, workdir: Path, port: int
) -> subprocess.Popen[bytes]:
    with (workdir / "prometheus.log").open("wb") as log:
        return subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


async def wait_ready(stack: Stack, prometheus: subprocess.Popen[bytes], log_path: Path) -> None:
    async def ready() -> bool:
        if prometheus.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{tail(log_path)}")
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{stack.prometheus_url}/-/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(ready, timeout=30, interval=0.2, message="prometheus to be ready")


async def run_workload(stack: Stack) -> None:
    """Runs that feed every panel: successes, a retried success, a dead run, a manual
    run, step failures, and API requests with 2xx and 4xx answers."""
    async with api_client(stack.api) as client:
        documents = {
            "echo": echo_task(title="echo"),
            "logged": echo_task(
                title="logged",
                payload={
                    "pipeline": [
                        {"id": "say", "uses": "debug.log", "with": {"message": "hello from a step"}}
                    ]
                },
            ),
            "retried": echo_task(
                title="retried once",
                max_retries=2,
                payload={"pipeline": [{"id": "flaky", "uses": "debug.fail", "with": {"times": 1}}]},
            ),
            "dead": echo_task(
                title="always fails",
                max_retries=0,
                payload={"pipeline": [{"id": "boom", "uses": "debug.fail", "with": {"times": 99}}]},
            ),
            "manual": echo_task(title="manual", schedule_kind="event", schedule_expr="tests.obs"),
        }
        for key, document in documents.items():
            created = await client.post("/tasks", json=document)
            assert created.status_code == 201, created.text
            stack.task_ids[key] = created.json()["id"]
        queued = await client.post(f"/tasks/{stack.task_ids['manual']}/run_now")
        assert queued.status_code == 202, queued.text
        missing = await client.get("/tasks/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404

        expected = {"echo": "succeeded", "logged": "succeeded", "retried": "succeeded"}
        expected |= {"dead": "dead", "manual": "succeeded"}

        async def outcomes() -> dict[str, str | None]:
            found: dict[str, str | None] = {}
            for key, task_id in stack.task_ids.items():
                items = (await client.get("/runs", params={"task_id": task_id})).json()["items"]
                found[key] = items[0]["status"] if items else None
            return found

        await eventually(
            outcomes, until=lambda o: o == expected, timeout=30, message="every run to finish"
        )


async def query(stack: Stack, promql: str) -> list[dict[str, Any]]:
    """An instant query; fails the test on a parse or evaluation error."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{stack.prometheus_url}/api/v1/query", params={"query": promql}
        )
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{promql}: {body}"
    return body["data"]["result"]


async def query_range(stack: Stack, promql: str, seconds: int = 60) -> list[dict[str, Any]]:
    """A range query as Grafana sends it; fails on a parse or evaluation error."""
    end = time.time()
    params: dict[str, str | float] = {
        "query": promql,
        "start": end - seconds,
        "end": end,
        "step": 2,
    }
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{stack.prometheus_url}/api/v1/query_range", params=params)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{promql}: {body}"
    return body["data"]["result"]


def value(result: list[dict[str, Any]]) -> float:
    return sum(float(item["value"][1]) for item in result)


async def wait_scraped(stack: Stack) -> None:
    """Until Prometheus has scraped the workload's outcome (first scrape ≈ 6 s after start)."""
    checks = {
        'sum(ordinaut_runs_total{status="succeeded"})': 4,
        'sum(ordinaut_runs_total{status="dead"})': 1,
        "sum(ordinaut_retries_total)": 1,
        "sum(ordinaut_step_duration_seconds_count)": 5,
        'sum(ordinaut_http_requests_total{route="/tasks"})': 5,
        "count(up == 1)": len(JOBS),
        'max(ordinaut_tasks{status="completed"})': 4,
    }
    for promql, minimum in checks.items():
        await wait_for(stack, promql, minimum)


async def wait_for(stack: Stack, promql: str, minimum: float) -> None:
    """Until the instant value of ``promql`` (summed) reaches ``minimum``."""

    async def probe() -> float:
        return value(await query(stack, promql))

    await eventually(probe, until=lambda v: v >= minimum, timeout=30, interval=0.5, message=promql)


async def exported_names(stack: Stack) -> set[str]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{stack.prometheus_url}/api/v1/label/__name__/values")
    return set(response.json()["data"])


def grafana_substituted(expr: str) -> str:
    for variable, replacement in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, replacement)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


async def test_every_dashboard_panel_parses_names_exported_metrics_and_returns_data(stack):
    exported = await exported_names(stack)
    targets = dashboard_targets()
    assert len(targets) >= 20
    empty = []
    for dashboard, title, expr in targets:
        promql = grafana_substituted(expr)
        missing = set(METRIC_NAME.findall(promql)) - exported
        assert not missing, f"{dashboard} / {title}: {missing} not exported"
        instant = await query(stack, promql)
        ranged = await query_range(stack, promql)
        if not instant or not ranged:
            empty.append(f"{dashboard} / {title}: {promql}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def grafana_sql(sql: str) -> str:
    """Grafana's PostgreSQL macros, expanded for the last hour."""
    expanded = re.sub(
        r"\$__timeFilter\(([^)]+)\)", r"\1 BETWEEN now() - interval '1 hour' AND now()", sql
    )
    assert "$" not in expanded, f"unknown Grafana macro in {sql}"
    return expanded


async def test_per_task_tables_run_on_the_database_and_show_the_workload(stack):
    tables = {title: grafana_sql(sql) for _, title, sql in dashboard_sql_targets()}
    assert len(tables) == 3
    conn = await connect(stack.running.database_url)
    async with conn:
        rows = {}
        for title, sql in tables.items():
            rows[title] = await (await conn.execute(sql)).fetchall()
    [dead] = rows["Tasks with dead runs"]
    assert dead["task_id"] == stack.task_ids["dead"]
    assert dead["title"] == "always fails" and dead["dead"] == 1 and dead["last_error"]
    slow = {row["task_id"] for row in rows["Slowest tasks (run duration)"]}
    assert slow == set(stack.task_ids.values())
    assert rows["Tasks with ready runs waiting (now)"] == []  # everything ran


async def test_dashboard_variables_list_real_label_values(stack):
    for dashboard, name, variable_query in dashboard_variable_queries():
        assert variable_query.startswith("label_values("), (dashboard, name)
        metric, label = (part.strip() for part in variable_query[13:-1].split(","))
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(
                f"{stack.prometheus_url}/api/v1/label/{label}/values", params={"match[]": metric}
            )
        values = response.json()["data"]
        assert {"debug.echo", "debug.fail", "debug.log"} <= set(values), (dashboard, name, values)


async def rules(stack: Stack) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{stack.prometheus_url}/api/v1/rules")
    return [rule for group in response.json()["data"]["groups"] for rule in group["rules"]]


async def test_every_alert_rule_loads_evaluates_and_names_exported_metrics(stack):
    loaded = await eventually(
        lambda: rules(stack),
        until=lambda rs: bool(rs) and all(r["health"] == "ok" for r in rs),
        timeout=15,
        message="every rule evaluated without error",
    )
    assert sorted(r["name"] for r in loaded) == sorted(alert_names())
    exported = await exported_names(stack) | {"up"}
    for rule in loaded:
        assert not rule.get("lastError"), rule
        missing = set(METRIC_NAME.findall(rule["query"])) - exported
        assert not missing, f"{rule['name']}: {missing} not exported"
        await query(stack, rule["query"])  # parses and evaluates through the HTTP API


async def test_alert_states_match_the_healthy_but_failing_workload(stack):
    """Everything is up, and one of five runs died: only the failure-rate alert is true."""
    quiet = {
        "OrdinautNoLiveWorkers",
        "OrdinautSchedulerStalled",
        "OrdinautTargetDown",
        "OrdinautDueWorkTooOld",
        "OrdinautBacklogGrowing",
        "OrdinautApi5xx",
        "OrdinautApiErrorRateHigh",
        "OrdinautLeasesReclaimed",
    }

    def settled(loaded: list[dict[str, Any]]) -> bool:
        states = {r["name"]: r["state"] for r in loaded}
        return all(states[name] == "inactive" for name in quiet) and states[
            "OrdinautRunFailureRateHigh"
        ] in ("pending", "firing")

    loaded = await eventually(
        lambda: rules(stack), until=settled, timeout=20, interval=0.5, message="alert states"
    )
    assert {r["name"]: r["state"] for r in loaded}["OrdinautRunFailureRateHigh"] != "inactive"


async def test_every_ordinaut_name_in_ops_is_exported_by_a_running_process(stack):
    exported = await exported_names(stack)
    used = names_used_in_ops()
    assert len(used) >= 15
    missing = {name: sorted(files) for name, files in used.items() if name not in exported}
    assert not missing, f"used under ops/ but exported by no process: {missing}"


def scrape(process: Process) -> set[str]:
    text = httpx.get(f"http://127.0.0.1:{process.port}/metrics", timeout=5).text
    return {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("ordinaut_")
    }


async def test_each_process_exports_its_own_metrics_and_no_others(stack):
    own = {
        role: {collector._name for collector in collectors}  # type: ignore[attr-defined]
        for role, collectors in metrics.GROUPS.items()
    }
    for job, process in stack.targets().items():
        role = job.removeprefix("ordinaut-")
        names = scrape(process)
        assert names, job
        strays = {n for n in names if not any(n.startswith(base) for base in own[role])}
        assert not strays, f"{job} exports {strays}"
        families = {base for base in own[role] if any(n.startswith(base) for n in names)}
        assert families == own[role], f"{job} does not export {own[role] - families}"


async def test_scheduler_and_worker_serve_health(stack):
    async with httpx.AsyncClient(timeout=5) as client:
        scheduler = await client.get(f"http://127.0.0.1:{stack.scheduler.port}/health")
        worker = await client.get(f"http://127.0.0.1:{stack.worker.port}/health")
    assert scheduler.status_code == 200
    assert scheduler.json()["status"] == "ok"
    assert scheduler.json()["last_tick_age_seconds"] < 10
    assert worker.status_code == 200
    assert worker.json()["worker_id"]


def log_lines(process: Process) -> list[dict[str, Any]]:
    entries = []
    for line in process.output().splitlines():
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                raise AssertionError(f"{process.name} logged a non-JSON line: {line!r}") from None
    return entries


async def test_logs_are_json_lines_with_run_context(stack):
    for process in (stack.api, stack.scheduler, stack.worker):
        assert log_lines(process), process.name
    worker_lines = log_lines(stack.worker)
    # Every line of ours names the worker (asyncio's start-up line comes before the worker).
    ours = [entry for entry in worker_lines if entry["logger"].startswith("ordinaut")]
    worker_ids = {entry.get("worker_id") for entry in ours}
    assert None not in worker_ids and len(worker_ids) == 1, worker_ids
    started = [e for e in worker_lines if e["message"] == "run started"]
    assert {e["task_id"] for e in started} >= set(stack.task_ids.values())
    assert all(e["run_id"] for e in started)
    [step] = [e for e in worker_lines if e["message"] == "hello from a step"]
    assert step["step_id"] == "say"
    assert step["task_id"] == stack.task_ids["logged"]
    assert step["run_id"] and step["worker_id"]
