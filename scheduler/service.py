"""One scheduler tick: materialise the occurrences due within the horizon.

Each batch is one transaction: lock tasks whose ``next_expand_at`` falls within the horizon
(``FOR UPDATE SKIP LOCKED``: several schedulers split the work), plan their occurrences
(pure, :mod:`engine.expansion`), insert them (``ON CONFLICT DO NOTHING``) and move each
task's high-water mark forward. A crash between batches loses nothing: an uncommitted batch
is simply planned again by the next tick, of this or any other scheduler.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from engine.errors import ValidationFailed
from engine.expansion import ExpansionPlan, plan_expansion
from engine.schedules import Schedule, parse_schedule
from observability import metrics
from ops.settings import Settings
from store import due_work as due_work_store
from store import tasks as tasks_store
from store.db import Connection, Row

log = logging.getLogger("ordinaut.scheduler")

BATCH_SIZE = 500


@dataclass
class TickResult:
    tasks: int = 0
    occurrences: int = 0
    seconds: float = 0.0


@dataclass
class Scheduler:
    settings: Settings
    pool: AsyncConnectionPool[Connection]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        # Parsed schedules by (task id, updated_at): parsing an RRULE costs far more than
        # asking it for the next occurrence.
        self._schedules: dict[Any, tuple[datetime, Schedule | None]] = {}

    async def tick(self) -> TickResult:
        """Expand every task due within the horizon, batch by batch."""
        started = time.perf_counter()
        result = TickResult()
        while True:
            tasks, inserted = await self._expand_batch()
            result.tasks += tasks
            result.occurrences += inserted
            if tasks < BATCH_SIZE:
                break
        result.seconds = time.perf_counter() - started
        metrics.SCHEDULER_TICK_DURATION.observe(result.seconds)
        metrics.SCHEDULER_OCCURRENCES.inc(result.occurrences)
        return result

    async def _expand_batch(self) -> tuple[int, int]:
        now = self.clock()
        horizon = timedelta(seconds=self.settings.scheduler_horizon_seconds)
        async with self.pool.connection() as conn, conn.transaction():
            rows = await tasks_store.lock_tasks_due_for_expansion(
                conn, horizon_end=now + horizon, limit=BATCH_SIZE
            )
            occurrences: list[due_work_store.Occurrence] = []
            updates: list[tuple[Any, datetime | None, datetime | None]] = []
            for row in rows:
                plan = self._plan(row, now, horizon)
                occurrences += [
                    due_work_store.Occurrence(
                        uuid.uuid4(), row["id"], at, row["priority"], row["concurrency_key"]
                    )
                    for at in plan.occurrences
                ]
                updates.append((row["id"], plan.expanded_until, plan.next_expand_at))
            inserted = await due_work_store.insert_occurrences(conn, occurrences)
            await tasks_store.save_expansion_state(conn, updates)
            # A task with nothing left to expand and nothing pending is finished now.
            await tasks_store.complete_finished_tasks(
                conn, [row["id"] for row in rows if not self._has_future(updates, row["id"])]
            )
        return len(rows), inserted

    def _plan(self, row: Row, now: datetime, horizon: timedelta) -> ExpansionPlan:
        schedule = self._schedule(row)
        if schedule is None:
            return ExpansionPlan(expanded_until=row["expanded_until"], next_expand_at=None)
        return plan_expansion(
            schedule,
            expanded_until=row["expanded_until"],
            now=now,
            horizon=horizon,
            catch_up=row["catch_up"],
            grace=timedelta(seconds=self.settings.catch_up_grace_seconds),
        )

    def _schedule(self, row: Row) -> Schedule | None:
        cached = self._schedules.get(row["id"])
        if cached is not None and cached[0] == row["updated_at"]:
            return cached[1]
        schedule: Schedule | None
        try:
            schedule = parse_schedule(
                row["schedule_kind"],
                row["schedule_expr"],
                row["timezone"],
                anchor=row["anchor_at"],
            )
        except ValidationFailed as exc:
            # Validated at submit; only a tz database change could get here. Stop
            # expanding the task rather than failing every tick.
            log.error("cannot parse schedule: %s", exc.message, extra={"task_id": str(row["id"])})
            schedule = None
        self._schedules[row["id"]] = (row["updated_at"], schedule)
        return schedule

    @staticmethod
    def _has_future(
        updates: list[tuple[Any, datetime | None, datetime | None]], task_id: Any
    ) -> bool:
        return any(u[0] == task_id and u[2] is not None for u in updates)
