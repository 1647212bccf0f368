"""Batched completion: outcomes of finished attempts, written one transaction per batch.

A run's outcome becomes data first (:func:`classify`: succeeded, retry at a time, dead or
canceled), then the batch is written fenced on this worker's leases: the finished runs move
from ``due_work`` to ``runs``, the retries go back to the queue, and tasks with nothing left
are marked completed — all atomically.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import psycopg
from psycopg_pool import AsyncConnectionPool

from engine.errors import first_line
from engine.pipeline import PipelineOutcome, RunError
from engine.retry import decide_retry
from observability import metrics
from ops.settings import Settings
from store import due_work as due_work_store
from store.db import Connection, Row

log = logging.getLogger("ordinaut.worker")

BATCH_SIZE = 100
LINGER_SECONDS = 0.002


@dataclass(frozen=True)
class Outcome:
    """What an attempt produced, with the leased row it belongs to."""

    row: Row
    result: PipelineOutcome
    seconds: float


@dataclass
class Classified:
    finished: list[due_work_store.Finished] = field(default_factory=list)
    retrying: list[due_work_store.Retrying] = field(default_factory=list)


def classify(
    outcomes: list[Outcome],
    *,
    now: datetime,
    settings: Settings,
    rand: Callable[[], float] = random.random,
) -> Classified:
    """Decide, as data, what becomes of each attempt."""
    classified = Classified()
    for outcome in outcomes:
        row, result = outcome.row, outcome.result
        steps = [step.as_dict() for step in result.steps]
        error = result.error.as_dict() if result.error else None
        status = "succeeded"
        if result.error is not None and result.error.type == "canceled":
            status = "canceled"
        elif result.error is not None:
            decision = decide_retry(
                attempt=row["attempt"],
                max_retries=row["max_retries"],
                retryable=result.error.retryable,
                strategy=row["backoff_strategy"],
                base=settings.retry_base_seconds,
                cap=settings.retry_max_seconds,
                rand=rand,
            )
            if decision.retry:
                assert error is not None
                run_at = now + timedelta(seconds=decision.delay_seconds)
                classified.retrying.append(
                    due_work_store.Retrying(row["id"], row["attempt"], run_at, steps, error)
                )
                continue
            status = "dead"
        classified.finished.append(
            due_work_store.Finished(
                row["id"],
                row["attempt"],
                row["agent_id"],
                status,
                now,
                int(outcome.seconds * 1000),
                steps,
                error,
            )
        )
    return classified


def unstorable(outcome: Outcome, exc: psycopg.Error) -> Outcome:
    """``outcome`` without its step outputs and errors, failed for good: what the database
    refused is gone, but the run, its steps' statuses and timings, and the reason remain."""
    reason = first_line(exc)
    steps = [
        replace(step, output=None, error=None if step.error is None else {"type": "dropped"})
        for step in outcome.result.steps
    ]
    error = RunError(
        step_id=None,
        type="output_unstorable",
        message=f"the database refused this run's outputs: {reason}",
        retryable=False,
    )
    return replace(outcome, result=PipelineOutcome(steps=steps, error=error))


@dataclass
class Completer:
    """Collects outcomes and flushes them in batches (on size, or ``LINGER_SECONDS`` after
    the first one arrives). Each flush also leases work for the slots free at that moment
    (``claim()`` reserves them; ``on_leased(rows, claimed)`` starts the runs)."""

    settings: Settings
    pool: AsyncConnectionPool[Connection]
    worker_id: str
    clock: Callable[[], datetime]
    on_flushed: Callable[[list[Outcome]], None]
    claim: Callable[[], int]
    on_leased: Callable[[list[Row], int], None]
    processed: int = 0

    def __post_init__(self) -> None:
        self._pending: list[Outcome] = []
        self._ready = asyncio.Event()

    def add(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        self._ready.set()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            if len(self._pending) < BATCH_SIZE:
                await asyncio.sleep(LINGER_SECONDS)
            await self.flush()

    async def flush(self, *, give_up_after: float | None = None) -> None:
        """Write everything pending; while the database is away, retry with backoff (until
        ``give_up_after`` seconds when shutting down: the leases then expire and the runs
        are retried elsewhere)."""
        self._ready.clear()
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        classified = self._classify(batch)
        claimed = self.claim()
        leased: list[Row] = []
        delay, waited = 0.05, 0.0
        one_by_one = False
        while True:
            try:
                if one_by_one:
                    await self._write_one_by_one(batch)
                else:
                    leased = await self._write(classified, batch, claimed)
                break
            except psycopg.errors.UniqueViolation:
                # The lease met a concurrency-key race: write the outcomes without it.
                self.on_leased([], claimed)
                claimed = 0
            except psycopg.errors.DataError as exc:
                # A value PostgreSQL refuses (outputs are made storable first, so this is a
                # case nobody foresaw): retrying the batch would refuse it again forever.
                log.error("the database refused a batch of outcomes (%s); one by one now", exc)
                self.on_leased([], claimed)
                claimed = 0
                one_by_one = True  # and retried like any write while the database is away
            except (psycopg.Error, OSError) as exc:
                if give_up_after is not None and waited >= give_up_after:
                    log.error("gave up recording %d outcomes: %s", len(batch), exc)
                    break
                log.warning("completion failed, retrying: %s", exc)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 2.0)
        self.on_flushed(batch)
        self.on_leased(leased, claimed)

    async def _write_one_by_one(self, batch: list[Outcome]) -> None:
        """Write each outcome alone; one the database still refuses is recorded without its
        step outputs, as a non-retryable ``output_unstorable`` failure (and if even that is
        refused, left to its lease's expiry). Connection errors propagate to the caller's
        retry; outcomes written before are then fenced off as already recorded."""
        for outcome in batch:
            try:
                await self._write(self._classify([outcome]), [outcome], 0)
            except psycopg.errors.DataError as exc:
                stripped = unstorable(outcome, exc)
                try:
                    await self._write(self._classify([stripped]), [stripped], 0)
                except psycopg.errors.DataError as again:
                    log.error("run %s could not be recorded: %s", outcome.row["id"], again)

    def _classify(self, outcomes: list[Outcome]) -> Classified:
        return classify(outcomes, now=self.clock(), settings=self.settings)

    async def _write(self, classified: Classified, batch: list[Outcome], claimed: int) -> list[Row]:
        async with self.pool.connection() as conn:
            result = await due_work_store.complete_and_lease(
                conn,
                worker_id=self.worker_id,
                finished=classified.finished,
                retrying=classified.retrying,
                task_ids=[outcome.row["task_id"] for outcome in batch],
                lease_limit=claimed,
                lease_seconds=self.settings.lease_seconds,
            )
        self._observe(classified, batch, result)
        return result.leased

    def _observe(
        self, classified: Classified, batch: list[Outcome], result: due_work_store.CompletionResult
    ) -> None:
        seconds = {outcome.row["id"]: outcome.seconds for outcome in batch}
        for run in result.written:
            metrics.child(metrics.RUNS, run["status"], run["trigger"]).inc()
            metrics.child(metrics.RUN_DURATION, run["status"]).observe(seconds.get(run["id"], 0.0))
        _log_failures(batch, result)
        for run_id in result.kept:
            metrics.child(metrics.RUN_DURATION, "failed").observe(seconds.get(run_id, 0.0))
        metrics.RETRIES.inc(len(result.kept))
        self.processed += len(result.written)
        recorded = len(result.written) + len(result.kept)
        lost = len(classified.finished) + len(classified.retrying) - recorded
        if lost:
            log.warning(
                "%d outcomes dropped: their leases were lost",
                lost,
                extra={"worker_id": self.worker_id},
            )


def _log_failures(batch: list[Outcome], result: due_work_store.CompletionResult) -> None:
    """One line per failed attempt: a warning when the run is dead, info when it retries."""
    outcomes = {outcome.row["id"]: outcome for outcome in batch}
    dead = {run["id"] for run in result.written if run["status"] == "dead"}
    for run_id in [*dead, *result.kept]:
        outcome = outcomes.get(run_id)
        if outcome is None or outcome.result.error is None:
            continue
        error = outcome.result.error
        log.log(
            logging.WARNING if run_id in dead else logging.INFO,
            "run %s: %s: %s",
            "dead" if run_id in dead else f"attempt {outcome.row['attempt']} failed, retrying",
            error.type,
            error.message,
            extra={
                "run_id": str(run_id),
                "task_id": str(outcome.row["task_id"]),
                "step_id": error.step_id,
                "error_type": error.type,
            },
        )
