"""The audit log: one row per successful mutating API call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from store.db import Connection, Row
from store.paging import newest_first, page_params

_SELECT_ENTRY = (
    "SELECT id, at, actor_id, actor_name, action, subject_type, subject_id, details, "
    "request_id FROM audit_log "
)


async def insert_entries(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> None:
    """Insert audit entries (``actor_id, actor_name, action, subject_type, subject_id,
    details, request_id``) with one statement, in order."""
    if not entries:
        return
    columns = ("actor_id", "actor_name", "action", "subject_type", "subject_id", "request_id")
    values = [[entry[column] for entry in entries] for column in columns]
    details = [Jsonb(entry["details"]) for entry in entries]
    await conn.execute(
        """
        INSERT INTO audit_log (actor_id, actor_name, action, subject_type, subject_id,
                               request_id, details)
        SELECT actor_id, actor_name, action, subject_type, subject_id, request_id, details
          FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[],
                             %s::text[], %s::jsonb[])
               WITH ORDINALITY AS e(actor_id, actor_name, action, subject_type, subject_id,
                                    request_id, details, n)
         ORDER BY n
        """,
        (*values, details),
    )


_NEWEST_FIRST = newest_first("at", "id", "bigint")


async def list_entries(
    conn: Connection,
    *,
    actor_id: UUID | None = None,
    action: str | None = None,
    action_prefix: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    after: tuple[datetime, int] | None = None,
) -> list[Row]:
    """Entries newest first; ``after`` is the previous page's last ``(at, id)``.

    Ordered by ``(at, id)`` so that the ``audit_log_recent``, ``audit_log_actor`` and
    ``audit_log_subject`` indexes serve both the filter and the order.
    """
    cursor = await conn.execute(
        _SELECT_ENTRY
        + """
         WHERE (%(actor)s::uuid IS NULL OR actor_id = %(actor)s::uuid)
           AND (%(action)s::text IS NULL OR action = %(action)s::text)
           AND (%(prefix)s::text IS NULL OR starts_with(action, %(prefix)s::text))
           AND (%(stype)s::text IS NULL OR subject_type = %(stype)s::text)
           AND (%(sid)s::text IS NULL OR subject_id = %(sid)s::text)
           AND (%(since)s::timestamptz IS NULL OR at >= %(since)s::timestamptz)
           AND (%(until)s::timestamptz IS NULL OR at < %(until)s::timestamptz)
        """
        + _NEWEST_FIRST,
        {
            "actor": actor_id,
            "action": action,
            "prefix": action_prefix,
            "stype": subject_type,
            "sid": subject_id,
            "since": since,
            "until": until,
            **page_params(after, limit),
        },
    )
    return await cursor.fetchall()


async def prune_entries(conn: Connection, *, older_than_days: int, batch: int = 5000) -> int:
    """Delete up to ``batch`` entries older than ``older_than_days``."""
    cursor = await conn.execute(
        """
        DELETE FROM audit_log WHERE id IN (
            SELECT id FROM audit_log WHERE at < now() - make_interval(days => %s) LIMIT %s)
        """,
        (older_than_days, batch),
    )
    return cursor.rowcount
