"""Housekeeping every worker does: the registry heartbeat, the lease reaper, stale registry
rows and history retention. Each statement is safe to run from many workers at once."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg_pool import AsyncConnectionPool

from observability import metrics
from ops.settings import Settings
from store import due_work as due_work_store
from store import retention as retention_store
from store import tasks as tasks_store
from store import workers as workers_store
from store.db import Connection

log = logging.getLogger("ordinaut.worker")

PRUNE_EVERY_SECONDS = 300.0


@dataclass
class Maintenance:
    settings: Settings
    pool: AsyncConnectionPool[Connection]
    worker_id: str
    concurrency: int
    stats: Callable[[], tuple[int, int]]  # (inflight, processed)

    @property
    def interval(self) -> float:
        # Reap several times per lease period, so a crashed worker's runs restart within
        # about 1.25 lease periods.
        return max(min(self.settings.lease_seconds / 4, 5.0), 0.05)

    async def register(self) -> None:
        async with self.pool.connection() as conn:
            await workers_store.register_worker(
                conn,
                worker_id=self.worker_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                concurrency=self.concurrency,
            )

    async def unregister(self) -> None:
        try:
            async with self.pool.connection(timeout=5) as conn:
                await workers_store.unregister_worker(conn, self.worker_id)
        except (psycopg.Error, OSError) as exc:
            log.warning("could not unregister: %s", exc, extra={"worker_id": self.worker_id})

    async def run(self) -> None:
        last_prune = 0.0
        while True:
            try:
                await self._heartbeat()
                await self.reap()
                if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                    await self._clean()
                    last_prune = time.monotonic()
            except (psycopg.Error, OSError) as exc:
                log.warning("maintenance failed: %s", exc, extra={"worker_id": self.worker_id})
            await asyncio.sleep(self.interval)

    async def _heartbeat(self) -> None:
        inflight, processed = self.stats()
        async with self.pool.connection() as conn:
            present = await workers_store.heartbeat_worker(
                conn, worker_id=self.worker_id, inflight=inflight, processed=processed
            )
        if not present:
            await self.register()

    async def reap(self) -> None:
        """Return expired leases to the queue (crashed workers' runs are retried)."""
        async with self.pool.connection() as conn, conn.transaction():
            requeued, finished = await due_work_store.reap_expired_leases(conn)
            await tasks_store.complete_finished_tasks(conn, [r["task_id"] for r in finished])
        if requeued or finished:
            metrics.LEASES_RECLAIMED.inc(requeued + len(finished))
            for run in finished:
                metrics.RUNS.labels(run["status"], run["trigger"]).inc()
            log.warning(
                "reclaimed %d expired leases (%d retried, %d ended)",
                requeued + len(finished),
                requeued,
                len(finished),
                extra={"worker_id": self.worker_id},
            )

    async def _clean(self) -> None:
        silent = max(60.0, self.settings.lease_seconds * 3)
        days = self.settings.run_retention_days
        async with self.pool.connection() as conn:
            await workers_store.delete_stale_workers(conn, silent_seconds=silent)
            pruned = 0
            while (batch := await retention_store.prune_runs(conn, older_than_days=days)) > 0:
                pruned += batch
            while await retention_store.prune_events(conn, older_than_days=days) > 0:
                pass
        if pruned:
            log.info("pruned %d runs older than %d days", pruned, days)
