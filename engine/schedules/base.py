"""The schedule protocol shared by every kind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

SCHEDULE_KINDS = ("once", "cron", "rrule", "event")


class Schedule(Protocol):
    """Occurrences of one task's schedule."""

    @property
    def kind(self) -> str:
        """``once``, ``cron`` or ``rrule``."""
        ...

    def occurrences_after(self, instant: datetime) -> Iterator[datetime]:
        """Occurrences strictly after ``instant`` (aware, UTC), ascending."""
        ...

    def next_after(self, instant: datetime) -> datetime | None:
        """The first occurrence strictly after ``instant``, or ``None``."""
        ...
