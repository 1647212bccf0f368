"""``ordinaut up`` tells the truth: a busy port fails before anything starts and without a
banner, a second ``up`` on one ORDINAUT_HOME refuses with one line naming the first, and the
banner waits for the API that ``up`` itself started."""

from __future__ import annotations

import http.server
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ops.supervisor import api_ready
from tests.support import REPO, Cluster, free_port

pytestmark = pytest.mark.e2e


def up_command(env: dict[str, str], port: int) -> list[str]:
    return [sys.executable, "-m", "ops.cli", "up", "--port", str(port), "--workers", "1"]


@contextmanager
def running_up(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as handle:
        up = subprocess.Popen(
            up_command(env, port), cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "Ordinaut is up." not in log.read_text():
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "ordinaut up did not come up"
            time.sleep(0.2)
        yield up
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=40)
        except subprocess.TimeoutExpired:
            up.kill()


def run_up(env: dict[str, str], port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        up_command(env, port), cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_busy_port_fails_before_anything_starts(fresh_db: str, tmp_path: Path) -> None:
    env = Cluster(fresh_db, tmp_path).env()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = run_up(env, port)
    assert result.returncode == 1
    assert "Ordinaut is up" not in result.stdout + result.stderr
    assert "migrations" not in result.stderr  # refused before doing anything
    assert result.stderr.strip().splitlines() == [
        f"ordinaut: port {port} on 127.0.0.1 is already in use (is another server running "
        "there?); choose another with --port"
    ]


def test_a_second_up_on_one_home_refuses_naming_the_first(fresh_db: str, tmp_path: Path) -> None:
    env = Cluster(fresh_db, tmp_path).env()
    first_port = free_port()
    with running_up(env, first_port, tmp_path / "first.log") as first:
        second = run_up(env, free_port())
        assert second.returncode == 1
        assert "Ordinaut is up" not in second.stderr
        (line,) = second.stderr.strip().splitlines()
        assert re.fullmatch(
            rf"ordinaut: another `ordinaut up` is running on .*home "
            rf"\(pid {first.pid}, port {first_port}\); stop it first, or give this one "
            r"another ORDINAUT_HOME",
            line,
        ), line
    # Once the first has stopped, the home is free again.
    with running_up(env, free_port(), tmp_path / "third.log"):
        pass


class _Impostor(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "ready", "reason": "not ordinaut"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_banner_waits_for_its_own_api_not_any_server(capsys: pytest.CaptureFixture) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Impostor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert api_ready(url, "the-nonce-of-this-up") is False
    finally:
        server.shutdown()
    assert "another server answers at" in capsys.readouterr().err
