"""One scheduler tick: materialise the occurrences due within the horizon.

Each batch is one transaction: lock tasks whose ``next_expand_at`` falls within the horizon
(``FOR UPDATE SKIP LOCKED`` on the partial index ``tasks_due_for_expansion``: several
schedulers split the work, and tasks not due are never read), plan their occurrences (pure,
:mod:`engine.expansion`), insert them (``ON CONFLICT DO NOTHING``) and move each task's
high-water mark forward. A crash between batches loses nothing: an uncommitted batch is
simply planned again by the next tick, of this or any other scheduler.

Work is materialised ``ORDINAUT_SCHEDULER_HORIZON_SECONDS`` ahead, so a run is in the queue
before it is due and an idle worker (which sleeps until the next ``run_at`` and is woken by
``NOTIFY``) starts it on time.

Two caches keep a tick cheap with many tasks:

- parsed schedules, keyed by the schedule's definition (kind, expression, zone, and the
  anchor of an RRULE), so 100 000 tasks sharing ``0 * * * *`` parse it once;
- within a batch, plans keyed by (definition, mark, catch-up policy): tasks created or
  expanded together share their mark and are planned once.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.clock import Clock, now_utc
from engine.errors import ValidationFailed
from engine.expansion import ExpansionPlan, plan_expansion
from engine.schedules import Schedule, parse_schedule
from engine.settings import Settings
from observability import metrics
from store import tasks as tasks_store
from store.db import Pool, Row
from store.expansion import PlannedTask, apply_plans

log = logging.getLogger("ordinaut.scheduler")

BATCH_SIZE = 1000
SCHEDULE_CACHE_SIZE = 50_000

ScheduleKey = tuple[str, str, str, datetime | None]


@dataclass
class TickResult:
    tasks: int = 0
    occurrences: int = 0
    completed: int = 0
    seconds: float = 0.0


@dataclass
class Scheduler:
    settings: Settings
    pool: Pool
    clock: Clock = field(default=now_utc)
    batch_size: int = BATCH_SIZE

    def __post_init__(self) -> None:
        self._schedules: OrderedDict[ScheduleKey, Schedule | None] = OrderedDict()

    async def tick(self) -> TickResult:
        """Expand every task due within the horizon, batch by batch."""
        started = time.perf_counter()
        result = TickResult()
        cursor: tuple[datetime, Any] | None = None
        while True:
            tasks, inserted, completed, cursor = await self._expand_batch(cursor)
            result.tasks += tasks
            result.occurrences += inserted
            result.completed += completed
            if tasks < self.batch_size:
                break
        result.seconds = time.perf_counter() - started
        metrics.SCHEDULER_TICK_DURATION.observe(result.seconds)
        metrics.SCHEDULER_OCCURRENCES.inc(result.occurrences)
        return result

    async def _expand_batch(
        self, after: tuple[datetime, Any] | None
    ) -> tuple[int, int, int, tuple[datetime, Any] | None]:
        """One transaction: lock a batch after the keyset cursor ``after``, expand it.
        Returns (tasks, occurrences inserted, tasks completed, the next cursor)."""
        now = self.clock()
        horizon = timedelta(seconds=self.settings.scheduler_horizon_seconds)
        async with self.pool.connection() as conn, conn.transaction():
            rows = await tasks_store.lock_tasks_due_for_expansion(
                conn, horizon_end=now + horizon, limit=self.batch_size, after=after
            )
            plans: dict[tuple[Any, ...], ExpansionPlan] = {}
            planned = [
                PlannedTask(
                    task_id=row["id"],
                    priority=row["priority"],
                    lock_key=row["run_lock_key"],
                    plan=self._plan(row, now, horizon, plans),
                )
                for row in rows
            ]
            inserted = await apply_plans(conn, planned)
            # A task with nothing left to expand and nothing pending is finished now (one
            # with a pending last run is completed when that run ends).
            finished = [t.task_id for t in planned if t.plan.next_expand_at is None]
            completed = await tasks_store.complete_finished_tasks(conn, finished)
        cursor = (rows[-1]["next_expand_at"], rows[-1]["id"]) if rows else after
        return len(rows), inserted, len(completed), cursor

    def _plan(
        self,
        row: Row,
        now: datetime,
        horizon: timedelta,
        plans: dict[tuple[Any, ...], ExpansionPlan],
    ) -> ExpansionPlan:
        key = _schedule_key(row)
        schedule = self._schedule(key)
        if schedule is None:
            return ExpansionPlan(expanded_until=row["expanded_until"], next_expand_at=None)
        memo = (key, row["expanded_until"], row["catch_up"])
        plan = plans.get(memo)
        if plan is None:
            plan = plan_expansion(
                schedule,
                expanded_until=row["expanded_until"],
                now=now,
                horizon=horizon,
                catch_up=row["catch_up"],
                grace=timedelta(seconds=self.settings.catch_up_grace_seconds),
            )
            plans[memo] = plan
        return plan

    def _schedule(self, key: ScheduleKey) -> Schedule | None:
        if key in self._schedules:
            self._schedules.move_to_end(key)
            return self._schedules[key]
        kind, expr, timezone, anchor = key
        schedule: Schedule | None
        try:
            schedule = parse_schedule(kind, expr, timezone, anchor=anchor or now_utc())
        except ValidationFailed as exc:
            # Validated at submit; only a tz database change could get here. Stop
            # expanding the task rather than failing every tick.
            log.error("cannot parse schedule %r: %s", expr, exc.message)
            schedule = None
        self._schedules[key] = schedule
        if len(self._schedules) > SCHEDULE_CACHE_SIZE:
            self._schedules.popitem(last=False)
        return schedule


def _schedule_key(row: Row) -> ScheduleKey:
    # Only an RRULE depends on the anchor (its DTSTART when it has none); cron and once
    # schedules with equal text and zone are the same object for every task.
    anchor = row["anchor_at"] if row["schedule_kind"] == "rrule" else None
    return (row["schedule_kind"], row["schedule_expr"], row["timezone"], anchor)
