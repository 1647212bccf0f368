"""``cron``: Vixie cron expressions, evaluated in the task's wall-clock time.

Five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or ``jan``-``dec``)
and day of week (0-7 or ``sun``-``sat``; 0 and 7 are Sunday). Each field is ``*`` or a
comma-separated list of ``N``, ``A-B``, ``*/S``, ``A-B/S`` or ``A/S`` (= ``A-max/S``). Names
are case-insensitive. ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily``
(``@midnight``) and ``@hourly`` are shorthands.

Day matching follows Vixie cron: when both day of month and day of week are restricted, a
day matches if **either** matches; a field that starts with ``*`` (also ``*/2``) counts as
unrestricted, and then both must match.

DST (DESIGN §6): a nonexistent local time runs once at the first valid instant after the
gap (02:30 → 03:00; several times in one gap collapse into one run); an ambiguous local time
runs once, at its first instant.

The search walks days, not minutes: months that cannot match are skipped whole, and within a
matching day only the listed hours and minutes are produced. An expression that can never
fire (``0 0 30 2 *``) is recognised without searching (:meth:`CronExpression.can_fire`).
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from engine.schedules.wallclock import (
    EXPANSION_END_YEAR,
    offset_slack,
    to_instant_cron,
    to_local,
)

SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTH_NAMES = {name.lower(): n for n, name in enumerate(calendar.month_abbr) if name}
DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    # name, low, high, names
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, MONTH_NAMES),
    ("day of week", 0, 7, DAY_NAMES),
)
# A matching day recurs at least once in 28 years unless the expression needs 29 February
# on a weekday across a non-leap century year; 400 years (one Gregorian cycle) is certain.
SEARCH_YEARS = 400
# Days in each month at most (29 February exists in leap years).
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class CronSyntaxError(ValueError):
    """The expression is not valid cron; the message says which field and why."""


@dataclass(frozen=True)
class CronExpression:
    """A parsed expression: the allowed values of each field (day of week 0-6, Sunday 0)."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_star: bool
    dow_star: bool

    def day_matches(self, day: date) -> bool:
        """Vixie's rule: both must match when either field starts with ``*``, else either."""
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def can_fire(self) -> bool:
        """Whether any day ever matches (every weekday falls on every date over the
        Gregorian cycle, so only day-of-month against month lengths can rule days out)."""
        if not (self.dom_star or self.dow_star):
            return True  # either field suffices, and every week has the listed weekdays
        return any(day <= MONTH_DAYS[month - 1] for month in self.months for day in self.days)

    def local_times(self, start: datetime) -> Iterator[datetime]:
        """Matching naive local times at or after ``start`` (minute precision), ascending,
        within :data:`SEARCH_YEARS`."""
        if not self.can_fire():
            return
        start = start.replace(second=0, microsecond=0, tzinfo=None, fold=0)
        day = start.date()
        last_year = min(start.year + SEARCH_YEARS, EXPANSION_END_YEAR)
        first = True
        while day.year <= last_year:
            if day.month not in self.months:
                day = _first_of_next_month(day)
                first = False
                continue
            if self.day_matches(day):
                yield from self._times_of(day, start if first else None)
            first = False
            day += timedelta(days=1)

    def _times_of(self, day: date, start: datetime | None) -> Iterator[datetime]:
        hours = self.hours
        if start is not None:
            hours = hours[bisect.bisect_left(hours, start.hour) :]
        for hour in hours:
            minutes = self.minutes
            if start is not None and hour == start.hour:
                minutes = minutes[bisect.bisect_left(minutes, start.minute) :]
            for minute in minutes:
                yield datetime(day.year, day.month, day.day, hour, minute)


def _first_of_next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def parse_cron(text: str) -> CronExpression:
    """Parse a 5-field expression or an ``@`` shorthand; raises :class:`CronSyntaxError`."""
    expr = text.strip()
    if expr.startswith("@"):
        if expr.lower() not in SHORTHANDS:
            raise CronSyntaxError(
                f"unknown shorthand {expr!r} (known: {', '.join(sorted(SHORTHANDS))})"
            )
        expr = SHORTHANDS[expr.lower()]
    parts = expr.split()
    if len(parts) != 5:
        raise CronSyntaxError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    values = [_parse_field(part, *spec) for part, spec in zip(parts, FIELDS, strict=True)]
    weekdays = frozenset(v % 7 for v in values[4])  # 7 is Sunday too
    return CronExpression(
        text=text.strip(),
        minutes=tuple(sorted(values[0])),
        hours=tuple(sorted(values[1])),
        days=frozenset(values[2]),
        months=frozenset(values[3]),
        weekdays=weekdays,
        dom_star=parts[2].startswith("*"),
        dow_star=parts[4].startswith("*"),
    )


def _parse_field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronSyntaxError(f"{name}: empty list item in {text!r}")
        values |= _parse_item(item, name, low, high, names)
    return values


def _parse_item(item: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        step = _number(step_text, name, 1, high - low + 1 if high > low else 1, {}, "step")
    if base == "*":
        first, last = low, high
    elif "-" in base:
        first_text, _, last_text = base.partition("-")
        first = _number(first_text, name, low, high, names)
        last = _number(last_text, name, low, high, names)
        if first > last:
            raise CronSyntaxError(f"{name}: range {base!r} runs backwards")
    else:
        first = _number(base, name, low, high, names)
        last = high if slash else first  # cronie's "A/S" means "A-max/S"
    return set(range(first, last + 1, step))


def _number(
    text: str, name: str, low: int, high: int, names: dict[str, int], what: str = "value"
) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        known = f" or a name ({', '.join(names)})" if names else ""
        raise CronSyntaxError(f"{name}: {what} {text!r} is not a number{known}")
    number = int(text)
    if not low <= number <= high:
        raise CronSyntaxError(f"{name}: {what} {number} is out of range {low}-{high}")
    return number


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression in a time zone: occurrences as UTC instants."""

    expression: CronExpression
    zone: tzinfo
    kind: str = field(default="cron")

    def occurrences_after(self, instant: datetime) -> Iterator[datetime]:
        # Start a little before the local time of ``instant``: around a DST change an
        # earlier wall-clock time can map to a later instant. The local→instant mapping
        # never goes backwards (gap times map to the transition), so deduplicating against
        # the last instant yielded is enough.
        start = to_local(instant, self.zone) - offset_slack(instant, self.zone)
        last = instant
        for local in self.expression.local_times(start):
            at = to_instant_cron(local, self.zone)
            if at > last:
                last = at
                yield at

    def next_after(self, instant: datetime) -> datetime | None:
        return next(self.occurrences_after(instant), None)


def parse_cron_schedule(text: str, zone: tzinfo) -> CronSchedule:
    """Parse ``text`` for ``zone``; raises :class:`CronSyntaxError` (a ``ValueError``)."""
    return CronSchedule(parse_cron(text), zone)
