"""The commands for the work (``ordinaut tasks|runs|agents|workers|preview``) as separate
processes against a real API, scheduler and worker: what they print, ``-o json``, ``-q``,
and their exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support import ADMIN_TOKEN, REPO, Cluster, cluster

pytestmark = pytest.mark.e2e


@dataclass
class Cli:
    url: str
    workdir: Path
    env: dict[str, str]

    def __call__(
        self, *argv: str, token: str | None = ADMIN_TOKEN, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "ORDINAUT_URL": self.url}
        if token is not None:
            env["ORDINAUT_TOKEN"] = token
        return subprocess.run(
            [sys.executable, "-m", "ops.cli", *argv],
            cwd=REPO,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    def json(self, *argv: str) -> Any:
        result = self(*argv, "-o", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def task_file(self, name: str, **document: Any) -> str:
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(document))
        return str(path)


@pytest.fixture
def cli(fresh_db: str, tmp_path: Path) -> Iterator[Cli]:
    with cluster(fresh_db, tmp_path, ORDINAUT_RATE_LIMIT_PER_MINUTE="0") as running:
        api = running.api()
        running.scheduler()
        running.worker(concurrency=4)
        env = {k: v for k, v in Cluster("", tmp_path).env().items() if not k.startswith("ORD")}
        yield Cli(f"http://127.0.0.1:{api.port}", tmp_path, env)


def echo(title: str, when: str = "0 0 1 1 *", kind: str = "cron", **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "schedule_kind": kind,
        "schedule_expr": when,
        "timezone": "Europe/Chisinau",
        "payload": {
            "params": {"x": 42},
            "pipeline": [{"id": "echo", "uses": "debug.echo", "with": {"value": "${params.x}"}}],
        },
        **extra,
    }


def failing(title: str) -> dict[str, Any]:
    return {
        **echo(title),
        "max_retries": 0,
        "payload": {"pipeline": [{"id": "boom", "uses": "debug.fail", "with": {"times": 5}}]},
    }


def test_tasks_create_list_show_pause_resume_cancel(cli: Cli) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    created = cli("tasks", "create", "-f", cli.task_file("once", **echo("soon", soon, "once")))
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("task ") and "'soon' is active" in created.stdout
    task_id = created.stdout.split()[1]
    quiet = cli("tasks", "create", "-q", "-f", "-", stdin=json.dumps(echo("cron")))
    cron_id = quiet.stdout.strip()
    assert quiet.returncode == 0 and len(cron_id) == 36, quiet

    listed = cli("tasks", "list")
    assert listed.returncode == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:4] == ["ID", "TITLE", "STATUS", "SCHEDULE"]
    assert [row.split()[0] for row in rows] == [cron_id, task_id]  # newest first
    assert "EET" in listed.stdout  # next runs in the task's zone
    assert [t["id"] for t in cli.json("tasks", "list", "--kind", "cron")] == [cron_id]
    assert cli("tasks", "list", "-q", "--status", "paused").stdout == ""

    shown = cli("tasks", "show", cron_id)
    assert shown.returncode == 0
    assert "zone:             Europe/Chisinau" in shown.stdout
    assert "pipeline:" in shown.stdout and "debug.echo" in shown.stdout
    assert cli.json("tasks", "show", cron_id)["schedule_expr"] == "0 0 1 1 *"

    paused = cli("tasks", "pause", cron_id)
    assert paused.returncode == 0 and "is paused" in paused.stdout
    assert cli("tasks", "list", "-q", "--status", "paused").stdout.split() == [cron_id]
    assert "is active" in cli("tasks", "resume", cron_id).stdout
    assert "is canceled" in cli("tasks", "cancel", cron_id).stdout
    again = cli("tasks", "pause", cron_id)
    assert again.returncode == 1 and again.stderr.startswith("ordinaut: 409 conflict")


def test_tasks_run_wait_and_runs_list_show_wait(cli: Cli) -> None:
    task_id = cli("tasks", "create", "-q", "-f", cli.task_file("e", **echo("e"))).stdout.strip()
    ran = cli("tasks", "run", task_id, "--wait", "30")
    assert ran.returncode == 0, ran.stderr
    assert "status:     succeeded" in ran.stdout and '{"value": 42}' in ran.stdout
    queued = cli("tasks", "run", task_id, "-q").stdout.strip()
    waited = cli("runs", "wait", queued, "--timeout", "30")
    assert waited.returncode == 0 and "succeeded" in waited.stdout

    listed = cli("runs", "list", "--task", task_id)
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:4] == ["ID", "TASK", "STATUS", "TRIGGER"]
    assert len(rows) == 2 and all("succeeded  manual" in row for row in rows)
    assert "EET" in listed.stdout or "EEST" in listed.stdout
    assert cli("runs", "list", "-q", "--trigger", "schedule").stdout == ""
    runs = cli.json("runs", "list", "--status", "succeeded", "--status", "dead", "--limit", "1")
    assert len(runs) == 1 and runs[0]["task_id"] == task_id
    shown = cli.json("runs", "show", queued)
    assert shown["id"] == queued and shown["steps"][0]["output"] == {"value": 42}


def test_a_dead_run_retry_and_cancel(cli: Cli) -> None:
    task_id = cli("tasks", "create", "-q", "-f", cli.task_file("f", **failing("f"))).stdout.strip()
    ran = cli("tasks", "run", task_id, "--wait", "30")
    assert ran.returncode == 1  # the run ended dead
    assert "status:     dead" in ran.stdout and "tool_error" in ran.stdout
    dead = cli.json("runs", "list", "--task", task_id)[0]["id"]
    listed = cli("runs", "list", "--status", "dead")
    assert "boom: tool_error" in listed.stdout
    retried = cli("runs", "retry", dead, "-q")
    assert retried.returncode == 0
    new_run = retried.stdout.strip()
    assert new_run != dead
    assert cli("runs", "wait", new_run, "--timeout", "30").returncode == 1
    finished = cli("runs", "cancel", new_run)
    assert finished.returncode == 1 and "409 conflict" in finished.stderr
    paused = cli("tasks", "pause", task_id)
    assert paused.returncode == 0


def test_agents_workers_and_preview(cli: Cli) -> None:
    created = cli("agents", "create", "reporter", "--scope", "runs:read", "--scope", "tasks:read")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("ord_") and "shown once" in created.stderr
    mine = cli("tasks", "list", token=token)
    assert mine.returncode == 0 and mine.stdout.strip() == "(none)"
    refused = cli("agents", "list", token=token)
    assert refused.returncode == 1 and "403 forbidden" in refused.stderr
    agents = cli.json("agents", "list")
    reporter = next(a for a in agents if a["name"] == "reporter")
    rotated = cli("agents", "rotate", reporter["id"])
    new_token = rotated.stdout.strip()
    assert rotated.returncode == 0 and new_token.startswith("ord_") and new_token != token
    assert cli("tasks", "list", token=token).returncode == 2  # the old token is revoked: 401
    assert cli("tasks", "list", token=new_token).returncode == 0

    shown = cli("agents", "quotas", reporter["id"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[2].split() == ["QUOTA", "LIMIT", "SET", "BY"]
    assert all(line.endswith("default") for line in shown.stdout.splitlines()[3:])
    limited = cli("agents", "quotas", reporter["id"], "--queued-runs", "50")
    assert limited.returncode == 0, limited.stderr
    assert [line.split() for line in limited.stdout.splitlines() if "queued" in line] == [
        ["queued", "runs", "50", "own"]
    ]
    reset = cli.json("agents", "quotas", reporter["id"], "--default", "queued_runs")
    assert reset["quota_overrides"]["queued_runs"] is None
    assert reset["quotas"]["queued_runs"] != 50
    zero = cli("agents", "quotas", reporter["id"], "--queued-runs", "0")
    assert zero.returncode == 2 and "must be at least 1" in zero.stderr
    huge = cli("agents", "quotas", reporter["id"], "--event-fanout", "9999999999")
    assert huge.returncode == 1 and "quotas.event_fanout" in huge.stderr
    assert len(huge.stderr.strip().splitlines()) <= 2, huge.stderr

    hooked = cli("agents", "webhook", reporter["id"], "--to", "https://hooks.example/in")
    assert hooked.returncode == 0, hooked.stderr
    assert hooked.stdout.strip().endswith("its completion webhooks go to https://hooks.example/in")
    refused_url = cli("agents", "webhook", reporter["id"], "--to", "ftp://x")
    assert refused_url.returncode == 1 and "webhook_url" in refused_url.stderr
    first = cli("agents", "webhook-secret", reporter["id"])
    assert first.returncode == 0 and first.stdout.strip().startswith("whsec_"), first.stderr
    assert "any previous secret no longer signs" in first.stderr
    kept = cli("agents", "webhook-secret", reporter["id"], "--keep-previous")
    assert kept.returncode == 0 and kept.stdout.strip() != first.stdout.strip()
    assert "the previous secret signs too until" in kept.stderr
    assert "whsec_" not in kept.stderr  # the secret only on stdout, once
    mine_secret = cli.json("agents", "webhook-secret", "me")
    assert (
        mine_secret["secret"].startswith("whsec_") and mine_secret["previous_valid_until"] is None
    )
    shown_hook = cli("agents", "webhook", "me")
    assert shown_hook.returncode == 0 and shown_hook.stdout.strip().endswith("webhooks are off")
    assert (
        cli.json("agents", "webhook", reporter["id"])["webhook_url"] == "https://hooks.example/in"
    )
    off = cli.json("agents", "webhook", reporter["id"], "--off")
    assert off["webhook_url"] is None

    revoked = cli("agents", "revoke", reporter["id"])
    assert revoked.returncode == 0 and "deleted" in revoked.stdout
    assert cli("tasks", "list", token=new_token).returncode == 2
    assert "reporter" in cli("agents", "list", "--all").stdout

    workers = cli("workers")
    assert workers.returncode == 0
    assert workers.stdout.splitlines()[0].split()[:4] == ["ID", "HOST", "PID", "LIVE"]
    assert "1 live of 1 registered" in workers.stdout

    preview = cli("preview", "0 9 * * 1-5", "--tz", "Europe/Chisinau", "--count", "5")
    assert preview.returncode == 0, preview.stderr
    lines = preview.stdout.splitlines()
    assert lines[0] == "cron '0 9 * * 1-5' in Europe/Chisinau:"
    assert len(lines) == 6 and all("09:00:00 EE" in line for line in lines[1:])
    assert not any(line.split()[0] in ("Sat", "Sun") for line in lines[1:])
    rrule = cli.json("preview", "FREQ=DAILY;BYHOUR=8;BYMINUTE=0", "--tz", "UTC", "--count", "2")
    assert [o[11:16] for o in rrule["occurrences"]] == ["08:00", "08:00"]


def test_exit_statuses_for_usage_configuration_and_failures(cli: Cli) -> None:
    assert cli("tasks", "list", token=None).returncode == 2  # no token
    no_token = cli("tasks", "list", token=None)
    assert "ORDINAUT_TOKEN" in no_token.stderr
    assert cli("tasks", "list", token="ord_wrong_wrong_wrong").returncode == 2
    assert cli("tasks", "show", "00000000-0000-4000-8000-000000000000").returncode == 1
    missing = cli("tasks", "create", "-f", str(cli.workdir / "nope.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    broken = cli("tasks", "create", "-f", "-", stdin="{not json")
    assert broken.returncode == 2 and "is not JSON" in broken.stderr
    invalid = cli("tasks", "create", "-f", "-", stdin=json.dumps(echo("x", "61 * * * *")))
    assert invalid.returncode == 1
    assert "  $.schedule_expr: " in invalid.stderr  # each problem on its own line
    bad_choice = cli("runs", "list", "--status", "deadd")
    assert bad_choice.returncode == 2 and "invalid choice: 'deadd'" in bad_choice.stderr
    unreachable = cli("--url", "http://127.0.0.1:9", "tasks", "list")
    assert unreachable.returncode == 2  # --url belongs to the command, not before it
    down = cli("tasks", "list", "--url", "http://127.0.0.1:9")
    assert down.returncode == 1 and "cannot reach the API at http://127.0.0.1:9" in down.stderr
    assert cli("tasks", "list", "--url", "ftp://x").returncode == 2
    timed_out = cli("runs", "wait", "00000000-0000-4000-8000-000000000000")
    assert timed_out.returncode == 1 and "404 not_found" in timed_out.stderr
