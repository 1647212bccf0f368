"""``rrule``: RFC 5545 recurrence rules and recurrence sets, exact across DST.

Accepted input (lines separated by newlines or spaces; folded lines are unfolded):

- a bare rule: ``FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0``;
- an ``RRULE:`` line;
- a recurrence set: ``DTSTART`` (``;TZID=Zone:19970902T090000``, ``:19970902T090000Z``,
  floating ``:19970902T090000`` or ``;VALUE=DATE:19970902``), any number of ``RRULE``,
  ``RDATE`` and ``EXDATE`` lines (values comma-separated, optionally with ``TZID``).

How it is evaluated:

- Rules are expanded by python-dateutil in **naive wall-clock time** of the recurrence's
  zone: the DTSTART's ``TZID``, UTC for a ``Z`` DTSTART, else the task's zone. Without a
  DTSTART the task's anchor (creation time truncated to the minute) is used.
- Each local occurrence becomes an instant by RFC 5545 3.3.5: a time in a DST gap is
  shifted forward by the gap (02:30 → 03:30), an ambiguous time is its first instant.
  Instants that coincide (an HOURLY rule through a gap) count once, also toward COUNT,
  which is therefore applied here and not by dateutil; UNTIL (UTC, or local when written
  without ``Z``, a date meaning the end of that day) bounds instants, inclusively.
- The set is the union of the rules' and RDATE instants minus the EXDATE instants. A
  DTSTART that the rules do not produce is not itself an occurrence (RFC 5545 leaves that
  case undefined), except in a set without any RRULE, where DTSTART is the first instance.

Speed: a rule without COUNT is re-anchored to the period just before the instant asked
about (every derived BYxxx default made explicit first, the INTERVAL phase preserved), so
asking for the next occurrence of a years-old MINUTELY rule does not replay every minute
since its DTSTART. A rule with COUNT (at most :data:`MAX_COUNT`) expands from its start
once, lazily, and is cached. A rule whose day filters can never all hold (``BYMONTH=2;
BYMONTHDAY=30``) is recognised by a bounded search over one 400-year Gregorian cycle.

Sharing across anchors (:func:`anchor_signature`): a rule without DTSTART or COUNT depends
on its anchor only through the defaults derived from it and the INTERVAL's phase, so the
scheduler can expand a million such tasks with a few thousand parsed schedules.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from dateutil import rrule as du

from engine.schedules.wallclock import (
    EXPANSION_END_YEAR,
    check_year,
    is_nonexistent,
    offset_slack,
    to_instant,
    to_local,
)
from engine.timezones import UnknownTimezone, get_zone

MAX_COUNT = 100_000
MAX_LINES = 100
MAX_DATES = 1000
GREGORIAN_CYCLE_YEARS = 400

FREQUENCIES = {
    "YEARLY": du.YEARLY,
    "MONTHLY": du.MONTHLY,
    "WEEKLY": du.WEEKLY,
    "DAILY": du.DAILY,
    "HOURLY": du.HOURLY,
    "MINUTELY": du.MINUTELY,
    "SECONDLY": du.SECONDLY,
}
WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
RULE_PARTS = (
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
)
# name → (dateutil keyword, lowest, highest, negative values allowed)
INT_LISTS = {
    "BYSECOND": ("bysecond", 0, 59, False),
    "BYMINUTE": ("byminute", 0, 59, False),
    "BYHOUR": ("byhour", 0, 23, False),
    "BYMONTHDAY": ("bymonthday", 1, 31, True),
    "BYYEARDAY": ("byyearday", 1, 366, True),
    "BYWEEKNO": ("byweekno", 1, 53, True),
    "BYMONTH": ("bymonth", 1, 12, False),
    "BYSETPOS": ("bysetpos", 1, 366, True),
}
DAY_FILTERS = ("bymonth", "bymonthday", "byyearday", "byweekno", "byweekday")
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATE_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)$")
_CONTENT_LINE = re.compile(r'^([A-Za-z-]+)((?:;[A-Za-z-]+=(?:"[^"]*"|[^:;"]*))*):(.*)$')


class RRuleSyntaxError(ValueError):
    """The recurrence is not valid RFC 5545; the message says where and why."""


@dataclass(frozen=True)
class _Value:
    """A DATE or DATE-TIME value: naive wall-clock time, and whether it was UTC or a date."""

    local: datetime
    utc: bool = False
    is_date: bool = False


def _parse_value(text: str, what: str, *, value_type: str | None = None) -> _Value:
    text = text.strip().upper()
    if match := _DATE.match(text):
        if value_type == "DATE-TIME":
            raise RRuleSyntaxError(f"{what}: {text!r} is a date but VALUE=DATE-TIME was given")
        return _Value(_datetime(match.groups(), what, text), is_date=True)
    if match := _DATE_TIME.match(text):
        if value_type == "DATE":
            raise RRuleSyntaxError(f"{what}: {text!r} has a time but VALUE=DATE was given")
        groups = match.groups()
        return _Value(_datetime(groups[:6], what, text), utc=groups[6] == "Z")
    raise RRuleSyntaxError(
        f"{what}: {text!r} is not an RFC 5545 date (19970902) or date-time "
        "(19970902T090000, 19970902T090000Z)"
    )


def _datetime(parts: tuple[str, ...], what: str, text: str) -> datetime:
    numbers = [int(p) for p in parts] + [0, 0, 0]
    try:
        value = datetime(numbers[0], numbers[1], numbers[2], numbers[3], numbers[4], numbers[5])
        check_year(value, what)
    except ValueError as exc:
        raise RRuleSyntaxError(f"{what}: {text!r} is not a valid date ({exc})") from None
    return value


@dataclass(frozen=True)
class _Until:
    """UNTIL: an instant, or a local time to be read in the recurrence's zone."""

    value: _Value


@dataclass(frozen=True)
class RuleSpec:
    """One parsed RRULE value: dateutil keywords without COUNT and UNTIL."""

    freq: int
    options: dict[str, Any]
    count: int | None = None
    until: _Until | None = None


def parse_rule(text: str) -> RuleSpec:
    """Parse the value of an RRULE (``FREQ=...;...``); raises :class:`RRuleSyntaxError`."""
    parts: dict[str, str] = {}
    for item in text.strip().strip(";").split(";"):
        name, equals, value = item.partition("=")
        name = name.strip().upper()
        if not equals or not value.strip():
            raise RRuleSyntaxError(f"rule part {item!r} is not NAME=VALUE")
        if name not in RULE_PARTS:
            raise RRuleSyntaxError(f"unknown rule part {name!r} (known: {', '.join(RULE_PARTS)})")
        if name in parts:
            raise RRuleSyntaxError(f"rule part {name} appears twice")
        parts[name] = value.strip().upper()
    if "FREQ" not in parts:
        raise RRuleSyntaxError("FREQ is required (e.g. FREQ=DAILY)")
    if parts["FREQ"] not in FREQUENCIES:
        raise RRuleSyntaxError(f"FREQ must be one of {', '.join(FREQUENCIES)}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RRuleSyntaxError("COUNT and UNTIL cannot both be given (RFC 5545)")
    freq = FREQUENCIES[parts["FREQ"]]
    options: dict[str, Any] = {"wkst": WEEKDAYS[_weekday_name(parts.get("WKST", "MO"), "WKST")]}
    options["interval"] = _integer(parts.get("INTERVAL", "1"), "INTERVAL", 1, 1_000_000)
    for name, (keyword, low, high, negative) in INT_LISTS.items():
        if name in parts:
            options[keyword] = _integers(parts[name], name, low, high, negative)
    if "BYDAY" in parts:
        options["byweekday"] = _byday(parts["BYDAY"], freq, "BYWEEKNO" in parts)
    _check_combinations(parts, freq)
    count = _integer(parts["COUNT"], "COUNT", 1, MAX_COUNT) if "COUNT" in parts else None
    until = _Until(_parse_value(parts["UNTIL"], "UNTIL")) if "UNTIL" in parts else None
    return RuleSpec(freq, options, count, until)


def _check_combinations(parts: dict[str, str], freq: int) -> None:
    """The MUST NOTs of RFC 5545 3.3.10."""
    name = next(k for k, v in FREQUENCIES.items() if v == freq)
    if "BYWEEKNO" in parts and freq != du.YEARLY:
        raise RRuleSyntaxError("BYWEEKNO is only allowed with FREQ=YEARLY")
    if "BYYEARDAY" in parts and freq in (du.MONTHLY, du.WEEKLY, du.DAILY):
        raise RRuleSyntaxError(f"BYYEARDAY is not allowed with FREQ={name}")
    if "BYMONTHDAY" in parts and freq == du.WEEKLY:
        raise RRuleSyntaxError("BYMONTHDAY is not allowed with FREQ=WEEKLY")
    if "BYSETPOS" in parts and not any(p.startswith("BY") and p != "BYSETPOS" for p in parts):
        raise RRuleSyntaxError("BYSETPOS needs another BYxxx rule part")


def _integer(text: str, name: str, low: int, high: int) -> int:
    if not text.isdigit():
        raise RRuleSyntaxError(f"{name} must be a whole number, not {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise RRuleSyntaxError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _integers(text: str, name: str, low: int, high: int, negative: bool) -> tuple[int, ...]:
    values = []
    for item in text.split(","):
        digits = item.lstrip("+-")
        sign = -1 if item.startswith("-") else 1
        if not digits.isdigit() or (sign < 0 and not negative):
            allowed = f"±{low}..{high}" if negative else f"{low}..{high}"
            raise RRuleSyntaxError(f"{name}: {item!r} is not a number in {allowed}")
        value = int(digits)
        if not low <= value <= high:
            allowed = f"±{low}..±{high}" if negative else f"{low}..{high}"
            raise RRuleSyntaxError(f"{name}: {sign * value} is out of range {allowed}")
        values.append(sign * value)
    return tuple(values)


def _weekday_name(text: str, what: str) -> str:
    if text not in WEEKDAYS:
        raise RRuleSyntaxError(f"{what}: {text!r} is not a weekday (MO, TU, ... SU)")
    return text


def _byday(text: str, freq: int, has_weekno: bool) -> tuple[du.weekday, ...]:
    days = []
    for item in text.split(","):
        match = _BYDAY.match(item)
        if not match:
            raise RRuleSyntaxError(f"BYDAY: {item!r} is not a weekday such as MO, 1FR or -1SU")
        ordinal = int(match.group(1)) if match.group(1) else None
        if ordinal is not None:
            if not 1 <= abs(ordinal) <= 53:
                raise RRuleSyntaxError(f"BYDAY: ordinal {ordinal} is out of range ±1..±53")
            if freq not in (du.MONTHLY, du.YEARLY):
                raise RRuleSyntaxError("BYDAY ordinals (1MO, -1FR) need FREQ=MONTHLY or YEARLY")
            if freq == du.YEARLY and has_weekno:
                raise RRuleSyntaxError("BYDAY ordinals are not allowed together with BYWEEKNO")
        day = du.weekdays[WEEKDAYS[match.group(2)]]
        days.append(day(ordinal) if ordinal is not None else day)
    return tuple(days)


_EVERY = tuple(range(60))


def coarsened(freq: int, options: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """An equivalent rule at the coarsest frequency its BYHOUR/BYMINUTE/BYSECOND allow.

    dateutil steps through every candidate of the rule's frequency, so ``FREQ=SECONDLY;
    BYHOUR=23;BYMINUTE=59;BYSECOND=59`` with rare days (``BYMONTH=2;BYMONTHDAY=29;BYDAY=MO``)
    walks through decades of seconds (minutes of CPU) where ``FREQ=DAILY`` with the same
    parts walks through days. With INTERVAL=1 and no BYSETPOS both produce the same
    instants: a finer frequency's unrestricted units become explicit full lists.
    """
    if options["interval"] != 1 or "bysetpos" in options or freq < du.HOURLY:
        return freq, options
    if "byhour" in options:
        target = du.DAILY
    elif "byminute" in options:
        target = du.HOURLY
    elif "bysecond" in options:
        target = du.MINUTELY
    else:
        return freq, options
    if target >= freq:
        return freq, options
    equivalent = dict(options)
    if freq >= du.MINUTELY and target < du.MINUTELY:
        equivalent.setdefault("byminute", _EVERY)
    if freq == du.SECONDLY:
        equivalent.setdefault("bysecond", _EVERY)
    return target, equivalent


# Day filters that can put matching days years apart (a leap day that is a Monday: 28).
_CALENDAR_FILTERS = ("bymonth", "bymonthday", "byyearday", "byweekno")


def _check_affordable(freq: int, options: dict[str, Any]) -> None:
    """Refuse what :func:`coarsened` cannot rewrite and dateutil cannot afford: a SECONDLY
    or MINUTELY rule with an INTERVAL or BYSETPOS, filtered by a coarser time unit, on
    calendar-filtered days. dateutil steps through every second or minute of the days
    between matches, which can lie decades apart (a leap day that is a Monday), or never
    come when the INTERVAL misses the filters (55 s of CPU to learn that). Weekday-only
    filters keep matches within a week, which stays cheap."""
    finer_than_filter = (
        freq == du.SECONDLY and ("byhour" in options or "byminute" in options)
    ) or (freq == du.MINUTELY and "byhour" in options)
    if finer_than_filter and any(k in options for k in _CALENDAR_FILTERS):
        raise RRuleSyntaxError(
            "too costly to evaluate: FREQ=SECONDLY or MINUTELY with INTERVAL or BYSETPOS, a "
            "coarser BYHOUR/BYMINUTE and BYMONTH/BYMONTHDAY/BYYEARDAY; use a coarser FREQ "
            "(e.g. FREQ=DAILY with BYHOUR, BYMINUTE and BYSECOND)"
        )


def _explicit_options(freq: int, dtstart: datetime, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the defaults dateutil would derive from DTSTART made explicit, so
    that a rule re-anchored on another DTSTART keeps producing the same occurrences."""
    explicit = dict(options)
    if not any(k in options for k in ("byweekno", "byyearday", "bymonthday", "byweekday")):
        if freq == du.YEARLY:
            explicit.setdefault("bymonth", (dtstart.month,))
            explicit["bymonthday"] = (dtstart.day,)
        elif freq == du.MONTHLY:
            explicit["bymonthday"] = (dtstart.day,)
        elif freq == du.WEEKLY:
            explicit["byweekday"] = (du.weekdays[dtstart.weekday()],)
    if freq < du.HOURLY:
        explicit.setdefault("byhour", (dtstart.hour,))
    if freq < du.MINUTELY:
        explicit.setdefault("byminute", (dtstart.minute,))
    if freq < du.SECONDLY:
        explicit.setdefault("bysecond", (dtstart.second,))
    return explicit


def _period_start(
    freq: int, interval: int, dtstart: datetime, wkst: int, target: datetime
) -> datetime:
    """The start of the latest period of the rule (counting from DTSTART's period in steps
    of INTERVAL) that begins at or before ``target``; DTSTART itself when that is the
    first period."""
    if freq == du.YEARLY:
        steps = (target.year - dtstart.year) // interval
        return dtstart if steps <= 0 else datetime(dtstart.year + steps * interval, 1, 1)
    if freq == du.MONTHLY:
        first = dtstart.year * 12 + dtstart.month - 1
        steps = (target.year * 12 + target.month - 1 - first) // interval
        index = first + steps * interval
        return dtstart if steps <= 0 else datetime(index // 12, index % 12 + 1, 1)
    if freq == du.WEEKLY:
        week = dtstart.date() - timedelta(days=(dtstart.weekday() - wkst) % 7)
        steps = (target.date() - week).days // 7 // interval
        return dtstart if steps <= 0 else _midnight(week + timedelta(weeks=steps * interval))
    if freq == du.DAILY:
        steps = (target.date() - dtstart.date()).days // interval
        return (
            dtstart if steps <= 0 else _midnight(dtstart.date() + timedelta(days=steps * interval))
        )
    unit = {du.HOURLY: 3600, du.MINUTELY: 60, du.SECONDLY: 1}[freq]
    base = dtstart.replace(
        minute=dtstart.minute if unit < 3600 else 0, second=dtstart.second if unit < 60 else 0
    )
    steps = int((target - base).total_seconds()) // (unit * interval)
    return dtstart if steps <= 0 else base + timedelta(seconds=steps * unit * interval)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


@dataclass
class RuleExpansion:
    """One RRULE anchored on a DTSTART in a zone: its occurrences as sorted instants."""

    spec: RuleSpec
    dtstart: datetime
    zone: tzinfo
    freq: int = field(init=False)  # the spec's, or a coarser equivalent (see coarsened)
    options: dict[str, Any] = field(init=False)
    until: datetime | None = field(init=False)
    possible: bool = field(init=False)
    _counted: _CountedInstants | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.freq, options = coarsened(self.spec.freq, self.spec.options)
        _check_affordable(self.freq, options)
        self.options = _explicit_options(self.freq, self.dtstart, options)
        self.until = _until_instant(self.spec.until, self.zone)
        try:
            self._rule(self.dtstart)
        except ValueError as exc:  # dateutil's own checks (e.g. an unreachable BYHOUR)
            raise RRuleSyntaxError(str(exc)) from None
        self.possible = _days_can_match(self.options)

    def _rule(self, dtstart: datetime) -> du.rrule:
        # dateutil stops at the first local candidate past this; the exact (instant) bound
        # is applied afterwards. A day of margin covers any UTC offset.
        until_hint = datetime(EXPANSION_END_YEAR, 1, 1)
        if self.until is not None:
            until_hint = to_local(self.until, self.zone) + timedelta(days=1)
        return du.rrule(
            self.freq,  # type: ignore[arg-type]  # one of dateutil's frequency ints
            dtstart=dtstart,
            until=until_hint,
            **self.options,
        )

    def instants_after(self, instant: datetime) -> Iterator[datetime]:
        """Occurrences strictly after ``instant``, ascending, each once."""
        if not self.possible or (self.until is not None and instant >= self.until):
            return iter(())
        if self.spec.count is not None:
            if self._counted is None:
                self._counted = _CountedInstants(
                    self._local_times(self.dtstart), self.zone, self.spec.count
                )
            return self._counted.after(instant)
        target = to_local(instant, self.zone) - offset_slack(instant, self.zone)
        # Re-anchored on the *written* frequency's period (INTERVAL is 1 whenever the two
        # differ, and the options are explicit): a coarsened SECONDLY rule then starts at the
        # second asked about, not at midnight with a day of earlier instants to skip.
        start = _period_start(
            self.spec.freq, self.options["interval"], self.dtstart, self.options["wkst"], target
        )
        return _sorted_instants(
            self._local_times(start), self.zone, after=instant, until=self.until
        )

    def names_local(self, local: datetime) -> bool:
        """Whether the rule's pattern names the wall-clock time ``local`` (before any DST
        shift; COUNT and UNTIL aside): how a preview tells that a gap moved an occurrence."""
        if not self.possible:
            return False
        start = _period_start(
            self.spec.freq, self.options["interval"], self.dtstart, self.options["wkst"], local
        )
        for candidate in self._local_times(start):
            if candidate >= local:
                return candidate == local
        return False

    def _local_times(self, start: datetime) -> Iterator[datetime]:
        try:
            yield from self._rule(start)
        except ValueError:
            # dateutil found no reachable value (an INTERVAL that never meets BYHOUR...):
            # the rule has nothing more to give.
            return


def _until_instant(until: _Until | None, zone: tzinfo) -> datetime | None:
    if until is None:
        return None
    value = until.value
    if value.utc:
        return value.local.replace(tzinfo=UTC)
    if value.is_date:  # a date bounds the whole day, in the recurrence's zone
        return to_instant(value.local + timedelta(days=1), zone) - timedelta(microseconds=1)
    return to_instant(value.local, zone)


def _sorted_instants(
    locals_: Iterator[datetime], zone: tzinfo, *, after: datetime, until: datetime | None
) -> Iterator[datetime]:
    """Instants of ascending local times, sorted and deduplicated.

    The mapping is monotonic except for gap times, which RFC 5545 shifts forward by the gap
    and which can therefore land after the next few valid times: they wait in a heap until
    a valid (non-gap) time proves that nothing earlier can follow.
    """
    pending: list[datetime] = []
    last = after
    for local in locals_:
        at = to_instant(local, zone)
        gap = is_nonexistent(local, zone)
        if not gap and until is not None and at > until:
            break
        if until is None or at <= until:
            heapq.heappush(pending, at)
        if gap:
            continue
        while pending and pending[0] <= at:
            first = heapq.heappop(pending)
            if first > last:
                last = first
                yield first
    while pending:
        first = heapq.heappop(pending)
        if first > last:
            last = first
            yield first


class _CountedInstants:
    """The first ``count`` distinct instants of a rule (RFC 5545 counts occurrences in
    recurrence order), expanded lazily from DTSTART and kept sorted."""

    def __init__(self, locals_: Iterator[datetime], zone: tzinfo, count: int) -> None:
        self._locals = locals_
        self._zone = zone
        self._count = count
        self._seen: set[datetime] = set()
        self._sorted: list[datetime] = []
        # The latest instant of a non-gap local time produced so far: nothing produced
        # later can be earlier than it.
        self._frontier: datetime | None = None
        self._done = False

    def after(self, instant: datetime) -> Iterator[datetime]:
        current = instant
        while True:
            self._extend_past(current)
            position = bisect.bisect_right(self._sorted, current)
            if position >= len(self._sorted):
                return
            current = self._sorted[position]
            yield current

    def _extend_past(self, instant: datetime) -> None:
        """Expand until a non-gap occurrence lies beyond ``instant``: everything expanded
        later is later still, so the first known instant after ``instant`` is final."""
        while not self._done and (self._frontier is None or self._frontier <= instant):
            self._step()

    def _step(self) -> None:
        local = next(self._locals, None)
        if local is None or len(self._seen) >= self._count:
            self._done = True
            return
        at = to_instant(local, self._zone)
        if at not in self._seen:
            self._seen.add(at)
            bisect.insort(self._sorted, at)
        if not is_nonexistent(local, self._zone):
            self._frontier = at if self._frontier is None else max(self._frontier, at)
        if len(self._seen) >= self._count:
            self._done = True


def _days_can_match(options: dict[str, Any]) -> bool:
    """Whether any day satisfies the rule's day filters, ignoring BYDAY ordinals (a
    necessary condition): a YEARLY rule with the same filters, searched over one Gregorian
    cycle, after which the calendar repeats."""
    filters = {k: options[k] for k in DAY_FILTERS if k in options}
    if not filters:
        return True
    if "byweekday" in filters:
        filters["byweekday"] = tuple({du.weekdays[d.weekday] for d in filters["byweekday"]})
    probe = du.rrule(
        du.YEARLY,
        dtstart=datetime(2000, 1, 1),
        until=datetime(2000 + GREGORIAN_CYCLE_YEARS, 1, 1),
        byhour=0,
        byminute=0,
        bysecond=0,
        wkst=options["wkst"],
        **filters,
    )
    return next(iter(probe), None) is not None


@dataclass(frozen=True)
class RRuleSchedule:
    """A recurrence set in a zone: rules, extra dates, exceptions."""

    zone: tzinfo
    dtstart: datetime  # naive wall-clock time in ``zone``
    rules: tuple[RuleExpansion, ...]
    rdates: tuple[datetime, ...]  # sorted instants
    exdates: frozenset[datetime]
    kind: str = "rrule"

    def occurrences_after(self, instant: datetime) -> Iterator[datetime]:
        streams: list[Iterator[datetime]] = [rule.instants_after(instant) for rule in self.rules]
        streams.append(iter(self.rdates[bisect.bisect_right(self.rdates, instant) :]))
        last = instant
        for at in heapq.merge(*streams):
            if at > last and at not in self.exdates:
                last = at
                yield at

    def next_after(self, instant: datetime) -> datetime | None:
        return next(self.occurrences_after(instant), None)


def parse_rrule_schedule(text: str, zone: tzinfo, *, anchor: datetime) -> RRuleSchedule:
    """Parse a bare rule, an ``RRULE:`` line or a recurrence set; raises
    :class:`RRuleSyntaxError` (a ``ValueError``) naming the problem.

    ``zone`` is the task's zone; ``anchor`` (aware) is the DTSTART used when none is given.
    """
    lines = _content_lines(text)
    dtstart_line = [line for line in lines if line[0] == "DTSTART"]
    if len(dtstart_line) > 1:
        raise RRuleSyntaxError("DTSTART appears more than once")
    if dtstart_line:
        _, params, value = dtstart_line[0]
        zone, start = _dtstart(params, value, zone)
        explicit_start = True
    else:
        start = to_local(anchor, zone).replace(second=0, microsecond=0)
        explicit_start = False
    rules: list[RuleExpansion] = []
    rdates: set[datetime] = set()
    exdates: set[datetime] = set()
    for name, params, value in lines:
        if name == "RRULE":
            rules.append(RuleExpansion(parse_rule(value), start, zone))
        elif name in ("RDATE", "EXDATE"):
            target = rdates if name == "RDATE" else exdates
            target.update(_date_list(name, params, value, zone))
    if not rules and explicit_start:
        rdates.add(to_instant(start, zone))  # RFC 5545: DTSTART is the first instance
    if not rules and not rdates:
        raise RRuleSyntaxError("no RRULE or RDATE: nothing would ever run")
    if len(rdates) > MAX_DATES:
        raise RRuleSyntaxError(f"at most {MAX_DATES} RDATE values")
    return RRuleSchedule(zone, start, tuple(rules), tuple(sorted(rdates)), frozenset(exdates))


def _content_lines(text: str) -> list[tuple[str, dict[str, str], str]]:
    unfolded = re.sub(r"\r?\n[ \t]", "", text).strip()
    if not unfolded:
        raise RRuleSyntaxError("empty recurrence")
    tokens = unfolded.split()
    if all(":" not in token for token in tokens):
        return [("RRULE", {}, "".join(tokens))]  # a bare rule
    if len(tokens) > MAX_LINES:
        raise RRuleSyntaxError(f"at most {MAX_LINES} lines")
    lines = []
    for token in tokens:
        match = _CONTENT_LINE.match(token)
        if not match:
            raise RRuleSyntaxError(f"line {token!r} is not NAME[;PARAM=VALUE]:VALUE")
        name = match.group(1).upper()
        if name == "EXRULE":
            raise RRuleSyntaxError("EXRULE is deprecated by RFC 5545 and not supported; use EXDATE")
        if name not in ("DTSTART", "RRULE", "RDATE", "EXDATE"):
            raise RRuleSyntaxError(
                f"unexpected line {name!r} (expected DTSTART, RRULE, RDATE or EXDATE)"
            )
        params = {}
        for param in filter(None, match.group(2).split(";")):
            key, _, value = param.partition("=")
            params[key.upper()] = value.strip('"')
        lines.append((name, params, match.group(3)))
    return lines


def _zone_param(params: dict[str, str], what: str, default: tzinfo) -> tzinfo:
    if "TZID" not in params:
        return default
    try:
        return get_zone(params["TZID"])
    except UnknownTimezone as exc:
        raise RRuleSyntaxError(f"{what}: {exc}") from None


def _dtstart(params: dict[str, str], text: str, zone: tzinfo) -> tuple[tzinfo, datetime]:
    value = _parse_value(text, "DTSTART", value_type=params.get("VALUE"))
    if value.utc:
        if "TZID" in params:
            raise RRuleSyntaxError("DTSTART: a UTC value (Z) cannot also have a TZID")
        return UTC, value.local
    return _zone_param(params, "DTSTART", zone), value.local


def _date_list(name: str, params: dict[str, str], text: str, zone: tzinfo) -> list[datetime]:
    if params.get("VALUE") == "PERIOD":
        raise RRuleSyntaxError(f"{name}: PERIOD values are not supported")
    zone = _zone_param(params, name, zone)
    values = [_parse_value(item, name, value_type=params.get("VALUE")) for item in text.split(",")]
    if len(values) > MAX_DATES:
        raise RRuleSyntaxError(f"{name}: at most {MAX_DATES} values")
    return [
        value.local.replace(tzinfo=UTC) if value.utc else to_instant(value.local, zone)
        for value in values
    ]


def anchor_signature(text: str, zone: tzinfo, anchor: datetime) -> tuple[object, ...] | None:
    """What of ``anchor`` (aware: a task's creation minute) the recurrence ``text`` in
    ``zone`` depends on; raises :class:`RRuleSyntaxError` like the parser.

    ``()`` when the text has its own DTSTART (the anchor is not used). ``None`` when a rule
    has a COUNT (counted from the anchor: all of it matters). Otherwise, per rule, the
    defaults derived from the anchor (BYHOUR of a DAILY rule, …) and, with an INTERVAL, the
    anchor's period modulo INTERVAL. Two anchors with equal signatures give the same
    occurrences from the later anchor on, except that a time in a DST gap just before the
    later anchor may be shifted past it: schedules may be shared for instants at least
    :data:`ANCHOR_MARGIN` after the later anchor.
    """
    rules = _anchored_rules(text)
    if rules is None:
        return ()
    start = to_local(anchor, zone).replace(second=0, microsecond=0)
    signature: list[object] = []
    for spec in rules:
        if spec.count is not None:
            return None
        signature.append(_rule_signature(spec, start))
    return tuple(signature)


# Longer than any DST (or date-line) gap: a gap time before an anchor lands within it.
ANCHOR_MARGIN = timedelta(days=2)


@functools.lru_cache(maxsize=4096)
def _anchored_rules(text: str) -> tuple[RuleSpec, ...] | None:
    """The rules of a recurrence without DTSTART (``None`` when it has one)."""
    lines = _content_lines(text)
    if any(name == "DTSTART" for name, _, _ in lines):
        return None
    return tuple(parse_rule(value) for name, _, value in lines if name == "RRULE")


def _rule_signature(spec: RuleSpec, start: datetime) -> tuple[object, ...]:
    # The same steps as RuleExpansion: the options it would make explicit from ``start``
    # and the phase _period_start would count from it.
    freq, options = coarsened(spec.freq, spec.options)
    explicit = _explicit_options(freq, start, options)
    derived = tuple(sorted((k, v) for k, v in explicit.items() if k not in options))
    interval = options["interval"]
    if interval == 1:
        return derived
    return (*derived, ("phase", _period_index(spec.freq, start, options["wkst"]) % interval))


def _period_index(freq: int, start: datetime, wkst: int) -> int:
    """The number of ``start``'s period (of ``freq``) counted from year 1."""
    if freq == du.YEARLY:
        return start.year
    if freq == du.MONTHLY:
        return start.year * 12 + start.month - 1
    if freq == du.WEEKLY:
        week = start.date() - timedelta(days=(start.weekday() - wkst) % 7)
        return week.toordinal() // 7
    if freq == du.DAILY:
        return start.toordinal()
    # _period_start's base: the hour, minute or second of start, in naive seconds.
    unit = {du.HOURLY: 3600, du.MINUTELY: 60, du.SECONDLY: 1}[freq]
    seconds = (start.toordinal() * 86400) + start.hour * 3600 + start.minute * 60 + start.second
    return seconds // unit
