"""``ordinaut up``: Postgres (when needed), migrations, then API + scheduler + N workers as one
foreground process tree. Ctrl-C or SIGTERM stops every child (and a Postgres that ``up``
started). A child that crashes is started again (:mod:`ops.children`); only one that cannot
stay up stops everything, and ``up`` exits non-zero.

``up`` tells the truth: it holds a lock on ``ORDINAUT_HOME`` (a second ``up`` on the same
home refuses, naming the first), refuses a port something already listens on before it
starts anything, and prints its banner only once the API answering is the child it started
(the child answers a per-run ``ORDINAUT_INSTANCE_ID`` on ``/health/ready``)."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import secrets
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from engine.settings import Settings
from engine.tokens import generate_token
from ops.children import Child, stop_all
from ops.database import apply_migrations, embedded
from ops.embedded_pg import EmbeddedPostgresError, free_port
from ops.terminal import CommandError, say

READY_TIMEOUT_SECONDS = 60.0


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
    with home_lock(settings.home, port):
        ensure_port_free(host, port)
        return _start(
            settings, environ, workers=workers, concurrency=concurrency, host=host, port=port
        )


@contextmanager
def home_lock(home: Path, port: int) -> Iterator[None]:
    """Hold ``<home>/up.lock`` (an ``flock``, released however ``up`` ends) for the block;
    :class:`CommandError` naming the holder when another ``up`` has it."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        handle = (home / "up.lock").open("a+")
    except OSError as exc:
        raise CommandError(f"cannot use ORDINAUT_HOME {home}: {exc.strerror or exc}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "pid unknown"
            raise CommandError(
                f"another `ordinaut up` is running on {home} ({holder}); stop it first, "
                "or give this one another ORDINAUT_HOME"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, port {port}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


def ensure_port_free(host: str, port: int) -> None:
    """:class:`CommandError` when something already listens on ``host:port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT is not "busy".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {port} on {host} is already in use (is another server running "
                    "there?); choose another with --port"
                ) from None
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _start(
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
    instance = secrets.token_hex(8)
    specs = _child_specs(host, port, concurrency, scheduler_port, worker_ports)
    children = [
        Child(name, argv, {**env, "ORDINAUT_INSTANCE_ID": instance} if name == "api" else env)
        for name, argv in specs
    ]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}"
    exit_code = 0
    announced = False
    ready_by = time.monotonic() + READY_TIMEOUT_SECONDS
    while not stop_requested:
        now = time.monotonic()
        if not all(child.tend(now) for child in children):
            exit_code = 1
            break
        if not announced:
            ready = api_ready(url, instance)
            if ready is False:
                exit_code = 1
                break
            if ready:
                announced = True
                say(_banner(url, settings, scheduler_port, worker_ports))
            elif now > ready_by:
                say(f"the API did not become ready within {READY_TIMEOUT_SECONDS:g} s")
                exit_code = 1
                break
        time.sleep(0.2)
    stop_all(children, grace=settings.shutdown_grace_seconds + 5)
    say("Ordinaut stopped.")
    return exit_code


def _child_specs(
    host: str, port: int, concurrency: int, scheduler_port: int, worker_ports: list[int]
) -> list[tuple[str, list[str]]]:
    """``(name, ordinaut arguments)`` of each child."""
    specs = [("api", ["api", "--host", host, "--port", str(port)])]
    specs.append(("scheduler", ["scheduler", "--metrics-port", str(scheduler_port)]))
    for index, metrics_port in enumerate(worker_ports, start=1):
        argv = ["worker", "--concurrency", str(concurrency), "--metrics-port", str(metrics_port)]
        specs.append((f"worker-{index}", argv))
    return specs


def _banner(url: str, settings: Settings, scheduler_port: int, worker_ports: list[int]) -> str:
    workers = ", ".join(f":{p}" for p in worker_ports)
    return (
        f"\nOrdinaut is up.\n  API:          {url}   (docs: {url}/docs)\n"
        f"  Console:      {url}/ui   (sign in with a token)\n"
        f"  MCP:          {url}/mcp   (streamable HTTP; bearer token)\n"
        f"  Admin token:  {settings.bootstrap_admin_token}\n"
        f"  Metrics:      scheduler :{scheduler_port}, workers {workers}\n"
        "Press Ctrl-C to stop.\n"
    )


def api_ready(url: str, instance: str) -> bool | None:
    """True when ``url`` answers ready as the API child (``instance``); None while nothing
    answers or the child is not ready yet; False (said in one line) when another server
    answers there."""
    answered = _readiness(url)
    if answered is None:
        return None
    if answered.get("instance") != instance:
        say(f"another server answers at {url}, not the API this `ordinaut up` started")
        return False
    return True if answered.get("status") == "ready" else None


def _readiness(url: str) -> dict[str, object] | None:
    """The JSON of ``/health/ready`` (200 or 503), or None when nothing answers it."""
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=1) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        body = error.read()
    except OSError:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
