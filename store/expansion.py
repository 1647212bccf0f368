"""Writing expansion plans: the occurrences a plan materialises go into ``due_work`` and
each task's high-water mark moves, in the caller's transaction and in one statement. The
scheduler's tick writes a batch of plans this way; a snooze writes one.

Tasks that share a plan are written as one group: the plan's times and the group's ids
travel once, as JSON (``json.dumps`` is C; psycopg would dump array elements one by one in
Python), and the server fans them out. Run ids are drawn by the server
(``gen_random_uuid``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from engine.expansion import ExpansionPlan
from store.db import Connection
from store.due_work import WAKE_CHANNEL


@dataclass(frozen=True, kw_only=True)
class PlannedTasks:
    """Tasks that share a plan, with what their runs inherit from them."""

    task_ids: Sequence[UUID | str]
    priority: int
    lock_key: str | None  # the tasks' run_lock_key: their concurrency key, owner-qualified
    plan: ExpansionPlan


# ``GREATEST`` keeps a mark from ever moving backwards. The UPDATE and the INSERT are both
# run to completion whatever the final SELECT reads (PostgreSQL's rule for data-modifying
# WITH); an occurrence already queued is skipped (the (task, occurrence) identity).
_APPLY_PLANS = """
WITH members AS (
    SELECT m.id::uuid AS task_id, p.plan
      FROM jsonb_array_elements(%(plans)s::jsonb) AS p(plan),
           jsonb_array_elements_text(p.plan -> 'ids') AS m(id)
), saved AS (
    UPDATE tasks t
       SET expanded_until = GREATEST(t.expanded_until, (m.plan ->> 'mark')::timestamptz),
           next_expand_at = (m.plan ->> 'next')::timestamptz
      FROM members m
     WHERE t.id = m.task_id
), inserted AS (
    INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, concurrency_key,
                          trigger)
    SELECT gen_random_uuid(), m.task_id, o.at::timestamptz, o.at::timestamptz,
           (m.plan ->> 'priority')::smallint, m.plan ->> 'lock_key', 'schedule'
      FROM members m, jsonb_array_elements_text(m.plan -> 'at') AS o(at)
    ON CONFLICT (task_id, scheduled_for, due_work_occurrence(trigger, id)) DO NOTHING
    RETURNING id, attempt
)
SELECT count(*) AS inserted, pg_notify(%(wake)s, ''),
       notify_run_changes(string_agg(run_change('q', id, attempt), ' '))
  FROM inserted
"""


async def apply_plans(conn: Connection, planned: Sequence[PlannedTasks]) -> int:
    """Insert the planned occurrences (an occurrence already queued is skipped), wake the
    workers, and save each task's expansion state. Returns how many occurrences were new."""
    if not planned:
        return 0
    plans = json.dumps([_document(group) for group in planned], separators=(",", ":"))
    cursor = await conn.execute(_APPLY_PLANS, {"plans": plans, "wake": WAKE_CHANNEL})
    row = await cursor.fetchone()
    return int(row["inserted"]) if row else 0


def _document(group: PlannedTasks) -> dict[str, object]:
    plan = group.plan
    return {
        "ids": [str(task_id) for task_id in group.task_ids],
        "at": [at.isoformat() for at in plan.occurrences],
        "mark": _iso(plan.expanded_until),
        "next": _iso(plan.next_expand_at),
        "priority": group.priority,
        "lock_key": group.lock_key,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
