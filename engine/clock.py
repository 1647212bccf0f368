"""The wall clock, read in one place.

Components that need the time take a :data:`Clock` (default :func:`now_utc`), so tests
control time without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def now_utc() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)
