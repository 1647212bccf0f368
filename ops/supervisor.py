"""``ordinaut up``: Postgres (when needed), migrations, then API + scheduler + N workers as one
foreground process tree. Ctrl-C or SIGTERM stops every child (and a Postgres that ``up``
started).

A child that exits on its own (a crash, an OOM kill, a ``kill -9``) is started again after
a delay that doubles with each crash (:class:`RestartPolicy`), announced in one line; the
others keep running. Only a child that cannot stay up — more than
:data:`MAX_CRASHES` crashes within :data:`CRASH_WINDOW_SECONDS` — stops everything, and
``up`` exits non-zero."""

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
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.settings import Settings
from engine.tokens import generate_token
from ops.database import apply_migrations, embedded
from ops.embedded_pg import EmbeddedPostgresError, free_port
from ops.terminal import CommandError, say

_PR_SET_PDEATHSIG = 1
MAX_CRASHES = 5
CRASH_WINDOW_SECONDS = 60.0
READY_TIMEOUT_SECONDS = 60.0


@dataclass
class RestartPolicy:
    """How soon a crashed child comes back: ``base_delay`` after its first crash, twice as
    long after each further crash within ``window_seconds`` (at most ``max_delay``); more
    than ``max_crashes`` crashes within the window and it is given up on."""

    max_crashes: int = MAX_CRASHES
    window_seconds: float = CRASH_WINDOW_SECONDS
    base_delay: float = 0.5
    max_delay: float = 10.0
    crashes: list[float] = field(default_factory=list)

    def after_crash(self, now: float) -> float | None:
        """Record a crash at ``now``; the delay before the restart, or None: give up."""
        self.crashes = [t for t in self.crashes if now - t < self.window_seconds] + [now]
        if len(self.crashes) > self.max_crashes:
            return None
        return float(min(self.max_delay, self.base_delay * 2 ** (len(self.crashes) - 1)))


@dataclass
class Child:
    """One process of ``up``: how to start it, the running process, and its restarts."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] = field(init=False)
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    restart_at: float | None = None

    def __post_init__(self) -> None:
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", *self.argv],
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.restart_at = None

    def tend(self, now: float) -> bool:
        """Restart the child when it is due; note a new crash. False: give up on it."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return True
        status = self.process.poll()
        if status is None:
            return True
        delay = self.policy.after_crash(now)
        if delay is None:
            say(
                f"{self.name} {_exit_reason(status)} and crashed {len(self.policy.crashes)} "
                f"times within {self.policy.window_seconds:g} s; stopping everything"
            )
            return False
        say(f"{self.name} {_exit_reason(status)}; restarting it in {delay:g} s")
        self.restart_at = now + delay
        return True


def _exit_reason(status: int) -> str:
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


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
    specs = _child_specs(host, port, concurrency, scheduler_port, worker_ports)
    children = [Child(name, argv, env) for name, argv in specs]
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
            if _ready(url):
                announced = True
                say(_banner(url, settings, scheduler_port, worker_ports))
            elif now > ready_by:
                say(f"the API did not become ready within {READY_TIMEOUT_SECONDS:g} s")
                exit_code = 1
                break
        time.sleep(0.2)
    _stop_all(children, grace=settings.shutdown_grace_seconds + 5)
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
        f"  Admin token:  {settings.bootstrap_admin_token}\n"
        f"  Metrics:      scheduler :{scheduler_port}, workers {workers}\n"
        "Press Ctrl-C to stop.\n"
    )


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
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
