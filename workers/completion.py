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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from engine.clock import Clock
from engine.errors import ConstraintViolated, StoreError, StoreUnavailable, ValueRefused
from engine.pipeline import PipelineOutcome, RunError
from engine.retry import decide_retry
from engine.settings import Settings
from observability import metrics
from store import due_work as due_work_store
from store.db import Pool, Row
from workers.runlog import RunLog

log = logging.getLogger("ordinaut.worker")


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
        duration_ms = int(outcome.seconds * 1000)
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
                    due_work_store.Retrying(
                        run_id=row["id"],
                        attempt=row["attempt"],
                        run_at=run_at,
                        duration_ms=duration_ms,
                        steps=steps,
                        error=error,
                    )
                )
                continue
            status = "dead"
        classified.finished.append(
            due_work_store.Finished(
                run_id=row["id"],
                attempt=row["attempt"],
                agent_id=row["agent_id"],
                status=status,
                duration_ms=duration_ms,
                steps=steps,
                error=error,
            )
        )
    return classified


def unstorable(outcome: Outcome, exc: StoreError) -> Outcome:
    """``outcome`` without its step outputs and errors, failed for good: what the database
    refused is gone, but the run, its steps' statuses and timings, and the reason remain."""
    reason = exc.message
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


@dataclass(frozen=True)
class Flushed:
    """What one write did: the outcomes it dealt with (recorded, or dropped because their
    lease was lost) and the runs it leased for the slots the worker offered."""

    outcomes: list[Outcome]
    leased: list[Row]
    webhooks_queued: bool = False


@dataclass
class Completer:
    """Writes batches of outcomes, each in one transaction that also leases the next batch
    for the slots the worker offers (one round trip, one commit). The worker owns the slots
    and decides how many to offer; this only writes."""

    settings: Settings
    pool: Pool
    worker_id: str
    clock: Clock
    processed: int = 0
    run_log: RunLog = field(default_factory=RunLog)

    async def write(
        self, batch: list[Outcome], *, lease_limit: int = 0, give_up_after: float | None = None
    ) -> Flushed:
        """Record ``batch`` and lease up to ``lease_limit`` runs. While the database is away,
        retry with backoff (until ``give_up_after`` seconds when shutting down: the leases
        then expire and the runs are retried elsewhere)."""
        classified = self._classify(batch)
        delay, waited = 0.05, 0.0
        while True:
            try:
                result = await self._write(classified, batch, lease_limit)
                return Flushed(batch, result.leased, result.webhooks_queued)
            except (ValueRefused, ConstraintViolated) as exc:
                # A value or row PostgreSQL refuses (outputs are made storable first, so this
                # is a case nobody foresaw): retrying the batch would be refused forever.
                log.error("the database refused a batch of outcomes (%s); one by one now", exc)
                await self._write_one_by_one(batch)
                return Flushed(batch, [], webhooks_queued=True)
            except StoreUnavailable as exc:
                if give_up_after is not None and waited >= give_up_after:
                    log.error("gave up recording %d outcomes: %s", len(batch), exc.message)
                    return Flushed(batch, [])
                log.warning("completion failed, retrying: %s", exc.message)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 2.0)

    async def _write_one_by_one(self, batch: list[Outcome]) -> None:
        """Write each outcome alone; one the database still refuses is recorded without its
        step outputs, as a non-retryable ``output_unstorable`` failure (and if even that is
        refused, left to its lease's expiry). A lost connection is retried like any write;
        outcomes written before are then fenced off as already recorded."""
        for outcome in batch:
            try:
                await self._write_retrying([outcome])
            except (ValueRefused, ConstraintViolated) as exc:
                stripped = unstorable(outcome, exc)
                try:
                    await self._write_retrying([stripped])
                except (ValueRefused, ConstraintViolated) as again:
                    log.error("run %s could not be recorded: %s", outcome.row["id"], again)

    async def _write_retrying(self, outcomes: list[Outcome]) -> None:
        delay = 0.05
        while True:
            try:
                await self._write(self._classify(outcomes), outcomes, 0)
                return
            except StoreUnavailable as exc:
                log.warning("completion failed, retrying: %s", exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _classify(self, outcomes: list[Outcome]) -> Classified:
        return classify(outcomes, now=self.clock(), settings=self.settings)

    async def _write(
        self, classified: Classified, batch: list[Outcome], claimed: int
    ) -> due_work_store.CompletionResult:
        async with self.pool.connection() as conn:
            result = await due_work_store.complete_and_lease(
                conn,
                worker_id=self.worker_id,
                finished=classified.finished,
                retrying=classified.retrying,
                task_ids=[outcome.row["task_id"] for outcome in batch],
                lease_limit=claimed,
                lease_seconds=self.settings.lease_seconds,
                concurrent_runs=self.settings.quota_concurrent_runs,
            )
        self._observe(classified, batch, result)
        return result

    def _observe(
        self, classified: Classified, batch: list[Outcome], result: due_work_store.CompletionResult
    ) -> None:
        seconds = {outcome.row["id"]: outcome.seconds for outcome in batch}
        finished: Counter[tuple[str, str]] = Counter()
        for run in result.written:
            finished[run["status"], run["trigger"]] += 1
            metrics.child(metrics.RUN_DURATION, run["status"]).observe(seconds.get(run["id"], 0.0))
        for (status, trigger), count in finished.items():  # one increment per kind and batch
            metrics.child(metrics.RUNS, status, trigger).inc(count)
        _log_outcomes(batch, result, self.run_log)
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


def _log_outcomes(
    batch: list[Outcome], result: due_work_store.CompletionResult, run_log: RunLog
) -> None:
    """One line per finished run (info; a warning when dead, with its error) and one per
    failed attempt that is retried (info), within the budget of ``run_log``."""
    if not log.isEnabledFor(logging.INFO):
        return
    outcomes = {outcome.row["id"]: outcome for outcome in batch}
    for run in result.written:
        outcome = outcomes.get(run["id"])
        if outcome is None:
            continue
        if run_log.allow():
            _log_finished(run["status"], outcome)
        else:
            run_log.skip(run["status"], outcome.seconds * 1000)
    for run_id in result.kept:
        outcome = outcomes.get(run_id)
        if outcome is not None and outcome.result.error is not None and run_log.allow():
            error = outcome.result.error
            log.info(
                "run attempt %d failed, retrying: %s: %s",
                outcome.row["attempt"],
                error.type,
                error.message,
                extra={**_run_fields(outcome), "status": "failed", "error_type": error.type},
            )


def _log_finished(status: str, outcome: Outcome) -> None:
    error = outcome.result.error
    fields = {**_run_fields(outcome), "status": status}
    reason = ""
    if error is not None and status != "succeeded":
        fields.update(step_id=error.step_id, error_type=error.type)
        reason = f": {error.type}: {error.message}"
    log.log(
        logging.WARNING if status == "dead" else logging.INFO,
        "run %s in %.0f ms (attempt %d)%s",
        status,
        outcome.seconds * 1000,
        outcome.row["attempt"],
        reason,
        extra=fields,
    )


def _run_fields(outcome: Outcome) -> dict[str, object]:
    return {
        "run_id": str(outcome.row["id"]),
        "task_id": str(outcome.row["task_id"]),
        "attempt": outcome.row["attempt"],
        "duration_ms": round(outcome.seconds * 1000, 1),
    }
