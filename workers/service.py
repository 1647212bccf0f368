"""The worker: lease runs in batches, execute their pipelines, complete them in batches.

Three cooperating loops share one process:

- the **lease loop** fills free slots with one ``lease_batch`` round trip, then sleeps until
  a NOTIFY arrives, a slot frees up, the next known due time comes, or the poll interval
  passes (the fallback when notifications are lost);
- one asyncio task per **run** executes its pipeline under the task's run timeout;
- the **completer** collects outcomes and writes them in one transaction per batch (flushed
  when the batch is full or a few milliseconds after its first outcome).

A **heartbeat** extends the leases of runs in flight; a run whose lease was lost is stopped
(its result would be dropped by the fenced completion anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from engine.catalog import Catalog
from engine.pipeline import Executor, PipelineOutcome, RunError, RunInfo, ToolCaller
from engine.retry import decide_retry
from engine.tools import ToolRouter
from engine.tools.builtin import BuiltinTransport
from observability import metrics
from ops.settings import Settings
from store import due_work as due_work_store
from store import tasks as tasks_store
from store.db import Connection, Row

log = logging.getLogger("ordinaut.worker")

COMPLETION_BATCH = 100
COMPLETION_LINGER_SECONDS = 0.002
LEASE_BATCH_MAX = 100

# Returns the current catalog (files + runtime tools); implementations cache it.
CatalogProvider = Callable[[], Awaitable[Catalog]]


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _Inflight:
    row: Row
    task: asyncio.Task[None]
    started: float


@dataclass
class Worker:
    settings: Settings
    pool: AsyncConnectionPool[Connection]
    catalog_provider: CatalogProvider
    concurrency: int = 10
    tools: ToolCaller | None = None  # default: builtin tools only
    worker_id: str = field(default_factory=make_worker_id)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self._inflight: dict[Any, _Inflight] = {}
        self._wake = asyncio.Event()
        self._outcomes: list[tuple[Row, PipelineOutcome, float]] = []
        self._outcome_ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._router = self.tools or ToolRouter({"builtin": BuiltinTransport()})
        self.processed = 0

    # -- lifecycle --------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then drain in-flight runs and return."""
        metrics.WORKER_CONCURRENCY.set(self.concurrency)
        background = [
            asyncio.create_task(self._listen(), name="listen"),
            asyncio.create_task(self._complete_loop(), name="complete"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
        ]
        lease_loop = asyncio.create_task(self._lease_loop(), name="lease")
        await stop.wait()
        log.info("stopping: no new leases", extra={"worker_id": self.worker_id})
        self._stopping.set()
        self._wake.set()
        await lease_loop
        await self._drain()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await self._flush()

    async def _drain(self) -> None:
        """Wait for in-flight runs (up to the grace period)."""
        pending = [entry.task for entry in self._inflight.values()]
        if pending:
            await asyncio.wait(pending, timeout=self.settings.shutdown_grace_seconds)

    # -- leasing ----------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        while not self._stopping.is_set():
            free = self.concurrency - len(self._inflight)
            leased: list[Row] = []
            if free > 0:
                leased = await self._lease(min(free, LEASE_BATCH_MAX))
                for row in leased:
                    self._start(row)
                if leased and len(leased) == min(free, LEASE_BATCH_MAX):
                    continue  # there may be more ready work
            await self._sleep_until_work(free_slots=free > 0)

    async def _lease(self, limit: int) -> list[Row]:
        try:
            async with self.pool.connection() as conn:
                return await due_work_store.lease_batch(
                    conn,
                    worker_id=self.worker_id,
                    limit=limit,
                    lease_seconds=self.settings.lease_seconds,
                )
        except psycopg.errors.UniqueViolation:
            # Another worker leased a run with the same concurrency key at the same
            # moment; the key's index refused ours. Try again: the key now shows running.
            return []
        except (psycopg.Error, OSError) as exc:
            log.warning("lease failed: %s", exc, extra={"worker_id": self.worker_id})
            await asyncio.sleep(min(self.settings.poll_seconds, 1.0))
            return []

    async def _sleep_until_work(self, *, free_slots: bool) -> None:
        timeout = self.settings.poll_seconds
        if free_slots:
            next_due = await self._next_due()
            if next_due is not None:
                timeout = min(timeout, max(0.0, (next_due - self.clock()).total_seconds()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def _next_due(self) -> datetime | None:
        try:
            async with self.pool.connection() as conn:
                due = await due_work_store.next_due_at(conn)
        except (psycopg.Error, OSError):
            return None
        # Work already due that we could not lease is held by others or blocked by a
        # concurrency key: wait for a notification or the poll instead of spinning.
        if due is not None and due <= self.clock():
            return None
        return due

    async def _listen(self) -> None:
        """LISTEN for new due work; reconnect with backoff when the connection drops."""
        delay = 0.1
        while True:
            try:
                assert self.settings.database_url
                conn = await psycopg.AsyncConnection.connect(
                    self.settings.database_url, autocommit=True
                )
                async with conn:
                    await conn.execute(f"LISTEN {due_work_store.WAKE_CHANNEL}")
                    delay = 0.1
                    self._wake.set()  # we may have missed notifications while away
                    async for _ in conn.notifies():
                        self._wake.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("listen connection lost: %s", exc, extra={"worker_id": self.worker_id})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- running ----------------------------------------------------------------------

    def _start(self, row: Row) -> None:
        started_at: datetime = row["started_at"]
        reference = row["scheduled_for"] if row["attempt"] == 1 else None
        if reference is not None:
            delay = max(0.0, (started_at - reference).total_seconds())
            metrics.RUN_START_DELAY.labels(row["trigger"]).observe(delay)
        task = asyncio.create_task(self._execute(row), name=f"run-{row['id']}")
        self._inflight[row["id"]] = _Inflight(row, task, time.perf_counter())
        metrics.WORKER_INFLIGHT.set(len(self._inflight))

    async def _execute(self, row: Row) -> None:
        outcome = PipelineOutcome()
        started = time.perf_counter()
        try:
            catalog = await self.catalog_provider()
            executor = Executor(
                catalog=catalog,
                call_tool=self._router,
                retry_base_seconds=self.settings.retry_base_seconds,
                observe_step=_observe_step,
            )
            payload = row["payload"]
            run = RunInfo(str(row["id"]), str(row["task_id"]), row["attempt"], row["scheduled_for"])
            async with asyncio.timeout(row["timeout_seconds"]):
                await executor.run(
                    payload["pipeline"],
                    params=payload.get("params", {}),
                    run=run,
                    event=row["event"],
                    outcome=outcome,
                )
        except TimeoutError:
            outcome.error = RunError(
                None, "timeout", f"run exceeded its timeout of {row['timeout_seconds']}s", True
            )
        except asyncio.CancelledError:
            outcome.error = RunError(None, "canceled", "run stopped by the worker", True)
        except Exception as exc:  # a bug in a tool or the engine must not kill the worker
            log.exception("run crashed", extra={"run_id": str(row["id"])})
            outcome.error = RunError(None, "internal", f"{type(exc).__name__}: {exc}", True)
        self._outcomes.append((row, outcome, time.perf_counter() - started))
        self._outcome_ready.set()

    # -- completing -------------------------------------------------------------------

    async def _complete_loop(self) -> None:
        while True:
            await self._outcome_ready.wait()
            if len(self._outcomes) < COMPLETION_BATCH:
                await asyncio.sleep(COMPLETION_LINGER_SECONDS)
            await self._flush()

    async def _flush(self) -> None:
        """Write every collected outcome in one transaction; retry while the DB is away."""
        if not self._outcomes:
            self._outcome_ready.clear()
            return
        batch, self._outcomes = self._outcomes, []
        self._outcome_ready.clear()
        finished, retrying = self._classify(batch)
        delay = 0.1
        while True:
            try:
                await self._write(finished, retrying, batch)
                break
            except (psycopg.Error, OSError) as exc:
                if self._stopping.is_set() and delay > 5:
                    log.error("could not record %d outcomes: %s", len(batch), exc)
                    break
                log.warning("completion failed, retrying: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for row, _, _ in batch:
            self._inflight.pop(row["id"], None)
        metrics.WORKER_INFLIGHT.set(len(self._inflight))
        self._wake.set()

    def _classify(
        self, batch: list[tuple[Row, PipelineOutcome, float]]
    ) -> tuple[list[due_work_store.Finished], list[due_work_store.Retrying]]:
        finished: list[due_work_store.Finished] = []
        retrying: list[due_work_store.Retrying] = []
        now = self.clock()
        for row, outcome, elapsed in batch:
            steps = [step.as_dict() for step in outcome.steps]
            error = outcome.error.as_dict() if outcome.error else None
            status = "succeeded"
            if outcome.error is not None:
                decision = decide_retry(
                    attempt=row["attempt"],
                    max_retries=row["max_retries"],
                    retryable=outcome.error.retryable,
                    strategy=row["backoff_strategy"],
                    base=self.settings.retry_base_seconds,
                    cap=self.settings.retry_max_seconds,
                )
                if decision.retry:
                    assert error is not None
                    run_at = now + timedelta(seconds=decision.delay_seconds)
                    retrying.append(
                        due_work_store.Retrying(row["id"], row["attempt"], run_at, steps, error)
                    )
                    continue
                status = "dead"
            finished.append(
                due_work_store.Finished(
                    row["id"],
                    row["attempt"],
                    row["agent_id"],
                    status,
                    now,
                    int(elapsed * 1000),
                    steps,
                    error,
                )
            )
        return finished, retrying

    async def _write(
        self,
        finished: list[due_work_store.Finished],
        retrying: list[due_work_store.Retrying],
        batch: list[tuple[Row, PipelineOutcome, float]],
    ) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            written = await due_work_store.finish_runs(
                conn, worker_id=self.worker_id, runs=finished
            )
            kept = await due_work_store.schedule_retries(
                conn, worker_id=self.worker_id, runs=retrying
            )
            await tasks_store.complete_finished_tasks(conn, [r["task_id"] for r in written])
        elapsed = {row["id"]: seconds for row, _, seconds in batch}
        for run in written:
            metrics.RUNS.labels(run["status"], run["trigger"]).inc()
            metrics.RUN_DURATION.labels(run["status"]).observe(elapsed.get(run["id"], 0.0))
        metrics.RETRIES.inc(len(kept))
        self.processed += len(written)
        lost = len(finished) + len(retrying) - len(written) - len(kept)
        if lost:
            log.warning("%d outcomes dropped: their leases were lost", lost)

    # -- heartbeat --------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = max(self.settings.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            ids = list(self._inflight)
            if not ids:
                continue
            try:
                async with self.pool.connection() as conn:
                    held = await due_work_store.extend_leases(
                        conn,
                        worker_id=self.worker_id,
                        run_ids=ids,
                        lease_seconds=self.settings.lease_seconds,
                    )
            except (psycopg.Error, OSError) as exc:
                log.warning("heartbeat failed: %s", exc)
                continue
            still_held = {row["id"] for row in held}
            for run_id in ids:
                entry = self._inflight.get(run_id)
                if run_id not in still_held and entry is not None and not entry.task.done():
                    log.warning("lease lost; stopping run", extra={"run_id": str(run_id)})
                    entry.task.cancel()


def _observe_step(result: Any) -> None:
    metrics.STEP_DURATION.labels(result.uses, result.status).observe(
        (result.duration_ms or 0) / 1000
    )
