"""The worker: lease runs in batches, execute their pipelines, complete them in batches.

Cooperating asyncio tasks share one process:

- one task per **run** executes its pipeline under the task's run timeout; a finished run
  frees its slot at once and leaves its outcome to be written;
- the **completion loop** writes the outcomes in one transaction per batch
  (:mod:`.completion`), which also leases runs for the slots free at that moment: one round
  trip and one commit per batch while work keeps coming;
- the **lease loop** leases when no completion will: at start, when work arrives while the
  worker is idle, and when work becomes due; it sleeps until a NOTIFY arrives, a slot frees
  up, the next known due time comes, or the poll interval passes (the fallback when
  notifications are lost);
- the **listener** turns NOTIFYs into wake-ups and cancel requests;
- the **lease heartbeat** extends the leases of runs in flight; a run whose lease was lost
  is stopped (the fenced completion would drop its result anyway);
- **progress**: a running run shows the steps it finished. They are written by the lease
  heartbeat, and every second for runs that have been running for a second or more, never
  per step: a run shorter than a second costs no write until its completion;
- **maintenance** keeps the registry row fresh and reaps expired leases (:mod:`.maintenance`);
- the **webhook sender** delivers completion webhooks from the outbox (:mod:`.webhooks`).

The worker owns its slots: both loops reserve them before a lease and start what came back.

On stop (SIGTERM): no new leases; in-flight runs get ``shutdown_grace_seconds`` to finish;
the rest are stopped and their leases released so another worker takes them at once —
except runs of tasks canceled meanwhile, which are recorded as canceled. A leased run whose
task is canceled is never started: it is recorded as canceled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from engine.catalog import Catalog, ToolSpec
from engine.clock import Clock, now_utc
from engine.deadlines import within
from engine.document import Payload
from engine.errors import StoreError
from engine.pipeline import (
    CallContext,
    Executor,
    PipelineOutcome,
    RunError,
    RunInfo,
    StepResult,
    ToolCaller,
)
from engine.settings import Settings
from observability import metrics
from observability.logging import bind_log_context, unbind_log_context
from store import due_work as due_work_store
from store.db import Pool, Row
from store.notify import Notification, hold_listening
from workers.completion import Completer, Outcome
from workers.maintenance import Maintenance
from workers.tools.builtin import BuiltinTransport
from workers.tools.router import ToolRouter
from workers.tools.ssrf import AllowList
from workers.webhooks import WebhookSender

log = logging.getLogger("ordinaut.worker")

LEASE_BATCH_MAX = 100
COMPLETION_BATCH = 100
COMPLETION_LINGER_SECONDS = 0.002  # a batch gathers outcomes this long after the first
MAX_UNWRITTEN = 200  # outcomes waiting to be written before leasing pauses
DUE_MARGIN_SECONDS = 0.002
# At shutdown, how long a batch being written may take before the loops are stopped anyway.
SHUTDOWN_FLUSH_SECONDS = 5.0
# A run that has been running this long has its finished steps written (then every second).
PROGRESS_SECONDS = 1.0

# Returns the current catalog (files + runtime tools); implementations cache it.
CatalogProvider = Callable[[], Awaitable[Catalog]]


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _Inflight:
    """A run this worker executes; ``stop_reason`` says why it was stopped, if it was.
    ``outcome`` grows as steps finish; ``steps_written`` of them are in the database."""

    row: Row
    task: asyncio.Task[None] | None = None
    stop_reason: str | None = None  # "canceled" | "lease_lost" | "shutdown"
    outcome: PipelineOutcome | None = None
    started: float = field(default_factory=time.monotonic)
    steps_written: int = 0

    def progress(self, now: float, *, running_for: float) -> due_work_store.Progress | None:
        """The steps finished since the last write, when the run still executes and has
        been running for ``running_for`` seconds (a finished run's completion writes all)."""
        outcome = self.outcome
        if outcome is None or self.task is None or self.task.done():
            return None
        if len(outcome.steps) <= self.steps_written or now - self.started < running_for:
            return None
        steps = [step.as_dict() for step in outcome.steps]
        return due_work_store.Progress(
            run_id=self.row["id"], attempt=self.row["attempt"], steps=steps
        )

    def stop(self, reason: str) -> None:
        if self.stop_reason is None and self.task is not None and not self.task.done():
            self.stop_reason = reason
            self.task.cancel()


@dataclass
class Worker:
    settings: Settings
    pool: Pool
    catalog_provider: CatalogProvider
    concurrency: int = 10
    tools: ToolCaller | None = None  # default: builtin tools only
    worker_id: str = field(default_factory=make_worker_id)
    clock: Clock = field(default=now_utc)

    def __post_init__(self) -> None:
        self._inflight: dict[Any, _Inflight] = {}
        # Slot accounting: a slot is taken while a run executes (``_executing``) or is
        # promised to a lease under way (``_reserved``). A finished run frees its slot at
        # once, so the next batch runs while the last one's outcomes are being written;
        # ``_inflight`` keeps every leased run until its outcome is recorded.
        self._executing = 0
        self._reserved = 0
        self._outcomes: list[Outcome] = []  # finished runs not yet written
        self._outcome_ready = asyncio.Event()
        self._flushing = asyncio.Lock()  # held while the completion loop writes a batch
        self._executor_cache: Executor | None = None
        self._due_misses = 0  # consecutive empty leases although work was due
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._router = self.tools or ToolRouter({"builtin": BuiltinTransport()})
        self._completer = Completer(self.settings, self.pool, self.worker_id, self.clock)
        self._webhooks = WebhookSender(
            self.settings, self.pool, allow=AllowList.parse(self.settings.http_allow)
        )
        self._maintenance = Maintenance(
            self.settings,
            self.pool,
            self.worker_id,
            self.concurrency,
            lambda: (len(self._inflight), self._completer.processed),
            on_webhooks_queued=self._webhooks.wake,
        )

    @property
    def processed(self) -> int:
        return self._completer.processed

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while every loop of the worker is alive."""
        dead = sorted(name for name, task in self._loops.items() if task.done())
        details: dict[str, Any] = {
            "worker_id": self.worker_id,
            "processed": self.processed,
            "inflight": len(self._inflight),
        }
        if dead:
            details["stopped_loops"] = dead
        return not dead and not self._stopping, details

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then drain in-flight runs and return."""
        metrics.WORKER_CONCURRENCY.set(self.concurrency)
        await self._maintenance.register(stop)
        self._loops = {
            "listen": asyncio.create_task(self._listen()),
            "complete": asyncio.create_task(self._complete_loop()),
            "lease-heartbeat": asyncio.create_task(self._lease_heartbeat()),
            "progress": asyncio.create_task(self._progress()),
            "maintenance": asyncio.create_task(self._maintenance.run()),
            "webhooks": asyncio.create_task(self._webhooks.run()),
        }
        background = list(self._loops.values())
        lease_loop = self._loops["lease"] = asyncio.create_task(self._lease_loop())
        await stop.wait()
        log.info("stopping: no new leases", extra={"worker_id": self.worker_id})
        self._stopping = True
        self._wake.set()
        await lease_loop
        await self._drain()
        await self._stop_loops(background)
        await self._flush(give_up_after=SHUTDOWN_FLUSH_SECONDS)
        await self._webhooks.aclose(grace=min(self.settings.shutdown_grace_seconds, 5.0))
        await self._maintenance.unregister()

    async def _stop_loops(self, loops: list[asyncio.Task[None]]) -> None:
        """Cancel the background loops, but not in the middle of writing a batch: cancelled
        there, a batch the database committed (with the runs it leased) would be forgotten
        here, and those runs would stay leased by a worker that is gone until the reaper
        retried them. A write that cannot finish in time (the database away) is cancelled;
        its outcomes go back to the final flush (see ``_flush``)."""
        acquired = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_FLUSH_SECONDS):
                await self._flushing.acquire()
                acquired = True
        try:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        finally:
            if acquired:
                self._flushing.release()

    async def _drain(self) -> None:
        """Let in-flight runs finish within the grace period; stop and release the rest."""
        pending = [e.task for e in self._inflight.values() if e.task is not None]
        if pending:
            await asyncio.wait(pending, timeout=self.settings.shutdown_grace_seconds)
        leftovers = [e for e in self._inflight.values() if e.task and not e.task.done()]
        for entry in leftovers:
            entry.stop("shutdown")
        await asyncio.gather(*(e.task for e in leftovers if e.task), return_exceptions=True)
        released = [e.row["id"] for e in leftovers]
        if released:
            with contextlib.suppress(StoreError):
                async with self.pool.connection(timeout=5) as conn:
                    count, canceled = await due_work_store.release_leases(
                        conn, worker_id=self.worker_id, run_ids=released
                    )
                for run in canceled:
                    metrics.child(metrics.RUNS, run["status"], run["trigger"]).inc()
                log.info(
                    "released %d runs at shutdown (%d of canceled tasks recorded as canceled)",
                    count,
                    len(canceled),
                    extra={"worker_id": self.worker_id},
                )
            for run_id in released:
                self._inflight.pop(run_id, None)

    @property
    def _free_slots(self) -> int:
        return self.concurrency - self._executing - self._reserved

    def _claim_slots(self) -> int:
        """Reserve up to ``LEASE_BATCH_MAX`` free slots; none while stopping, or while too
        many outcomes wait to be written (backpressure when the database is slow)."""
        unwritten = len(self._inflight) - self._executing
        if self._stopping or unwritten >= max(2 * self.concurrency, MAX_UNWRITTEN):
            return 0
        claimed = max(0, min(self._free_slots, LEASE_BATCH_MAX))
        self._reserved += claimed
        return claimed

    def _start_leased(self, rows: list[Row], claimed: int) -> None:
        self._reserved -= claimed
        for row in rows:
            self._start(row)
        if rows:
            metrics.WORKER_INFLIGHT.set(len(self._inflight))  # once per batch, not per run

    async def _lease_loop(self) -> None:
        """Lease when slots are free and no completion will lease for them: at start, when
        work arrives while idle, and when work becomes due."""
        while not self._stopping:
            # Clear before looking for work: a wake-up that arrives while we lease or ask
            # for the next due time must not be lost.
            self._wake.clear()
            claimed = self._claim_slots()
            if claimed > 0:
                leased = await self._lease(claimed)
                self._start_leased(leased, claimed)
                if len(leased) == claimed:
                    continue  # there may be more ready work
            await self._sleep_until_work(free_slots=claimed > 0)

    async def _lease(self, limit: int) -> list[Row]:
        try:
            async with self.pool.connection() as conn:
                return await due_work_store.lease_batch(
                    conn,
                    worker_id=self.worker_id,
                    limit=limit,
                    lease_seconds=self.settings.lease_seconds,
                    concurrent_runs=self.settings.quota_concurrent_runs,
                )
        except StoreError as exc:
            log.warning("lease failed: %s", exc.message, extra={"worker_id": self.worker_id})
            await asyncio.sleep(min(self.settings.poll_seconds, 1.0))
            return []

    async def _sleep_until_work(self, *, free_slots: bool) -> None:
        """Wait for a wake-up, the next due time, or the poll interval (the fallback)."""
        timeout = self.settings.poll_seconds
        if free_slots:
            timeout = min(timeout, await self._seconds_until_due())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def _seconds_until_due(self) -> float:
        try:
            async with self.pool.connection() as conn:
                due = await due_work_store.next_due_at(conn)
        except StoreError:
            return self.settings.poll_seconds
        if due is None:
            self._due_misses = 0
            return self.settings.poll_seconds
        wait = (due - self.clock()).total_seconds()
        if wait > 0:
            self._due_misses = 0
            # Wake a hair after the due instant: the lease compares with the database's
            # now(), and an early wake-up would find nothing and fall back to the poll.
            return wait + DUE_MARGIN_SECONDS
        # Due, yet the lease found nothing: held by other workers, blocked by a concurrency
        # key, or our clock ran a little ahead of the database's. Look again soon, backing
        # off towards the poll interval instead of spinning.
        self._due_misses += 1
        return float(min(self.settings.poll_seconds, DUE_MARGIN_SECONDS * 2**self._due_misses))

    # Completing: outcomes are written in batches, each write leasing for the free slots.

    async def _complete_loop(self) -> None:
        while True:
            await self._outcome_ready.wait()
            if len(self._outcomes) < COMPLETION_BATCH:
                await asyncio.sleep(COMPLETION_LINGER_SECONDS)
            async with self._flushing:
                await self._flush()

    async def _flush(self, *, give_up_after: float | None = None) -> None:
        """Write the finished runs' outcomes, leasing for the slots free now; then forget the
        written runs and start the leased ones."""
        self._outcome_ready.clear()
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        claimed = self._claim_slots()
        try:
            flushed = await self._completer.write(
                batch, lease_limit=claimed, give_up_after=give_up_after
            )
        except asyncio.CancelledError:
            # Stopped at shutdown: written or not, the final flush writes these again (the
            # write is fenced on lease and attempt, so a second one changes nothing).
            self._outcomes[:0] = batch
            self._reserved -= claimed
            raise
        self._forget(flushed.outcomes)
        self._start_leased(flushed.leased, claimed)
        if flushed.webhooks_queued:
            self._webhooks.wake()

    def _start(self, row: Row) -> None:
        if row["task_canceled"]:
            self._skip_canceled(row)
            return
        if row["attempt"] == 1:
            self._observe_start_delay(row)
        entry = _Inflight(row)
        self._inflight[row["id"]] = entry
        self._executing += 1
        entry.task = asyncio.create_task(self._execute(entry), name=f"run-{row['id']}")
        if log.isEnabledFor(logging.DEBUG):  # the fields cost more than the run's metrics
            log.debug(
                "run started",
                extra={
                    "run_id": str(row["id"]),
                    "task_id": str(row["task_id"]),
                    "worker_id": self.worker_id,
                    "attempt": row["attempt"],
                },
            )

    def _observe_start_delay(self, row: Row) -> None:
        """started - scheduled_for; a run queued when it was already late (a ``once`` task
        created with a past time, a caught-up occurrence) goes to its own histogram, so the
        start delay keeps measuring how fast queued runs start."""
        delay = max(0.0, (row["started_at"] - row["scheduled_for"]).total_seconds())
        queued_late = (row["queued_at"] - row["scheduled_for"]).total_seconds()
        late = queued_late > self.settings.catch_up_grace_seconds
        histogram = metrics.RUN_LATE_START if late else metrics.RUN_START_DELAY
        metrics.child(histogram, row["trigger"]).observe(delay)

    def _skip_canceled(self, row: Row) -> None:
        """A leased run whose task was canceled: record it as canceled without running it
        (it holds no slot; its outcome is written with the next batch)."""
        self._inflight[row["id"]] = _Inflight(row)
        error = RunError(step_id=None, type="canceled", message="task canceled", retryable=False)
        self._outcomes.append(Outcome(row, PipelineOutcome(error=error), 0.0))
        self._outcome_ready.set()

    async def _execute(self, entry: _Inflight) -> None:
        # This task runs in its own copy of the logging context: tool logs carry the run.
        bind_log_context(run_id=str(entry.row["id"]), task_id=str(entry.row["task_id"]))
        row = entry.row
        outcome = entry.outcome = PipelineOutcome()
        started = time.perf_counter()
        try:
            executor = await self._executor()
            payload = _parse_payload(row["payload"])
            deadline = asyncio.get_running_loop().time() + row["timeout_seconds"]
            pipeline = executor.run(
                payload.steps,
                params=payload.params,
                run=RunInfo(
                    id=str(row["id"]),
                    task_id=str(row["task_id"]),
                    attempt=row["attempt"],
                    scheduled_for=row["scheduled_for"],
                    agent_id=str(row["agent_id"]),
                ),
                event=row["event"],
                outcome=outcome,
                cancelled=lambda: entry.stop_reason == "canceled",
            )
            # The run's timeout is armed only if the pipeline suspends (a no-op run never
            # does): see engine.deadlines.
            await within(pipeline, deadline)
        except TimeoutError:
            message = f"run exceeded its timeout of {row['timeout_seconds']}s"
            outcome.error = RunError(step_id=None, type="timeout", message=message, retryable=True)
        except asyncio.CancelledError:
            if entry.stop_reason is None:
                raise  # not ours: let the cancellation propagate
            outcome.error = RunError(
                step_id=None, type="canceled", message="run canceled", retryable=False
            )
        except Exception as exc:  # a bug in a tool or the engine must not kill the worker
            log.exception("run crashed", extra={"run_id": str(row["id"])})
            message = f"{type(exc).__name__}: {exc}"
            outcome.error = RunError(step_id=None, type="internal", message=message, retryable=True)
        finally:
            self._run_ended()
        if entry.stop_reason in ("lease_lost", "shutdown"):
            return  # nothing to record: the lease is gone, or released by _drain
        self._outcomes.append(Outcome(row, outcome, time.perf_counter() - started))
        self._outcome_ready.set()

    def _run_ended(self) -> None:
        """Free the run's slot; wake the lease loop once half a batch of slots is free (one
        slot at a time would cost a transaction per run)."""
        self._executing -= 1
        if self._free_slots >= max(1, min(self.concurrency, LEASE_BATCH_MAX) // 2):
            self._wake.set()

    async def _executor(self) -> Executor:
        """The executor for the current catalog (rebuilt only when the catalog changes)."""
        catalog = await self.catalog_provider()
        if self._executor_cache is None or self._executor_cache.catalog is not catalog:
            self._executor_cache = Executor(
                catalog=catalog,
                call_tool=self._call_tool,
                retry_base_seconds=self.settings.retry_base_seconds,
                observe_step=_observe_step,
                observe_retry=_log_step_retry,
                max_output_bytes=self.settings.max_output_bytes,
                max_value_bytes=self.settings.max_value_bytes,
            )
        return self._executor_cache

    async def _call_tool(
        self, tool: ToolSpec, arguments: dict[str, Any], context: CallContext
    ) -> dict[str, Any]:
        # The run's context (run_id, task_id) is bound already; the step's id joins it for
        # every line the tool's transport logs (circuit breaker, MCP session, http.request).
        # Bound by hand: a @contextmanager costs about 3 µs a call on the hot path.
        token = bind_log_context(step_id=context.step_id)
        try:
            return await self._router(tool, arguments, context)
        finally:
            unbind_log_context(token)

    def _forget(self, outcomes: list[Outcome]) -> None:
        """After a write: the runs are recorded; look for more work."""
        for outcome in outcomes:
            self._inflight.pop(outcome.row["id"], None)
        metrics.WORKER_INFLIGHT.set(len(self._inflight))
        self._wake.set()

    async def _listen(self) -> None:
        """Wake-ups for new work (also after every reconnect: notifications sent meanwhile
        were lost) and cancel requests."""
        assert self.settings.database_url
        await hold_listening(
            self.settings.database_url,
            name="ordinaut-worker-listen",
            channels=[due_work_store.WAKE_CHANNEL, due_work_store.CANCEL_CHANNEL],
            on_connect=self._wake.set,
            on_notify=self._notified,
            what="listen connection",
            log_extra={"worker_id": self.worker_id},
        )

    def _notified(self, notification: Notification) -> None:
        if notification.channel == due_work_store.CANCEL_CHANNEL:
            self._cancel_requested(notification.payload)
        else:
            self._wake.set()

    def _cancel_requested(self, run_id: str) -> None:
        entry = self._inflight.get(run_id)  # leased ids are text, like the notification's
        if entry is not None:
            log.info("cancel requested", extra={"run_id": run_id})
            entry.stop("canceled")

    async def _lease_heartbeat(self) -> None:
        interval = max(self.settings.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            self._completer.run_log.flush()  # the sum of a busy second, when all went quiet
            # Every lease we hold, including runs that ended but are not written yet, and
            # the finished steps of the runs still executing.
            running = list(self._inflight)
            if running:
                await self._beat(running, self._pending_progress(running_for=0.0))

    async def _progress(self) -> None:
        """Every second: write the finished steps of runs running for a second or more
        (their leases are extended on the way)."""
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            progress = self._pending_progress(running_for=PROGRESS_SECONDS)
            if progress:
                await self._beat([p.run_id for p in progress], progress)

    def _pending_progress(self, *, running_for: float) -> list[due_work_store.Progress]:
        now = time.monotonic()
        pending = (
            entry.progress(now, running_for=running_for) for entry in self._inflight.values()
        )
        return [progress for progress in pending if progress is not None]

    async def _beat(self, running: list[Any], progress: list[due_work_store.Progress]) -> None:
        try:
            async with self.pool.connection() as conn:
                held = await due_work_store.extend_leases(
                    conn,
                    worker_id=self.worker_id,
                    run_ids=running,
                    lease_seconds=self.settings.lease_seconds,
                    progress=progress,
                )
        except StoreError as exc:
            log.warning(
                "lease heartbeat failed: %s", exc.message, extra={"worker_id": self.worker_id}
            )
            return
        for written in progress:
            entry = self._inflight.get(written.run_id)
            if entry is not None:
                entry.steps_written = max(entry.steps_written, len(written.steps))
        self._apply_heartbeat(running, held)

    def _apply_heartbeat(self, running: list[Any], held: list[Row]) -> None:
        still_held = {row["id"]: row["cancel_requested"] for row in held}
        for run_id in running:
            entry = self._inflight.get(run_id)
            if entry is None:
                continue
            if run_id not in still_held:
                log.warning("lease lost; stopping run", extra={"run_id": str(run_id)})
                entry.stop("lease_lost")
                self._inflight.pop(run_id, None)
            elif still_held[run_id]:
                entry.stop("canceled")


@functools.lru_cache(maxsize=1024)
def _parse_payload(text: str) -> Payload:
    """A task's payload, parsed once per distinct text (runs of one task share it).

    The result is shared between runs, so nothing may modify it: the executor renders new
    values from it and tools receive those."""
    return Payload.parse(json.loads(text))


def _log_step_retry(result: StepResult, delay: float) -> None:
    """One line per step try that failed and is tried again (the run's ids are bound)."""
    error = result.error or {}
    log.info(
        "step %s try %d failed, retrying in %.1f s: %s: %s",
        result.id,
        result.attempt,
        delay,
        error.get("type"),
        error.get("message"),
        extra={"step_id": result.id, "tool": result.uses, "error_type": error.get("type")},
    )


def _observe_step(result: StepResult) -> None:
    metrics.child(metrics.STEP_DURATION, result.uses, result.status).observe(
        (result.duration_ms or 0) / 1000
    )
