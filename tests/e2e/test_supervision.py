"""``ordinaut up`` keeps the system up when one child crashes, and the embedded cluster keeps
its port across ``db stop`` + ``db start`` (issue 17, defects 6 and 7)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import REPO, free_port

pytestmark = pytest.mark.e2e


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ORDINAUT_") and key != "DATABASE_URL"
    }
    env.update(ORDINAUT_LOG_FORMAT="text", ORDINAUT_SHUTDOWN_GRACE_SECONDS="3", **extra)
    return env


def wait_for(predicate, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def children(pid: int) -> dict[str, int]:
    """``up``'s children by role (api, scheduler, worker-1, …) → pid."""
    found: dict[str, int] = {}
    workers = 0
    for child in sorted(psutil.Process(pid).children(), key=lambda p: p.create_time()):
        try:
            argv = child.cmdline()
        except psutil.Error:
            continue
        role = next((a for a in argv if a in ("api", "scheduler", "worker")), None)
        if role == "worker":
            workers += 1
            role = f"worker-{workers}"
        if role is not None and child.status() != psutil.STATUS_ZOMBIE:
            found[role] = child.pid
    return found


def _all_four(pid: int) -> dict[str, int] | None:
    found = children(pid)
    return found if len(found) == 4 else None


def test_a_crashed_worker_is_restarted_and_nothing_else_stops(fresh_db, tmp_path):
    port = free_port()
    log_path = tmp_path / "up.log"
    up = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "up", "--port", str(port), "--workers", "2"],
        cwd=REPO,
        env=clean_env(DATABASE_URL=fresh_db, ORDINAUT_HOME=str(tmp_path / "home")),
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: "Ordinaut is up." in log_path.read_text(), 60, "ordinaut up")
        before = wait_for(lambda: _all_four(up.pid), 10, "4 children")
        victim = psutil.Process(before["worker-1"])
        victim.kill()  # SIGKILL
        victim.wait(timeout=10)

        def restarted() -> dict[str, int] | None:
            now = children(up.pid)
            workers = {pid for role, pid in now.items() if role.startswith("worker")}
            return now if len(workers) == 2 and before["worker-1"] not in workers else None

        after = wait_for(restarted, 20, "the worker to be restarted")
        assert up.poll() is None, log_path.read_text()
        for role in ("api", "scheduler"):
            assert after[role] == before[role], (role, before, after)
        assert before["worker-2"] in after.values()
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        lines = [line for line in log_path.read_text().splitlines() if "restart" in line]
        assert len(lines) == 1, lines
        assert re.search(r"worker-\d .*SIGKILL.*restart", lines[0]), lines
    finally:
        up.send_signal(signal.SIGINT)
        try:
            assert up.wait(timeout=40) == 0, log_path.read_text()[-3000:]
        finally:
            if up.poll() is None:
                up.kill()


def ordinaut(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *argv],
        cwd=REPO,
        env=clean_env(ORDINAUT_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_db_stop_and_start_under_a_running_api_keeps_the_port_and_fails_fast(tmp_path):
    home = tmp_path / "home"
    started = ordinaut(home, "db", "start")
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    port = free_port()
    token = "ord_db_restart_admin_token_0123456789"
    api = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "api", "--port", str(port)],
        cwd=REPO,
        env=clean_env(ORDINAUT_HOME=str(home), ORDINAUT_BOOTSTRAP_ADMIN_TOKEN=token),
        stdout=(tmp_path / "api.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        assert ordinaut(home, "migrate").returncode == 0
        wait_for(lambda: _status(f"{base}/health/ready") == 200, 30, "the API")
        assert httpx.get(f"{base}/tasks", headers=headers, timeout=10).status_code == 200

        assert ordinaut(home, "db", "stop").returncode == 0
        for _ in range(5):
            began = time.monotonic()
            response = httpx.get(f"{base}/tasks", headers=headers, timeout=30)
            assert time.monotonic() - began < 3, "a request waited for the pool"
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"].isdigit()
            assert response.json()["error"]["code"] == "store_unavailable"

        restarted = ordinaut(home, "db", "start")
        assert restarted.returncode == 0, restarted.stderr
        assert restarted.stdout.strip() == url, "the cluster came back on another port"
        wait_for(
            lambda: _status(f"{base}/tasks", headers) == 200, 15, "the API to use the database"
        )
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=20)
        ordinaut(home, "db", "stop")


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        return httpx.get(url, headers=headers, timeout=5).status_code
    except httpx.HTTPError:
        return 0
