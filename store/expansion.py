"""Writing expansion plans: the occurrences a plan materialises go into ``due_work`` and
each task's high-water mark moves, in the caller's transaction. The scheduler's tick writes
a batch of plans this way; a snooze writes one."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from engine.expansion import ExpansionPlan
from store.db import Connection
from store.due_work import Occurrence, insert_occurrences
from store.tasks import save_expansion_state


@dataclass(frozen=True, kw_only=True)
class PlannedTask:
    """A task's plan, with what its runs inherit from it."""

    task_id: UUID
    priority: int
    lock_key: str | None  # the task's run_lock_key: its concurrency key, owner-qualified
    plan: ExpansionPlan


async def apply_plans(conn: Connection, planned: Sequence[PlannedTask]) -> int:
    """Insert the planned occurrences (an occurrence already queued is skipped) and save
    each task's expansion state. Returns how many occurrences were new."""
    occurrences = [
        Occurrence(
            run_id=uuid.uuid4(),
            task_id=task.task_id,
            scheduled_for=at,
            priority=task.priority,
            lock_key=task.lock_key,
        )
        for task in planned
        for at in task.plan.occurrences
    ]
    inserted = await insert_occurrences(conn, occurrences)
    await save_expansion_state(
        conn, [(t.task_id, t.plan.expanded_until, t.plan.next_expand_at) for t in planned]
    )
    return inserted
