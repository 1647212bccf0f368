"""Housekeeping every worker does: the registry heartbeat, the lease reaper, stale registry
rows and retention (run history, events, audit entries, Idempotency-Key answers, expired
console sessions). Each
statement is safe to run from many workers at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from engine.errors import StoreError, StoreUnavailable
from engine.settings import Settings
from observability import metrics
from store import audit as audit_store
from store import console_sessions as console_sessions_store
from store import due_work as due_work_store
from store import idempotency as idempotency_store
from store import retention as retention_store
from store import tasks as tasks_store
from store import vacuum as vacuum_store
from store import webhooks as webhooks_store
from store import workers as workers_store
from store.db import FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS, Pool

log = logging.getLogger("ordinaut.worker")

PRUNE_EVERY_SECONDS = 300.0
# Vacuum due_work once its dead rows exceed both numbers (see store/vacuum.py).
VACUUM_MIN_DEAD_ROWS = 20_000
VACUUM_DEAD_PER_LIVE = 4
VACUUM_CHECK_SECONDS = 1.0


@dataclass
class Maintenance:
    settings: Settings
    pool: Pool
    worker_id: str
    concurrency: int
    stats: Callable[[], tuple[int, int]]  # (inflight, processed)
    on_webhooks_queued: Callable[[], None] = lambda: None

    @property
    def interval(self) -> float:
        # Reap several times per lease period, so a crashed worker's runs restart within
        # about 1.25 lease periods.
        return max(min(self.settings.lease_seconds / 4, 5.0), 0.05)

    async def register(self, stop: asyncio.Event) -> None:
        """Enter the worker registry. The database answered a moment ago, but it may be
        restarting now (a slow start on a busy machine): retry with backoff until it answers
        or ``stop`` is set, rather than let the process die before its first lease."""
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                await self._register_once()
                return
            except StoreUnavailable as exc:
                log.warning(
                    "could not register (%s); retrying in %.2f s",
                    exc.message,
                    delay,
                    extra={"worker_id": self.worker_id},
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            if stop.is_set():
                return
            delay = min(2 * delay, MAX_RETRY_SECONDS)

    async def _register_once(self) -> None:
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
        except StoreError as exc:
            log.warning(
                "could not unregister: %s", exc.message, extra={"worker_id": self.worker_id}
            )

    async def run(self) -> None:
        """Every ``interval``: heartbeat and reap; every second: check the hot table's bloat;
        every few minutes: registry cleanup and retention."""
        last_beat = last_prune = 0.0
        while True:
            now = time.monotonic()
            try:
                if now - last_beat >= self.interval:
                    await self._heartbeat()
                    await self.reap()
                    last_beat = now
                await self.vacuum_if_bloated()
                if now - last_prune > PRUNE_EVERY_SECONDS:
                    await self._clean()
                    last_prune = now
            except StoreError as exc:
                log.warning(
                    "maintenance failed: %s", exc.message, extra={"worker_id": self.worker_id}
                )
            await asyncio.sleep(min(self.interval, VACUUM_CHECK_SECONDS))

    async def _heartbeat(self) -> None:
        inflight, processed = self.stats()
        async with self.pool.connection() as conn:
            present = await workers_store.heartbeat_worker(
                conn, worker_id=self.worker_id, inflight=inflight, processed=processed
            )
        if not present:  # removed as stale while this worker was cut off
            await self._register_once()

    async def reap(self) -> None:
        """Return expired leases to the queue (crashed workers' runs are retried)."""
        async with self.pool.connection() as conn, conn.transaction():
            requeued, finished = await due_work_store.reap_expired_leases(conn)
            await tasks_store.complete_finished_tasks(conn, [r["task_id"] for r in finished])
        if finished:
            self.on_webhooks_queued()  # perhaps: the buried runs' owners may have webhooks
        if requeued or finished:
            metrics.LEASES_RECLAIMED.inc(requeued + len(finished))
            for run in finished:
                metrics.child(metrics.RUNS, run["status"], run["trigger"]).inc()
            log.warning(
                "reclaimed %d expired leases (%d retried, %d ended)",
                requeued + len(finished),
                requeued,
                len(finished),
                extra={"worker_id": self.worker_id},
            )

    async def vacuum_if_bloated(self) -> bool:
        """Vacuum the hot table when dead rows pile up faster than autovacuum visits."""
        async with self.pool.connection() as conn:
            dead, live = await vacuum_store.due_work_dead_rows(conn)
            if dead < max(VACUUM_MIN_DEAD_ROWS, VACUUM_DEAD_PER_LIVE * live):
                return False
            started = time.monotonic()
            if not await vacuum_store.vacuum_due_work(conn):
                return False
        log.info(
            "vacuumed due_work (%d dead rows, %d live) in %.2fs",
            dead,
            live,
            time.monotonic() - started,
            extra={"worker_id": self.worker_id},
        )
        return True

    async def _clean(self) -> None:
        silent = max(60.0, self.settings.lease_seconds * 3)
        days = self.settings.run_retention_days
        audit_days = self.settings.audit_retention_days
        ttl = idempotency_store.TTL_SECONDS
        async with self.pool.connection() as conn:
            await workers_store.delete_stale_workers(conn, silent_seconds=silent)
            pruned = await _until_none_left(
                lambda: retention_store.prune_runs(conn, older_than_days=days)
            )
            await _until_none_left(lambda: retention_store.prune_events(conn, older_than_days=days))
            await _until_none_left(
                lambda: audit_store.prune_entries(conn, older_than_days=audit_days)
            )
            await _until_none_left(
                lambda: idempotency_store.prune_keys(conn, older_than_seconds=ttl)
            )
            await _until_none_left(lambda: console_sessions_store.prune_expired_sessions(conn))
            await _until_none_left(
                lambda: webhooks_store.prune_deliveries(conn, older_than_days=days)
            )
            await webhooks_store.forget_previous_secrets(conn)
        if pruned:
            log.info("pruned %d runs older than %d days", pruned, days)


async def _until_none_left(prune_batch: Callable[[], Awaitable[int]]) -> int:
    """Run a batched delete until it deletes nothing; the rows deleted in all."""
    deleted = 0
    while (batch := await prune_batch()) > 0:
        deleted += batch
    return deleted
