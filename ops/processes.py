"""The long-running processes: API, scheduler and worker, each built from one Settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from api.app import create_app
from observability import metrics
from observability.http import serve_metrics
from observability.logging import bind_log_context
from ops.settings import Settings
from scheduler.gauges import QUEUE_EVERY_SECONDS, TASKS_EVERY_SECONDS, GaugeRefresher
from scheduler.service import Scheduler
from store.db import create_pool
from workers.catalog import CatalogCache
from workers.service import Worker
from workers.tools import build_tools

log = logging.getLogger("ordinaut")


def run_api(settings: Settings, host: str, port: int) -> None:
    """Serve the REST API until SIGINT/SIGTERM (uvicorn handles the signals)."""
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")


def run_scheduler(settings: Settings, metrics_port: int | None) -> None:
    asyncio.run(_with_stop_signal(lambda stop: _scheduler_main(settings, metrics_port, stop)))


def run_worker(settings: Settings, concurrency: int, metrics_port: int | None) -> None:
    asyncio.run(
        _with_stop_signal(lambda stop: _worker_main(settings, concurrency, metrics_port, stop))
    )


async def _with_stop_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await main(stop)


async def _scheduler_main(
    settings: Settings, metrics_port: int | None, stop: asyncio.Event
) -> None:
    assert settings.database_url
    pool = create_pool(settings.database_url, max_size=4, name="ordinaut-scheduler")
    await pool.open(wait=False)
    scheduler = Scheduler(settings, pool)
    metrics.register("scheduler")
    gauges = GaugeRefresher(pool)
    last_tick: dict[str, Any] = {"at": None}
    busy = asyncio.Lock()  # held during a tick: shutdown waits for it rather than cancel it

    async def tick() -> None:
        async with busy:
            await _tick()

    async def _tick() -> None:
        try:
            result = await scheduler.tick()
            last_tick["at"] = datetime.now(UTC)
            if result.occurrences:
                log.info(
                    "tick: %d occurrences from %d tasks in %.3fs",
                    result.occurrences,
                    result.tasks,
                    result.seconds,
                )
        except Exception:
            log.exception("scheduler tick failed")

    async def health() -> tuple[bool, dict[str, Any]]:
        at = last_tick["at"]
        age = (datetime.now(UTC) - at).total_seconds() if at else None
        healthy = age is not None and age < max(30.0, settings.scheduler_tick_seconds * 10)
        return healthy, {"last_tick_age_seconds": age}

    server = await serve_metrics("0.0.0.0", metrics_port, health) if metrics_port else None
    # APScheduler is only the metronome: it calls tick() at a fixed interval and never runs
    # two ticks of this process at once; the work itself is in Scheduler.tick.
    metronome = AsyncIOScheduler(timezone=UTC)
    metronome.add_job(
        tick,
        "interval",
        seconds=settings.scheduler_tick_seconds,
        id="tick",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    # The database gauges (ordinaut_due_work_*, ordinaut_tasks, ordinaut_workers_live).
    for job, every in (
        (gauges.refresh_queue, QUEUE_EVERY_SECONDS),
        (gauges.refresh_tasks, TASKS_EVERY_SECONDS),
    ):
        metronome.add_job(
            job,
            "interval",
            seconds=every,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
    metronome.start()
    log.info("scheduler started")
    await stop.wait()
    # No new ticks; a tick in flight finishes (its batch commits) before the metronome's
    # shutdown, which would cancel it (harmless: rolled back, but logged as a failure).
    metronome.pause()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(settings.shutdown_grace_seconds):
            await busy.acquire()
    metronome.shutdown(wait=False)
    if server:
        server.close()
    await pool.close()
    log.info("scheduler stopped")


async def _worker_main(
    settings: Settings, concurrency: int, metrics_port: int | None, stop: asyncio.Event
) -> None:
    assert settings.database_url
    pool = create_pool(
        settings.database_url,
        max_size=min(concurrency, 8) + 2,
        name="ordinaut-worker",
        check_on_checkout=False,
    )
    await pool.open(wait=False)

    # The tool catalog is cached (files + runtime tools, refreshed on NOTIFY); the tools
    # (HTTP pools, MCP sessions, circuit breakers) live as long as the process.
    catalog = CatalogCache(settings.database_url, pool)
    await catalog.start()
    tools = build_tools(settings, pool)
    worker = Worker(settings, pool, catalog, concurrency=concurrency, tools=tools.router)
    metrics.register("worker")
    # Every log line of this process (and of the runs' tasks it creates) names the worker.
    bind_log_context(worker_id=worker.worker_id)

    async def health() -> tuple[bool, dict[str, Any]]:
        return worker.health()

    server = await serve_metrics("0.0.0.0", metrics_port, health) if metrics_port else None
    metrics.WORKER_CONCURRENCY.set(concurrency)
    log.info("worker started", extra={"worker_id": worker.worker_id})
    await worker.run(stop)
    await tools.aclose()
    await catalog.stop()
    if server:
        server.close()
    await pool.close()
    log.info("worker stopped", extra={"worker_id": worker.worker_id})
