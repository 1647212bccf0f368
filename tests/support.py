"""Helpers for tests that run real ``ordinaut`` processes or wait on conditions."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "ord_test_admin_token_0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool] = bool,
    timeout: float = 15.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``probe`` until ``until(result)`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    result = await probe()
    while not until(result):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}: {result!r}")
        await asyncio.sleep(interval)
        result = await probe()
    return result


@dataclass
class Process:
    """A running ``ordinaut`` subcommand with its output captured to a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.output()[-3000:]}") from None


@dataclass
class Cluster:
    """Real ``ordinaut`` processes against one database, stopped at the end of the test."""

    database_url: str
    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("ORDINAUT_") and key != "DATABASE_URL"
        }
        env.update(
            DATABASE_URL=self.database_url,
            ORDINAUT_HOME=str(self.workdir / "home"),
            ORDINAUT_BOOTSTRAP_ADMIN_TOKEN=ADMIN_TOKEN,
            ORDINAUT_LOG_FORMAT="json",
            ORDINAUT_POLL_SECONDS="0.5",
            ORDINAUT_SHUTDOWN_GRACE_SECONDS="5",
        )
        env.update(self.env_overrides)
        env.update(extra)
        return env

    def start(self, name: str, *argv: str, port: int | None = None, **env: str) -> Process:
        log_path = self.workdir / f"{name}-{len(self.processes)}.log"
        handle = log_path.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", *argv],
            cwd=REPO,
            env=self.env(**env),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        process = Process(name, popen, log_path, port)
        self.processes.append(process)
        return process

    def run(self, *argv: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        """Run a short command (``migrate``, ``agent create``) to completion."""
        return subprocess.run(
            [sys.executable, "-m", "ops.cli", *argv],
            cwd=REPO,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def api(self, **env: str) -> Process:
        port = free_port()
        process = self.start("api", "api", "--port", str(port), port=port, **env)
        wait_http(f"http://127.0.0.1:{port}/health/ready", process)
        return process

    def scheduler(self, metrics_port: int | None = None, **env: str) -> Process:
        argv = ["scheduler"] + (["--metrics-port", str(metrics_port)] if metrics_port else [])
        return self.start("scheduler", *argv, port=metrics_port, **env)

    def worker(self, concurrency: int = 10, metrics_port: int | None = None, **env: str) -> Process:
        argv = ["worker", "--concurrency", str(concurrency)]
        argv += ["--metrics-port", str(metrics_port)] if metrics_port else []
        return self.start("worker", *argv, port=metrics_port, **env)

    def stop_all(self) -> None:
        for process in self.processes:
            process.signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()


def wait_http(url: str, process: Process, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers 200 (the process must stay alive meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.name} exited early:\n{process.output()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout}s:\n{process.output()[-3000:]}")


@contextmanager
def cluster(database_url: str, workdir: Path, **env: str) -> Iterator[Cluster]:
    """Migrate ``database_url`` and yield a :class:`Cluster`; stop every process afterwards."""
    running = Cluster(database_url, workdir, dict(env))
    migrated = running.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    try:
        yield running
    finally:
        running.stop_all()


def auth(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_client(process: Process, token: str = ADMIN_TOKEN) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{process.port}", headers=auth(token), timeout=10
    )


def echo_task(**overrides: Any) -> dict[str, Any]:
    """A valid task document: a ``once`` task that echoes a templated parameter."""
    task: dict[str, Any] = {
        "title": "echo",
        "schedule_kind": "once",
        "schedule_expr": "2020-01-01T00:00:00Z",
        "payload": {
            "params": {"x": 42},
            "pipeline": [
                {
                    "id": "echo",
                    "uses": "debug.echo",
                    "with": {"value": "${params.x}"},
                    "save_as": "echoed",
                }
            ],
        },
    }
    task.update(overrides)
    return task
