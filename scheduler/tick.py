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

What keeps a tick cheap with a million tasks:

- the batch comes back grouped (:func:`store.tasks.lock_due_groups`): tasks that share
  schedule, mark, catch-up policy, priority and concurrency key are one row, planned once
  and written as one group (:func:`store.expansion.apply_plans`), so no Python object is
  made per task;
- parsed schedules are cached, keyed by the schedule's definition (kind, expression, zone,
  and for an RRULE without DTSTART what of the anchor it depends on, see
  :func:`engine.schedules.rrule.anchor_signature`), so 100 000 tasks sharing ``0 * * * *``
  parse it once;
- a tick reads the clock once: every batch plans against the same ``now``, and plans are
  kept for the tick, keyed by (definition, mark, catch-up policy), so tasks created or
  expanded together are planned once even across batches.
"""

from __future__ import annotations

import asyncio
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
from engine.schedules.rrule import ANCHOR_MARGIN, anchor_signature
from engine.settings import Settings
from engine.timezones import get_zone
from observability import metrics
from store import tasks as tasks_store
from store.db import Pool, Row
from store.expansion import PlannedTasks, apply_plans

log = logging.getLogger("ordinaut.scheduler")

BATCH_SIZE = 1000
SCHEDULE_CACHE_SIZE = 50_000
# Concurrent transactions for a tick with more than one batch: the database inserts on
# one core while the scheduler plans the next batch and another backend inserts on the other.
LANES = 2
# Plans kept within one tick (a cold start may meet a million distinct ones).
PLAN_MEMO_SIZE = 20_000

# (kind, expression, zone, anchor): None, the anchor, or an RRULE's anchor signature.
ScheduleKey = tuple[str, str, str, object]


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
    lanes: int = LANES

    def __post_init__(self) -> None:
        # Each with the anchor it was built with.
        self._schedules: OrderedDict[ScheduleKey, tuple[Schedule | None, datetime]] = OrderedDict()

    async def tick(self) -> TickResult:
        """Expand every task due within the horizon, batch by batch: one batch, and when it
        was full (a herd, a cold start) the rest in :data:`LANES` concurrent lanes."""
        started = time.perf_counter()
        result = TickResult()
        now = self.clock()
        plans: dict[tuple[Any, ...], ExpansionPlan] = {}
        cursor = await self._batch_into(result, now, None, plans)
        if cursor is not None:
            lanes = (self._lane(result, now, cursor, plans) for _ in range(self.lanes))
            await asyncio.gather(*lanes)
        result.seconds = time.perf_counter() - started
        metrics.SCHEDULER_TICK_DURATION.observe(result.seconds)
        metrics.SCHEDULER_OCCURRENCES.inc(result.occurrences)
        return result

    async def _lane(
        self,
        result: TickResult,
        now: datetime,
        cursor: tuple[datetime, Any] | None,
        plans: dict[tuple[Any, ...], ExpansionPlan],
    ) -> None:
        """Batches until one is not full. Lanes start from the same cursor and leapfrog:
        each skips the tasks the other holds (SKIP LOCKED), as separate schedulers do."""
        while cursor is not None:
            cursor = await self._batch_into(result, now, cursor, plans)

    async def _batch_into(
        self,
        result: TickResult,
        now: datetime,
        after: tuple[datetime, Any] | None,
        plans: dict[tuple[Any, ...], ExpansionPlan],
    ) -> tuple[datetime, Any] | None:
        """One batch, added to ``result``; the cursor to go on from, None when the batch
        was not full (nothing more is due)."""
        tasks, inserted, completed, cursor = await self._expand_batch(now, after, plans)
        result.tasks += tasks
        result.occurrences += inserted
        result.completed += completed
        if len(plans) > PLAN_MEMO_SIZE:
            plans.clear()
        return cursor if tasks >= self.batch_size else None

    async def _expand_batch(
        self,
        now: datetime,
        after: tuple[datetime, Any] | None,
        plans: dict[tuple[Any, ...], ExpansionPlan],
    ) -> tuple[int, int, int, tuple[datetime, Any] | None]:
        """One transaction: lock a batch after the keyset cursor ``after``, expand it.
        Returns (tasks, occurrences inserted, tasks completed, the next cursor)."""
        horizon = timedelta(seconds=self.settings.scheduler_horizon_seconds)
        async with self.pool.connection() as conn, conn.transaction():
            groups = await tasks_store.lock_due_groups(
                conn, horizon_end=now + horizon, limit=self.batch_size, after=after
            )
            planned = [
                PlannedTasks(
                    task_ids=group["task_ids"],
                    priority=group["priority"],
                    lock_key=group["run_lock_key"],
                    plan=self._plan(group, now, horizon, plans),
                )
                for group in groups
            ]
            inserted = await apply_plans(conn, planned)
            # A task with nothing left to expand and nothing pending is finished now (one
            # with a pending last run is completed when that run ends).
            finished = [
                task_id
                for group in planned
                if group.plan.next_expand_at is None
                for task_id in group.task_ids
            ]
            completed = await tasks_store.complete_finished_tasks(conn, finished)
        tasks = sum(len(group.task_ids) for group in planned)
        cursor = (groups[0]["last_at"], groups[0]["last_id"]) if groups else after
        return tasks, inserted, len(completed), cursor

    def _plan(
        self,
        row: Row,
        now: datetime,
        horizon: timedelta,
        plans: dict[tuple[Any, ...], ExpansionPlan],
    ) -> ExpansionPlan:
        key = _schedule_key(row)
        schedule = self._schedule(key, row["anchor_at"], row["expanded_until"])
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

    def _schedule(
        self, key: ScheduleKey, anchor: datetime | None, mark: datetime | None
    ) -> Schedule | None:
        """The parsed schedule of ``key``, built with ``anchor`` when not cached. One shared
        by RRULE anchors (a signature key) was built with one of them: it serves marks at
        least ANCHOR_MARGIN after that anchor, and is rebuilt with an earlier one when a
        task's mark is not (anchors only ever move back, so this settles at once)."""
        cached = self._schedules.get(key)
        if cached is not None:
            schedule, built_with = cached
            shared = isinstance(key[3], tuple)
            if not shared or (mark is not None and mark >= built_with + ANCHOR_MARGIN):
                self._schedules.move_to_end(key)
                return schedule
        kind, expr, timezone, _ = key
        anchor = anchor or now_utc()  # cron and once schedules ignore it
        try:
            schedule = parse_schedule(kind, expr, timezone, anchor=anchor)
        except ValidationFailed as exc:
            # Validated at submit; only a tz database change could get here. Stop
            # expanding the task rather than failing every tick.
            log.error("cannot parse schedule %r: %s", expr, exc.message)
            schedule = None
        self._schedules[key] = (schedule, anchor)
        if len(self._schedules) > SCHEDULE_CACHE_SIZE:
            self._schedules.popitem(last=False)
        return schedule


def _schedule_key(row: Row) -> ScheduleKey:
    """What a task's schedule depends on. Cron and once schedules with equal text and zone
    are the same for every task; an RRULE depends on the anchor (its DTSTART when it has
    none) only as far as :func:`anchor_signature` says, once its mark is past the margin."""
    kind, expr, timezone = row["schedule_kind"], row["schedule_expr"], row["timezone"]
    if kind != "rrule":
        return (kind, expr, timezone, None)
    anchor, mark = row["anchor_at"], row["expanded_until"]
    try:
        signature = anchor_signature(expr, get_zone(timezone), anchor)
    except ValueError:  # UnknownTimezone too
        return (kind, expr, timezone, anchor)  # the parser will say what is wrong
    if signature == ():
        return (kind, expr, timezone, None)
    if signature is None or mark is None or mark < anchor + ANCHOR_MARGIN:
        return (kind, expr, timezone, anchor)
    return (kind, expr, timezone, signature)
