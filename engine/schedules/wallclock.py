"""Wall-clock (local) time to instants, with the DST policies of DESIGN §6.

A naive local time in a zone is one of three things:

- *normal*: exactly one instant;
- *ambiguous* (DST overlap, e.g. 01:30 on the night clocks go back): two instants. Every
  schedule kind runs it once, at its **first** instant (``fold=0``);
- *nonexistent* (DST gap, e.g. 02:30 on the night clocks go forward). RRULE and ``once``
  follow RFC 5545 3.3.5 and shift it forward by the gap's length (02:30 → 03:30,
  :func:`to_instant`); cron follows Vixie cron and runs it at the first valid instant after
  the gap, the transition itself (02:30 → 03:00, :func:`to_instant_cron`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

# Dates a schedule may name, and the last year expansion looks at: far enough from
# datetime's limits (years 1 and 9999) that converting between zones never overflows.
FIRST_YEAR = 1900
LAST_YEAR = 9000
EXPANSION_END_YEAR = 9900


def check_year(value: datetime, what: str) -> None:
    """Raise ``ValueError`` unless ``value`` lies within the supported years."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"{what}: the year must lie between {FIRST_YEAR} and {LAST_YEAR}")


def to_instant(local: datetime, zone: tzinfo) -> datetime:
    """The UTC instant of a naive local time, RFC 5545 3.3.5 style.

    An ambiguous time (DST overlap) is its first instant (``fold=0``); a nonexistent time
    (DST gap) is read with the offset before the gap, which shifts it forward by the gap's
    length (02:30 in a one-hour gap becomes 03:30).
    """
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def is_nonexistent(local: datetime, zone: tzinfo) -> bool:
    """True when ``local`` falls into a DST gap (the clock skips it)."""
    instant = to_instant(local, zone)
    return instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None, fold=0)


def to_instant_cron(local: datetime, zone: tzinfo) -> datetime:
    """The UTC instant of a naive local time, Vixie cron style.

    Like :func:`to_instant`, except that a nonexistent time runs at the first valid instant
    after the gap (the transition), so every time inside one gap maps to the same instant.
    """
    instant = to_instant(local, zone)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None, fold=0):
        return instant
    return gap_end(local, zone)


def gap_end(local: datetime, zone: tzinfo) -> datetime:
    """The transition instant that ends the DST gap containing the nonexistent ``local``.

    Reading ``local`` with the offset after the gap (``fold=1``) gives an instant before the
    transition; reading it with the offset before (``fold=0``) one at or after it. The
    transition is found between the two by bisection to the second (zoneinfo does not
    expose transition times).
    """
    naive = local.replace(tzinfo=None)
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the transition
    high = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)  # at or after it
    after = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def to_local(instant: datetime, zone: tzinfo) -> datetime:
    """The naive wall-clock time of an aware ``instant`` in ``zone``."""
    return instant.astimezone(zone).replace(tzinfo=None)


def offset_slack(instant: datetime, zone: tzinfo) -> timedelta:
    """How far before ``to_local(instant)`` a local time can lie and still map to an instant
    after ``instant``: the drop of the UTC offset within a day around ``instant`` (zero on
    days without a transition), plus a minute of margin. Used to start a wall-clock search
    early enough around DST changes."""
    here = instant.astimezone(zone).utcoffset() or timedelta(0)
    lowest = here
    for hours in (-24, -12, 12, 24):
        offset = (instant + timedelta(hours=hours)).astimezone(zone).utcoffset() or timedelta(0)
        lowest = min(lowest, offset)
    return (here - lowest) + timedelta(minutes=1)
