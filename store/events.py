"""Events: publish a topic and queue one run for every active event task it matches.

Used by ``POST /events`` and by the ``events.publish`` builtin tool. The run's ``event``
(what pipelines read as ``${event...}``) is ``{"id", "topic", "payload", "published_at"}``,
built from the one ``events`` row the run references (``event_document`` in migration 0012).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from engine.errors import Problem, ValidationFailed
from engine.schedules.events import TopicError, matching_patterns, parse_topic
from store.db import Connection
from store.due_work import WAKE_CHANNEL
from store.jsonb import storable_json

# Topics of up to ENUMERATE_UP_TO_SEGMENTS segments: the patterns that can match are listed
# (each segment itself or *), so the lookup is an index scan of tasks_active_events.
_MATCH_BY_PATTERNS = "t.schedule_expr = ANY(%(patterns)s::text[])"
# Deeper topics: compare segment by segment over the active event tasks.
_MATCH_BY_SEGMENTS = """
    cardinality(string_to_array(t.schedule_expr, '.')) = cardinality(%(segments)s::text[])
    AND NOT EXISTS (
        SELECT 1 FROM unnest(string_to_array(t.schedule_expr, '.'), %(segments)s::text[])
                      AS s(wanted, given)
         WHERE s.wanted <> '*' AND s.wanted <> s.given)
"""

# One statement: find the matching tasks the publisher may reach, record the event with the
# runs it queues (their ids drawn first), queue a run for each (run_at = the transaction's
# start, like run_now), and wake the workers. The payload is written once, in ``events``:
# each run holds only the event's id (migration 0012). An event whose ``source`` was already
# recorded inserts nothing and returns no row (see _REPLAY).
_PUBLISH = """
WITH matched AS MATERIALIZED (
    SELECT gen_random_uuid() AS run_id, t.id, t.priority, t.run_lock_key
      FROM tasks t
     WHERE t.schedule_kind = 'event' AND t.status = 'active' AND t.deleted_at IS NULL
       AND (%(owner)s::uuid IS NULL OR t.created_by = %(owner)s::uuid)
       AND ({match})
), event AS (
    INSERT INTO events (topic, payload, published_by, source, runs)
    SELECT %(topic)s, %(payload)s, %(published_by)s, %(source)s,
           coalesce(jsonb_agg(jsonb_build_object('task_id', m.id, 'run_id', m.run_id)
                              ORDER BY m.id), '[]'::jsonb)
      FROM matched m
    ON CONFLICT (source) DO NOTHING
    RETURNING id, created_at, runs
), inserted AS (
    INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, concurrency_key,
                          trigger, event_id)
    SELECT m.run_id, m.id, clock_timestamp(), now(), m.priority, m.run_lock_key,
           'event', e.id
      FROM matched m CROSS JOIN event e
    RETURNING id, attempt
)
SELECT e.id AS event_id, e.runs,
       (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT 1 FROM inserted LIMIT 1) one)
           AS notified,
       (SELECT notify_run_changes(string_agg(run_change('q', id, attempt), ' '))
          FROM inserted) AS changes_notified
  FROM event e
"""

# The event a source already published, with the runs it queued then.
_REPLAY = "SELECT id AS event_id, runs FROM events WHERE source = %(source)s"


async def publish_event(
    conn: Connection,
    *,
    topic: str,
    payload: Any,
    published_by: UUID | None,
    owner_filter: UUID | None,
    source: str | None = None,
) -> tuple[UUID, list[dict[str, UUID]]]:
    """Record the event and queue a run (trigger ``event``) for every active event task
    whose pattern matches ``topic``; ``owner_filter`` limits that to one agent's tasks
    (None: every agent's, for admins). An invalid topic raises
    :class:`~engine.errors.ValidationFailed` at ``$.topic``. ``source`` (e.g. a pipeline
    step's ``<run id>:<step id>``) publishes at most once: the same source again returns the
    event it published and the runs queued then, and queues nothing.

    Returns ``(event_id, [{"task_id", "run_id"}, ...])``.
    """
    try:
        parse_topic(topic)
    except TopicError as exc:
        raise ValidationFailed([Problem("$.topic", str(exc), "topic")]) from None
    patterns = matching_patterns(topic)
    match = _MATCH_BY_PATTERNS if patterns is not None else _MATCH_BY_SEGMENTS
    cursor = await conn.execute(
        _PUBLISH.format(match=match),
        {
            "topic": topic,
            "payload": Jsonb(payload, dumps=storable_json),  # a pipeline's NUL or NaN
            "published_by": published_by,
            "owner": owner_filter,
            "patterns": patterns,
            "segments": topic.split("."),
            "channel": WAKE_CHANNEL,
            "source": source,
        },
    )
    row = await cursor.fetchone()
    if row is None:  # this source published before
        cursor = await conn.execute(_REPLAY, {"source": source})
        row = await cursor.fetchone()
        assert row is not None
    runs = [
        {"task_id": UUID(item["task_id"]), "run_id": UUID(item["run_id"])} for item in row["runs"]
    ]
    return row["event_id"], runs
