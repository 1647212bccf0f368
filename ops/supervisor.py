"""``ordinaut up``: Postgres (when needed), migrations, then API + scheduler + N workers as one
foreground process tree. Ctrl-C or SIGTERM stops every child (and a Postgres that ``up``
started); if any child dies, the others are stopped too and ``up`` exits non-zero."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from engine.settings import Settings
from engine.tokens import generate_token
from ops.database import apply_migrations, embedded
from ops.embedded_pg import EmbeddedPostgresError, free_port
from ops.terminal import CommandError, say

_PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _die_with_parent() -> None:
    """Runs in each child before exec: deliver SIGTERM to it if ``up`` itself dies."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def persistent_admin_token(home: Path) -> str:
    """The development admin token kept in ``<home>/admin-token`` (made on first use)."""
    path = home / "admin-token"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(generate_token() + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def child_environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of ``up``'s children: ``environ`` with the resolved database URL,
    home and admin token."""
    env = dict(environ)
    env["ORDINAUT_HOME"] = str(settings.home)
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    if settings.bootstrap_admin_token:
        env["ORDINAUT_BOOTSTRAP_ADMIN_TOKEN"] = settings.bootstrap_admin_token
    return env


def run_up(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    workers: int,
    concurrency: int,
    host: str,
    port: int,
) -> int:
    started_cluster = None
    if not settings.database_url:
        cluster = embedded(settings)
        try:
            was_running = cluster.url() is not None
            settings = settings.with_database_url(cluster.start())
        except EmbeddedPostgresError as exc:
            raise CommandError(str(exc)) from None
        started_cluster = None if was_running else cluster
    token = settings.bootstrap_admin_token or persistent_admin_token(settings.home)
    settings = replace(settings, bootstrap_admin_token=token)
    try:
        applied = asyncio.run(apply_migrations(settings))
        say(f"migrations: {len(applied)} applied" if applied else "migrations: at head")
        env = child_environment(settings, environ)
        return _supervise(
            settings, env, workers=workers, concurrency=concurrency, host=host, port=port
        )
    finally:
        if started_cluster is not None:
            started_cluster.stop()


def _supervise(
    settings: Settings,
    env: dict[str, str],
    *,
    workers: int,
    concurrency: int,
    host: str,
    port: int,
) -> int:
    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    scheduler_port = free_port()
    worker_ports = [free_port() for _ in range(workers)]
    specs = [("api", ["api", "--host", host, "--port", str(port)])]
    specs.append(("scheduler", ["scheduler", "--metrics-port", str(scheduler_port)]))
    for index, metrics_port in enumerate(worker_ports, start=1):
        specs.append(
            (
                f"worker-{index}",
                ["worker", "--concurrency", str(concurrency), "--metrics-port", str(metrics_port)],
            )
        )
    children = [
        Child(
            name,
            subprocess.Popen(
                [sys.executable, "-m", "ops.cli", *argv],
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            ),
        )
        for name, argv in specs
    ]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}"
    exit_code = 0
    if _wait_ready(url, children, lambda: stop_requested):
        say(
            f"\nOrdinaut is up.\n  API:          {url}   (docs: {url}/docs)\n"
            f"  Admin token:  {settings.bootstrap_admin_token}\n"
            f"  Metrics:      scheduler :{scheduler_port}, workers "
            + ", ".join(f":{p}" for p in worker_ports)
            + "\nPress Ctrl-C to stop.\n"
        )
    while not stop_requested:
        dead = [c for c in children if c.process.poll() is not None]
        if dead:
            say(f"{dead[0].name} exited with status {dead[0].process.returncode}; stopping")
            exit_code = 1
            break
        time.sleep(0.2)
    _stop_all(children, grace=settings.shutdown_grace_seconds + 5)
    say("Ordinaut stopped.")
    return exit_code


def _wait_ready(url: str, children: list[Child], stopping: object) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if callable(stopping) and stopping():
            return False
        if any(c.process.poll() is not None for c in children):
            return False
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    say("the API did not become ready within 60 s")
    return False


def _stop_all(children: list[Child], *, grace: float) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop in time; killing it")
            child.process.kill()
            child.process.wait()
