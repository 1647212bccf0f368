"""``api``, ``scheduler`` and ``worker`` before the database answers: one "waiting for the
database" line, backoff, a stop within 2 s on SIGINT/SIGTERM, and the database URL's
password in no output; the API starts serving once the database appears. Commands that fail
on a database print its URL masked."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.support import REPO, Cluster, free_port

pytestmark = pytest.mark.e2e

SECRET = "S3cretPassw0rd"


def nowhere(port: int | None = None) -> str:
    return f"postgresql://app:{SECRET}@127.0.0.1:{port or free_port()}/ordinaut"


def start(tmp_path: Path, command: str, url: str, *argv: str) -> tuple[subprocess.Popen[str], Path]:
    env = Cluster(url, tmp_path).env(ORDINAUT_LOG_FORMAT="text")
    log = tmp_path / f"{command}.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", command, *argv],
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return process, log


def wait_for_text(log: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


@pytest.mark.parametrize("command", ["api", "scheduler", "worker"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_waiting_for_the_database_says_so_once_and_stops_at_once(
    tmp_path: Path, command: str, sig: signal.Signals
) -> None:
    argv = ["--port", str(free_port())] if command == "api" else []
    process, log = start(tmp_path, command, nowhere(), *argv)
    try:
        wait_for_text(log, "waiting for the database")
        time.sleep(2.5)  # several retries
        started = time.monotonic()
        process.send_signal(sig)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 2.0
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert output.count("waiting for the database") == 1, output
    assert "psycopg" not in output and SECRET not in output
    assert len(output.splitlines()) <= 3, output


class _Forwarder:
    """A TCP port that forwards to the real database once opened (a database that starts
    after the process)."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self.server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        self.server.close()


@contextmanager
def database_appearing_on(port: int, real_url: str) -> Iterator[None]:
    real = urlsplit(real_url)
    forwarder = _Forwarder(port, (real.hostname or "127.0.0.1", real.port or 5432))
    try:
        yield
    finally:
        forwarder.close()


def test_the_api_serves_once_the_database_appears(fresh_db: str, tmp_path: Path) -> None:
    migrated = Cluster(fresh_db, tmp_path).run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    port, api_port = free_port(), free_port()
    real = urlsplit(fresh_db)
    address = f"{real.hostname}:{real.port}"
    late = urlunsplit(real._replace(netloc=real.netloc.replace(address, f"127.0.0.1:{port}")))
    process, log = start(tmp_path, "api", late, "--port", str(api_port))
    try:
        wait_for_text(log, "waiting for the database")
        with database_appearing_on(port, fresh_db):
            wait_for_text(log, "the database is reachable")
            deadline = time.monotonic() + 20
            while True:
                try:
                    ready = httpx.get(f"http://127.0.0.1:{api_port}/health/ready", timeout=2)
                    if ready.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize(
    "argv",
    [["migrate"], ["agent", "create", "x", "--scope", "admin"], ["up", "--port", "0"]],
)
def test_failing_commands_print_the_url_masked(tmp_path: Path, argv: list[str]) -> None:
    result = Cluster(nowhere(), tmp_path).run(*argv, timeout=60)
    assert result.returncode == 1, result
    assert SECRET not in result.stdout + result.stderr
    assert "cannot connect to the database" in result.stderr


def test_a_malformed_url_is_echoed_masked(tmp_path: Path) -> None:
    result = Cluster(f"postgresq://app:{SECRET}@db/x", tmp_path).run("worker")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ordinaut: invalid DATABASE_URL='postgresq://app:***@db/x': "
        "must start with postgresql:// (or postgres://)"
    )
