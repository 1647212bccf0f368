"""The children of ``ordinaut up``: each started as ``python -m ops.cli ...`` and tended —
a child that exits on its own (a crash, an OOM kill, a ``kill -9``) is started again after a
delay that doubles with each crash (:class:`RestartPolicy`), announced in one line; only a
child that cannot stay up (more than :data:`MAX_CRASHES` crashes within
:data:`CRASH_WINDOW_SECONDS`) makes ``up`` give up."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ops.terminal import say

_PR_SET_PDEATHSIG = 1
MAX_CRASHES = 5
CRASH_WINDOW_SECONDS = 60.0


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


def stop_all(children: list[Child], *, grace: float) -> None:
    """SIGTERM every child, wait up to ``grace`` seconds in all, then SIGKILL the rest."""
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
