"""Wall-clock (local) time to instants, with the DST policies of DESIGN §6."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def to_instant(local: datetime, zone: tzinfo) -> datetime:
    """The UTC instant of a naive local time, RFC 5545 3.3.5 style.

    An ambiguous time (DST overlap) is its first instant (``fold=0``); a nonexistent time
    (DST gap) is read with the offset before the gap, which shifts it forward by the gap's
    length (02:30 in a one-hour gap becomes 03:30).
    """
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)
