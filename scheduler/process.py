"""The scheduler process: a tick every ``ORDINAUT_SCHEDULER_TICK_SECONDS`` (APScheduler 3 is
only the metronome), the database gauges on their own timers, and ``/metrics`` +
``/health`` on the metrics port.

The work of a tick is :meth:`scheduler.tick.Scheduler.tick`; this module owns the process
around it: the pool, the timers, the health answer (unhealthy when no tick succeeded
recently) and a shutdown that lets a tick in flight commit its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from engine.clock import now_utc
from engine.errors import StoreError
from engine.settings import Settings
from observability import metrics
from observability.http import serve_metrics
from scheduler.gauges import QUEUE_EVERY_SECONDS, TASKS_EVERY_SECONDS, GaugeRefresher
from scheduler.tick import Scheduler
from store import schedulers as schedulers_store
from store.db import create_pool, wait_for_database

log = logging.getLogger("ordinaut")

POOL_SIZE = 4
# How often the scheduler registry learns this scheduler's last tick (the console shows it).
RECORD_EVERY_SECONDS = 5.0
# /health answers 503 when no tick succeeded for this long (or ten ticks, if longer).
HEALTHY_TICK_AGE_SECONDS = 30.0


class SchedulerProcess:
    """One scheduler: ``await SchedulerProcess(settings).run(stop)`` until ``stop`` is set."""

    def __init__(self, settings: Settings, metrics_port: int | None = None) -> None:
        assert settings.database_url
        self.settings = settings
        self.metrics_port = metrics_port
        self.pool = create_pool(
            settings.database_url, max_size=POOL_SIZE, name="ordinaut-scheduler"
        )
        self.scheduler = Scheduler(settings, self.pool)
        self.last_tick_at: datetime | None = None
        self.scheduler_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Held during a tick: shutdown waits for it rather than cancel it.
        self._busy = asyncio.Lock()

    async def run(self, stop: asyncio.Event) -> None:
        assert self.settings.database_url
        if not await wait_for_database(self.settings.database_url, stop, name="ordinaut-scheduler"):
            log.info("scheduler stopped before the database was reachable")
            return
        await self.pool.open(wait=False)
        metrics.register("scheduler")
        server = (
            await serve_metrics("0.0.0.0", self.metrics_port, self.health)
            if self.metrics_port
            else None
        )
        metronome = self._metronome(GaugeRefresher(self.pool))
        metronome.start()
        log.info("scheduler started")
        await stop.wait()
        # No new ticks; a tick in flight finishes (its batch commits) before the metronome's
        # shutdown, which would cancel it (harmless: rolled back, but logged as a failure).
        metronome.pause()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.shutdown_grace_seconds):
                await self._busy.acquire()
        metronome.shutdown(wait=False)
        if server:
            server.close()
        await self._forget()
        await self.pool.close()
        log.info("scheduler stopped")

    def _metronome(self, gauges: GaugeRefresher) -> AsyncIOScheduler:
        """The timers: the tick, and the database gauges (``ordinaut_due_work_*``,
        ``ordinaut_tasks``, ``ordinaut_workers_live``). APScheduler never runs two of one job
        at once and coalesces missed firings."""
        metronome = AsyncIOScheduler(timezone=UTC)
        jobs = (
            (self.tick, self.settings.scheduler_tick_seconds),
            (gauges.refresh_queue, QUEUE_EVERY_SECONDS),
            (gauges.refresh_tasks, TASKS_EVERY_SECONDS),
            (self.record, RECORD_EVERY_SECONDS),
        )
        for job, every in jobs:
            metronome.add_job(
                job,
                "interval",
                seconds=every,
                max_instances=1,
                coalesce=True,
                next_run_time=now_utc(),
            )
        return metronome

    async def tick(self) -> None:
        """One tick; a failure is logged and the next tick tries again."""
        async with self._busy:
            try:
                result = await self.scheduler.tick()
            except Exception:
                log.exception("scheduler tick failed")
                return
        self.last_tick_at = now_utc()
        metrics.SCHEDULER_LAST_TICK.set(self.last_tick_at.timestamp())
        if result.occurrences:
            log.info(
                "tick: %d occurrences from %d tasks in %.3fs",
                result.occurrences,
                result.tasks,
                result.seconds,
            )

    async def record(self) -> None:
        """Tell the scheduler registry when this scheduler last ticked."""
        try:
            async with self.pool.connection() as conn:
                await schedulers_store.record_scheduler(
                    conn,
                    scheduler_id=self.scheduler_id,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    last_tick_at=self.last_tick_at,
                )
        except StoreError as exc:
            log.warning("scheduler registry not updated: %s", exc.message)

    async def _forget(self) -> None:
        with contextlib.suppress(StoreError):
            async with self.pool.connection(timeout=5) as conn:
                await schedulers_store.forget_scheduler(conn, self.scheduler_id)

    async def health(self) -> tuple[bool, dict[str, Any]]:
        at = self.last_tick_at
        age = (now_utc() - at).total_seconds() if at else None
        limit = max(HEALTHY_TICK_AGE_SECONDS, self.settings.scheduler_tick_seconds * 10)
        return age is not None and age < limit, {"last_tick_age_seconds": age}
