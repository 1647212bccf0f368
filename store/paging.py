"""Keyset pagination, newest first, over ``(timestamp, id)``: one clause for every list.

A list query ends with :func:`newest_first` (rows strictly before the previous page's last
``(at, id)``, in that order, at most ``%(limit)s``) and passes :func:`page_params`. The
``(at, id)`` pair matches an index ``(at DESC, id DESC)`` (or one led by the list's filter),
so a page costs the same however deep it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

Cursor = tuple[datetime, Any]


def newest_first(at: str, id_column: str, id_type: str = "uuid") -> str:
    """``AND`` the keyset condition, then ``ORDER BY`` and ``LIMIT`` (column names are the
    caller's constants, never input)."""
    return (
        f" AND (%(after_at)s::timestamptz IS NULL"
        f" OR ({at}, {id_column}) < (%(after_at)s::timestamptz, %(after_id)s::{id_type}))"
        f" ORDER BY {at} DESC, {id_column} DESC LIMIT %(limit)s"
    )


def page_params(after: Cursor | None, limit: int) -> dict[str, Any]:
    """The parameters :func:`newest_first` reads."""
    return {
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
    }


def any_of(values: Sequence[str] | None) -> list[str] | None:
    """A list filter's values as a text array for ``col = ANY(%(x)s::text[])``; None (no
    filter) when there are none."""
    return [str(value) for value in values] if values else None
