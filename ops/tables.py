"""Text for people: aligned tables, key/value blocks, times in a zone, durations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from engine.timezones import get_zone

EMPTY = "-"
MAX_CELL = 48


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned on the widest cell (cells longer than :data:`MAX_CELL` are cut with
    an ellipsis); the header in capitals; an empty list says so."""
    if not rows:
        return "(none)"
    cells = [[_cut(cell) for cell in row] for row in rows]
    names = [header.upper() for header in headers]
    widths = [max(len(line[i]) for line in [names, *cells]) for i in range(len(names))]
    lines = [names, *cells]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def details(pairs: Sequence[tuple[str, str]]) -> str:
    """``key:  value`` lines, the values aligned."""
    width = max(len(key) for key, _ in pairs) + 1
    return "\n".join(f"{(key + ':').ljust(width)}  {value}" for key, value in pairs)


def _cut(cell: str) -> str:
    cell = " ".join(cell.split())  # one line per row
    return cell if len(cell) <= MAX_CELL else cell[: MAX_CELL - 1] + "…"


def when(moment: datetime | None, zone: str | None = None) -> str:
    """``2026-12-07 09:00:00 EET`` in ``zone`` (default: UTC); ``-`` for none."""
    if moment is None:
        return EMPTY
    local = moment.astimezone(get_zone(zone or "UTC"))
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or local.strftime("%z"))


def duration(milliseconds: float | None) -> str:
    """``850 ms``, ``3.2 s``, ``4 min 05 s``, ``2 h 03 min``; ``-`` for none."""
    if milliseconds is None:
        return EMPTY
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {second:02d} s"
    hours, minute = divmod(minutes, 60)
    return f"{hours} h {minute:02d} min"


def ago(moment: datetime, now: datetime) -> str:
    """How long before ``now``: ``4 s ago``, ``3 min 10 s ago``."""
    elapsed = max(now - moment, timedelta(0))
    return duration(elapsed.total_seconds() * 1000) + " ago"
