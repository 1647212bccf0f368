"""The overview: is the fleet healthy, and what did my runs do in the last hour?

Fleet health (live workers, the scheduler's last tick) is shown to every signed-in token:
``/metrics`` publishes the same numbers without any token. Everything about runs and tasks
is limited to what the token may read over REST (its own, or all for an admin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from api.console.charts import runs_per_minute_chart
from api.console.mirror import RUNS_LIST, TASKS_LIST, WORKERS_LIST
from api.console.render import page
from api.console.routing import Signed, router
from api.console.session import ConsoleSession
from api.deps import Conn
from engine.clock import now_utc
from store import stats
from store import tasks as tasks_store
from store import workers as workers_store
from store.db import Connection

READY_CAP = 100_000
COUNT_CAP = 10_000
SCHEDULER_SILENT_SECONDS = 60.0
# A tick older than this is red: the scheduler's own /health turns 503 at the same age.
SCHEDULER_STALE_SECONDS = 30.0
# The oldest ready run's wait: amber from a minute, red from five (the alert's threshold).
WAIT_WARN_SECONDS, WAIT_BAD_SECONDS = 60.0, 300.0


@dataclass(frozen=True)
class Signal:
    """One tile of the overview: a value and whether it is good, worrying or bad."""

    title: str
    value: str
    detail: str
    state: str  # "ok", "warn", "bad" or "off"
    href: str | None = None


@router.get("")
async def overview(request: Request, session: Signed, conn: Conn) -> Response:
    return page(request, "overview.html", session, **await _overview(request, session, conn))


@router.get("/overview")
async def overview_fragment(request: Request, session: Signed, conn: Conn) -> Response:
    """The overview's body alone: htmx refreshes it every few seconds."""
    context = await _overview(request, session, conn)
    return page(request, "_overview_body.html", session, **context)


async def _overview(request: Request, session: ConsoleSession, conn: Connection) -> dict[str, Any]:
    principal = session.principal
    owner = principal.owner_filter
    now = now_utc()
    signals = await _fleet(conn, WORKERS_LIST.allows(request.app, principal))
    context: dict[str, Any] = {"now": now, "chart": None, "dead": [], "task_counts": None}
    if RUNS_LIST.allows(request.app, principal):
        queue = await stats.ready_runs(conn, owner=owner, cap=READY_CAP)
        dead_count, dead = await stats.dead_runs_since(
            conn, owner=owner, seconds=86400, cap=COUNT_CAP, newest=6
        )
        signals += [_queue_signal(queue), _dead_signal(dead_count)]
        rows = await stats.runs_per_minute(conn, owner=owner, minutes=60)
        context["chart"] = runs_per_minute_chart(rows, now=now)
        titles = await tasks_store.task_titles(conn, [run["task_id"] for run in dead])
        context["dead"] = [{**run, "title": titles.get(run["task_id"], "?")} for run in dead]
    if TASKS_LIST.allows(request.app, principal):
        context["task_counts"] = await tasks_store.count_tasks_by_status(
            conn, owner=owner, cap=COUNT_CAP
        )
    context.update(signals=signals, count_cap=COUNT_CAP)
    return context


async def _fleet(conn: Connection, registry: bool) -> list[Signal]:
    """The workers' and schedulers' tiles (links to the registry when ``registry``: admins)."""
    live = [w for w in await workers_store.list_workers(conn) if w["live"]]
    slots = sum(w["concurrency"] for w in live)
    busy = sum(w["inflight"] for w in live)
    scheduler = await stats.scheduler_health(conn, silent_seconds=SCHEDULER_SILENT_SECONDS)
    return [
        Signal(
            "Workers",
            str(len(live)),
            f"{busy} of {slots} slots busy" if live else "no worker has reported in 15 s",
            "ok" if live else "bad",
            "/ui/workers" if registry else None,
        ),
        _scheduler_signal(scheduler, "/ui/workers" if registry else None),
    ]


def _scheduler_signal(health: stats.SchedulerHealth, href: str | None) -> Signal:
    age = health.tick_age_seconds
    if health.live == 0 or age is None:
        return Signal("Scheduler", "down", "no scheduler has ticked recently", "bad", href)
    state = "ok" if age < SCHEDULER_STALE_SECONDS else "bad"
    value = f"{age:.0f} s" if age >= 1 else "< 1 s"
    plural = "s" if health.live != 1 else ""
    return Signal(
        "Scheduler",
        value,
        f"since the last tick · {health.live} scheduler{plural}",
        state,
        "/ui/workers",
    )


def _queue_signal(queue: stats.QueueStats) -> Signal:
    wait = queue.oldest_age_seconds
    state = "ok" if wait < WAIT_WARN_SECONDS else "warn" if wait < WAIT_BAD_SECONDS else "bad"
    ready = f"{queue.ready:,}".replace(",", " ") + ("+" if queue.ready >= READY_CAP else "")
    detail = "nothing waiting" if queue.ready == 0 else f"oldest waiting {_seconds(wait)}"
    return Signal("Ready runs", ready, detail, state, "/ui/runs?status=queued")


def _dead_signal(count: int) -> Signal:
    shown = f"{count:,}".replace(",", " ") + ("+" if count >= COUNT_CAP else "")
    return Signal(
        "Dead runs, 24 h",
        shown,
        "runs that ran out of attempts" if count else "no run died",
        "bad" if count else "ok",
        "/ui/runs?status=dead&range=24h",
    )


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.0f} s"
    if value < 3600:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"
