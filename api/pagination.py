"""Opaque cursors for keyset pagination over ``(timestamp, id)``, and :func:`list_page`,
which every list route answers with."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import Query

from engine.errors import Problem, ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1..500).")]
CursorParam = Annotated[
    str | None,
    Query(max_length=200, description="`next_cursor` of the previous page (opaque)."),
]


def encode_cursor(at: datetime, row_id: Any) -> str:
    raw = json.dumps([at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


IdT = TypeVar("IdT")


def bigint(value: Any) -> int:
    """An id that fits a Postgres ``bigint`` (else ValueError)."""
    if not isinstance(value, int | str):
        raise TypeError("not an integer")
    number = int(value)
    if not -(2**63) <= number < 2**63:
        raise ValueError("out of range")
    return number


def decode_typed_cursor(
    cursor: str | None, id_type: Callable[[Any], IdT]
) -> tuple[datetime, IdT] | None:
    """The ``(timestamp, id)`` inside a cursor, the id parsed by ``id_type`` (``UUID``,
    :func:`bigint`); 422 naming ``query.cursor`` when it was not made by us."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        parsed_at = datetime.fromisoformat(at)
        if parsed_at.tzinfo is None:
            raise ValueError("naive cursor time")
        return parsed_at, id_type(row_id)
    except (ValueError, TypeError, AttributeError, OverflowError):
        raise ValidationFailed([Problem("query.cursor", "invalid cursor", "cursor")]) from None


Fetch = Callable[[int, tuple[datetime, Any] | None], Awaitable[list[dict[str, Any]]]]


async def list_page(
    fetch: Fetch,
    *,
    limit: int,
    cursor: str | None,
    key: str,
    id_type: Callable[[Any], Any] = UUID,
) -> dict[str, Any]:
    """``{"items", "next_cursor"}``: ``fetch(n, after)`` reads up to ``n`` rows after the
    cursor's ``(key, id)``; one row more than the page tells whether another page follows."""
    rows = await fetch(limit + 1, decode_typed_cursor(cursor, id_type))
    items, next_cursor = page(rows, limit, key)
    return {"items": items, "next_cursor": next_cursor}


def page(
    rows: list[dict[str, Any]], limit: int, key: str
) -> tuple[list[dict[str, Any]], str | None]:
    """Split one extra fetched row off into the next cursor (rows were fetched limit + 1)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1][key], rows[-1]["id"])
