"""The database gauges the scheduler process exports.

``ordinaut_due_work_ready``, ``ordinaut_due_work_oldest_age_seconds``, ``ordinaut_tasks``
and ``ordinaut_workers_live`` describe the shared database. Each scheduler refreshes them on
its own timer (several schedulers export the same values; dashboards take ``max()``):

- the queue and the worker registry every :data:`QUEUE_EVERY_SECONDS` (small indexed reads);
- the task counts every :data:`TASKS_EVERY_SECONDS` (a scan of ``tasks``: ~10 ms per 100k).

A failed refresh leaves the previous values and logs a warning; the next one retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from engine.errors import StoreError
from observability import metrics
from store import stats
from store import workers as workers_store
from store.db import Pool

log = logging.getLogger("ordinaut.scheduler")

QUEUE_EVERY_SECONDS = 5.0
TASKS_EVERY_SECONDS = 15.0
WORKER_SILENT_SECONDS = workers_store.LIVE_WITHIN_SECONDS


@dataclass
class GaugeRefresher:
    """Reads :mod:`store.stats` and sets the gauges; one method per refresh cadence."""

    pool: Pool
    worker_silent_seconds: float = WORKER_SILENT_SECONDS

    async def refresh_queue(self) -> None:
        """Ready runs, the oldest one's age, and live workers."""
        try:
            async with self.pool.connection() as conn:
                queue = await stats.queue_stats(conn)
                live = await stats.live_workers(conn, silent_seconds=self.worker_silent_seconds)
        except StoreError as exc:
            log.warning("queue gauges not refreshed: %s", exc.message)
            return
        metrics.DUE_WORK_READY.set(queue.ready)
        metrics.DUE_WORK_OLDEST_AGE.set(queue.oldest_age_seconds)
        metrics.WORKERS_LIVE.set(live)

    async def refresh_tasks(self) -> None:
        """Tasks per status (every status, zeros included)."""
        try:
            async with self.pool.connection() as conn:
                counts = await stats.tasks_by_status(conn)
        except StoreError as exc:
            log.warning("task gauges not refreshed: %s", exc.message)
            return
        for status, count in counts.items():
            metrics.TASKS.labels(status).set(count)

    async def refresh_all(self) -> None:
        await self.refresh_queue()
        await self.refresh_tasks()
