"""The ``ordinaut`` command line as separate processes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from ops.embedded_pg import EmbeddedPostgres
from tests.support import REPO, Cluster, free_port

pytestmark = pytest.mark.e2e


def embedded_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a test process, without DATABASE_URL: the embedded cluster under
    ORDINAUT_HOME (and no bootstrap token: `up` then makes the dev admin token)."""
    excluded = ("DATABASE_URL", "ORDINAUT_BOOTSTRAP_ADMIN_TOKEN")
    return {k: v for k, v in Cluster("", tmp_path).env().items() if k not in excluded}


def ordinaut(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """Run an ``ordinaut`` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_bad_setting_exits_non_zero_with_one_line(tmp_path):
    result = Cluster("postgresql://unused/x", tmp_path).run("migrate", ORDINAUT_LEASE_SECONDS="-3")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "ordinaut: invalid ORDINAUT_LEASE_SECONDS='-3': "
        "must be a number greater than 0 and at most 315360000 (10 years)"
    ]


def test_a_malformed_database_url_exits_non_zero(tmp_path):
    result = Cluster("postgresql://host:port/db", tmp_path).run("worker")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def test_an_unusable_home_is_one_line_not_a_traceback(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = embedded_env(tmp_path)
    env["ORDINAUT_HOME"] = str(blocker / "home")
    result = ordinaut(env, "db", "start")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"ordinaut: cannot create {blocker / 'home' / 'pg'}: Not a directory"
    ]


def test_migrate_and_agent_create(fresh_db, tmp_path):
    running = Cluster(fresh_db, tmp_path)
    first = running.run("migrate")
    assert first.returncode == 0, first.stderr
    again = running.run("migrate")
    assert "already at head" in again.stderr
    created = running.run("agent", "create", "reporter", "--scope", "tasks:read")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert re.fullmatch(r"ord_[A-Za-z0-9_-]{40,}", token)
    duplicate = running.run("agent", "create", "reporter", "--scope", "tasks:read")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    bad_scope = running.run("agent", "create", "x", "--scope", "root")
    assert bad_scope.returncode == 1 and "unknown scope" in bad_scope.stderr


def test_up_runs_everything_and_stops_cleanly(fresh_db, tmp_path):
    port = free_port()
    env = Cluster(fresh_db, tmp_path).env()
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "up", "--port", str(port), "--workers", "2"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "Ordinaut is up." not in (tmp_path / "up.log").read_text():
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, "ordinaut up did not come up"
            time.sleep(0.2)
        output = (tmp_path / "up.log").read_text()
        found = re.search(r"Admin token:\s+(\S+)", output)
        assert found, output
        token = found.group(1)
        me = httpx.get(
            f"http://127.0.0.1:{port}/agents/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 200 and me.json()["name"] == "admin"
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) == 4  # api, scheduler, two workers
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=40) == 0
        assert "Ordinaut stopped." in (tmp_path / "up.log").read_text()
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:
        if up.poll() is None:
            up.kill()


def test_db_start_is_idempotent_and_stop_is_clean(tmp_path):
    """``ordinaut db start|url|stop`` with no DATABASE_URL: a private cluster under
    ORDINAUT_HOME on a free loopback port, started once however often it is asked."""
    home = tmp_path / "home"
    env = embedded_env(tmp_path)

    def ordinaut_db(action: str) -> subprocess.CompletedProcess[str]:
        return ordinaut(env, "db", action)

    try:
        first = ordinaut_db("start")
        assert first.returncode == 0, first.stderr
        url = first.stdout.strip()
        assert re.fullmatch(r"postgresql://ordinaut:[^@]+@127\.0\.0\.1:\d+/ordinaut", url), url
        assert "initdb" in first.stderr  # it says what takes the time

        second = ordinaut_db("start")
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == url  # the same server, not a second one
        assert "initdb" not in second.stderr and "Starting" not in second.stderr

        assert ordinaut_db("url").stdout.strip() == url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("ordinaut",)
        password = url.split(":")[2].split("@")[0]
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url.replace(password, "wrong-password"), connect_timeout=5)

        stopped = ordinaut_db("stop")
        assert stopped.returncode == 0, stopped.stderr
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=5)
        gone = ordinaut_db("url")
        assert gone.returncode == 1 and "not running" in gone.stderr
        again = ordinaut_db("stop")
        assert again.returncode == 0 and "not running" in again.stderr
    finally:
        EmbeddedPostgres(home).destroy()


def test_up_without_a_database_starts_postgres_and_sigterm_stops_it(tmp_path):
    """No DATABASE_URL: `up` starts the embedded cluster, and SIGTERM stops the processes
    and the Postgres it started."""
    home = tmp_path / "home"
    env = embedded_env(tmp_path)
    port = free_port()
    log_path = tmp_path / "up.log"
    up = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "up", "--port", str(port), "--workers", "1"],
        cwd=REPO,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )

    def db_url() -> subprocess.CompletedProcess[str]:
        return ordinaut(env, "db", "url")

    try:
        deadline = time.monotonic() + 120
        while "Ordinaut is up." not in log_path.read_text():
            assert up.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "ordinaut up did not come up"
            time.sleep(0.2)
        assert "Starting embedded PostgreSQL" in log_path.read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200
        assert db_url().returncode == 0
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
        output = log_path.read_text()
        assert "Ordinaut stopped." in output and "Stopping embedded PostgreSQL" in output
        stopped = db_url()
        assert stopped.returncode == 1 and "not running" in stopped.stderr
    finally:
        if up.poll() is None:
            up.kill()
        EmbeddedPostgres(home).destroy()
