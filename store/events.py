"""Events: publish a topic and queue one run for every active event task it matches.

Used by ``POST /events`` and by the ``events.publish`` builtin tool. The run's ``event``
(what pipelines read as ``${event...}``) is ``{"id", "topic", "payload", "published_at"}``,
built from the one ``events`` row the run references (``event_document`` in migration 0012).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from engine.errors import FanoutExceeded, Problem, ValidationFailed
from engine.quotas import quota_message
from engine.schedules.events import TopicError, matching_patterns, parse_topic
from store.db import Connection, Row
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
# recorded inserts nothing and returns no event (see _REPLAY). The publisher's
# ``event_fanout`` quota (its own, else the default given) bounds the matches: one more than
# it is looked for, and when found the event is neither recorded nor queues anything
# (``fits`` is false).
_PUBLISH = """
WITH quota AS (
    SELECT COALESCE((SELECT a.quota_event_fanout FROM agents a
                      WHERE a.id = %(published_by)s::uuid), %(fanout)s) AS fanout
), matched AS MATERIALIZED (
    SELECT gen_random_uuid() AS run_id, t.id, t.priority, t.run_lock_key
      FROM tasks t
     WHERE t.schedule_kind = 'event' AND t.status = 'active' AND t.deleted_at IS NULL
       AND (%(owner)s::uuid IS NULL OR t.created_by = %(owner)s::uuid)
       AND ({match})
     LIMIT (SELECT fanout + 1 FROM quota)
), fits AS (
    SELECT count(*) <= (SELECT fanout FROM quota) AS ok, count(*) AS found,
           (SELECT fanout FROM quota) AS fanout
      FROM matched
), event AS (
    INSERT INTO events (topic, payload, published_by, source, runs)
    SELECT %(topic)s, %(payload)s, %(published_by)s, %(source)s,
           coalesce(jsonb_agg(jsonb_build_object('task_id', m.id, 'run_id', m.run_id)
                              ORDER BY m.id), '[]'::jsonb)
      FROM matched m
    HAVING (SELECT ok FROM fits)
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
SELECT f.ok AS fits, f.found, f.fanout, e.id AS event_id, e.runs,
       (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT 1 FROM inserted LIMIT 1) one)
           AS notified,
       (SELECT notify_run_changes(string_agg(run_change('q', id, attempt), ' '))
          FROM inserted) AS changes_notified
  FROM fits f LEFT JOIN event e ON true
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
    fanout_limit: int,
    source: str | None = None,
) -> tuple[UUID, list[dict[str, UUID]]]:
    """Record the event and queue a run (trigger ``event``) for every active event task
    whose pattern matches ``topic``; ``owner_filter`` limits that to one agent's tasks
    (None: every agent's, for admins). An invalid topic raises
    :class:`~engine.errors.ValidationFailed` at ``$.topic``. ``source`` (e.g. a pipeline
    step's ``<run id>:<step id>``) publishes at most once: the same source again returns the
    event it published and the runs queued then, and queues nothing. ``fanout_limit`` is
    the ``event_fanout`` quota of a publisher without its own: an event matching more tasks
    raises :class:`~engine.errors.FanoutExceeded` and records and queues nothing.

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
            "fanout": fanout_limit,
        },
    )
    row = await cursor.fetchone()
    assert row is not None
    if row["event_id"] is None:  # too many matches, or this source published before
        cursor = await conn.execute(_REPLAY, {"source": source})
        replay = await cursor.fetchone()
        if replay is None:
            raise _fanout_exceeded(row, published_by)
        row = replay
    runs = [
        {"task_id": UUID(item["task_id"]), "run_id": UUID(item["run_id"])} for item in row["runs"]
    ]
    return row["event_id"], runs


def _fanout_exceeded(row: Row, published_by: UUID | None) -> FanoutExceeded:
    limit = int(row["fanout"])
    message = quota_message("event_fanout", limit, agent_id=published_by, found=int(row["found"]))
    return FanoutExceeded(message, quota="event_fanout", limit=limit)
