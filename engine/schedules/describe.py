"""A schedule in words: ``30 8 * * 1-5`` → "at 08:30 on Monday to Friday".

:func:`describe_schedule` covers cron (every field form, the ``@`` shorthands) and the
common RRULE shapes (a frequency with an interval, BYHOUR/BYMINUTE times, BYDAY weekdays or
ordinal weekdays, BYMONTHDAY, BYMONTH, COUNT, UNTIL). Anything it cannot say exactly —
BYSETPOS, BYWEEKNO, BYYEARDAY, several rules in one set, cron day fields combined in the
"both must match" way — answers ``None``, and callers show the expression itself: a
sentence that is only approximately right would be worse than none.

Pure: parses with the schedule modules and returns text; no zone is involved (the words
describe wall-clock times in the task's zone).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import datetime

from dateutil import rrule as du

from engine.schedules.cron import SHORTHANDS, CronExpression, parse_cron
from engine.schedules.rrule import RuleSpec, parse_rule
from engine.timezones import parse_iso_datetime

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = tuple(calendar.month_name)  # index 1..12
# At most this many distinct times of day are listed ("at 08:00, 12:00 and 17:00").
MAX_LISTED_TIMES = 6
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}


def describe_schedule(kind: str, expr: str, dtstart: datetime | None = None) -> str | None:
    """The schedule in words, or ``None`` when it cannot be said exactly (show ``expr``).

    ``dtstart``: an RRULE's effective start as naive wall-clock time (the schedule's
    ``dtstart``), which supplies the time and day a rule leaves to it."""
    try:
        if kind == "cron":
            return describe_cron(expr)
        if kind == "rrule":
            return describe_rrule(expr, dtstart)
        if kind == "once":
            return _describe_once(expr)
        if kind == "event":
            return f"when an event matching {expr.strip()} is published"
    except ValueError:
        return None
    return None


def describe_cron(text: str) -> str | None:
    """A cron expression in words (``None``: too irregular to say exactly)."""
    expression = parse_cron(text)
    fields = SHORTHANDS.get(text.strip().lower(), text).split()
    times = _cron_times(expression, fields[0], fields[1])
    days = _cron_days(expression)
    if times is None or days is None:
        return None
    months = _month_phrase(sorted(expression.months))
    if days == "every day" and not times.startswith("at "):
        days = ""
    if days.startswith("on day ") and months and len(expression.months) == 1:
        # "on 1 January" rather than "on day 1 of the month in January"
        day_list = _join([str(d) for d in sorted(expression.days)])
        days, months = f"on {day_list} {MONTHS[min(expression.months)]}", ""
    return " ".join(part for part in (times, days, months) if part)


def _cron_times(expression: CronExpression, minute_field: str, hour_field: str) -> str | None:
    minutes, hours = expression.minutes, expression.hours
    every_hour = len(hours) == 24
    minute_step = _step_of(minute_field, 60)
    if minute_step is not None:
        frequency = "every minute" if minute_step == 1 else f"every {minute_step} minutes"
        if every_hour:
            return frequency
        window = _hour_window(hours)
        return f"{frequency} {window}" if window else None
    if every_hour and len(minutes) <= MAX_LISTED_TIMES:
        return "every hour at " + _join([f":{m:02d}" for m in minutes])
    hour_step = _step_of(hour_field, 24)
    if len(minutes) == 1 and hour_step is not None:
        return f"every {hour_step} hours at :{minutes[0]:02d}"
    if len(minutes) * len(hours) <= MAX_LISTED_TIMES:
        return "at " + _join([f"{h:02d}:{m:02d}" for h in hours for m in minutes])
    return None


def _step_of(field: str, size: int) -> int | None:
    """N for ``*`` (1) and ``*/N`` fields that divide evenly (no uneven last gap)."""
    if field == "*":
        return 1
    if field.startswith("*/") and field[2:].isdigit():
        step = int(field[2:])
        return step if size % step == 0 else None
    return None


def _hour_window(hours: Sequence[int]) -> str | None:
    """``from 09:00 to 17:59`` for a contiguous range of hours."""
    if list(hours) != list(range(hours[0], hours[-1] + 1)):
        return None
    return f"from {hours[0]:02d}:00 to {hours[-1]:02d}:59"


def _cron_days(expression: CronExpression) -> str | None:
    all_days = len(expression.days) == 31
    all_weekdays = len(expression.weekdays) == 7
    if expression.dom_star and expression.dow_star:
        if not all_days and not all_weekdays:
            return None  # "*/2 ... 1": odd days that are Mondays — say it with the expression
        if not all_days:
            return _days_of_month(sorted(expression.days))
        return "every day" if all_weekdays else _weekday_phrase(_cron_weekdays(expression))
    if expression.dom_star:  # the day-of-week field alone restricts, unless "*/2"
        return None if not all_days else _weekday_phrase(_cron_weekdays(expression))
    if expression.dow_star:
        return None if not all_weekdays else _days_of_month(sorted(expression.days))
    return (
        f"{_days_of_month(sorted(expression.days))} "
        f"or {_weekday_phrase(_cron_weekdays(expression))}"
    )


def _cron_weekdays(expression: CronExpression) -> list[int]:
    """Monday = 0 (cron numbers Sunday 0)."""
    return sorted((day - 1) % 7 for day in expression.weekdays)


def _days_of_month(days: list[int]) -> str:
    if len(days) == 1:
        return f"on day {days[0]} of the month"
    return f"on days {_join([str(d) for d in days])} of the month"


def _weekday_phrase(weekdays: list[int]) -> str:
    """``on Monday to Friday``, ``on Monday, Wednesday and Friday`` (Monday = 0)."""
    if len(weekdays) >= 3 and weekdays == list(range(weekdays[0], weekdays[-1] + 1)):
        return f"on {DAY_NAMES[weekdays[0]]} to {DAY_NAMES[weekdays[-1]]}"
    return "on " + _join([DAY_NAMES[d] for d in weekdays])


def _month_phrase(months: list[int]) -> str:
    if len(months) == 12:
        return ""
    if len(months) >= 3 and months == list(range(months[0], months[-1] + 1)):
        return f"in {MONTHS[months[0]]} to {MONTHS[months[-1]]}"
    return "in " + _join([MONTHS[m] for m in months])


def _join(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


UNITS = {
    du.YEARLY: "year",
    du.MONTHLY: "month",
    du.WEEKLY: "week",
    du.DAILY: "day",
    du.HOURLY: "hour",
    du.MINUTELY: "minute",
    du.SECONDLY: "second",
}
SUB_DAILY = (du.HOURLY, du.MINUTELY, du.SECONDLY)
UNSAID_PARTS = ("bysetpos", "byweekno", "byyearday", "bysecond")


def describe_rrule(text: str, dtstart: datetime | None = None) -> str | None:
    """A single RRULE (bare, or an ``RRULE:`` line, optionally with a DTSTART) in words.

    ``dtstart`` (naive wall-clock time) supplies what the rule leaves to its start: the time
    of day, a weekly rule's weekday, a monthly rule's day. Without it such a rule is ``None``.
    """
    lines = [line.strip() for line in text.replace(" ", "\n").splitlines() if line.strip()]
    rules = [line for line in lines if not line.upper().startswith("DTSTART")]
    if len(rules) != 1:
        return None  # RDATE/EXDATE or several rules: the expression says it best
    rule = rules[0]
    if rule.upper().startswith("RRULE:"):
        rule = rule[len("RRULE:") :]
    spec = parse_rule(rule)
    if any(part in spec.options for part in UNSAID_PARTS):
        return None
    if spec.freq in SUB_DAILY:
        words: list[str | None] = [_sub_daily(spec), _rrule_days(spec, None)]
    elif spec.options["interval"] > 1:  # "every 2 weeks on Monday at 09:00"
        words = [_rrule_every(spec), _rrule_days(spec, dtstart), _rrule_times(spec, dtstart)]
    else:  # "at 09:00 on Monday", like cron
        words = [_rrule_times(spec, dtstart), _rrule_days(spec, dtstart)]
    if any(word is None for word in words):
        return None
    return " ".join(word for word in words if word) + _rrule_end(spec)


def _sub_daily(spec: RuleSpec) -> str | None:
    if "byhour" in spec.options or "byminute" in spec.options:
        return None
    interval, unit = spec.options["interval"], UNITS[spec.freq]
    return f"every {unit}" if interval == 1 else f"every {interval} {unit}s"


def _rrule_every(spec: RuleSpec) -> str:
    """``every 2 weeks`` (an interval above 1)."""
    return f"every {spec.options['interval']} {UNITS[spec.freq]}s"


def _rrule_times(spec: RuleSpec, dtstart: datetime | None) -> str | None:
    hours = spec.options.get("byhour")
    minutes = spec.options.get("byminute")
    if hours is None or minutes is None:
        if dtstart is None:
            return None
        hours = hours if hours is not None else (dtstart.hour,)
        minutes = minutes if minutes is not None else (dtstart.minute,)
    return _times(hours, minutes)


def _times(hours: Sequence[int], minutes: Sequence[int]) -> str | None:
    if len(hours) * len(minutes) > MAX_LISTED_TIMES:
        return None
    return "at " + _join([f"{h:02d}:{m:02d}" for h in sorted(hours) for m in sorted(minutes)])


def _rrule_days(spec: RuleSpec, dtstart: datetime | None) -> str | None:
    """The day part; a rule that leaves its day to DTSTART takes it from ``dtstart``."""
    options = spec.options
    weekdays, monthdays, months = (options.get(k) for k in ("byweekday", "bymonthday", "bymonth"))
    if weekdays is not None and monthdays is not None:
        return None  # both must hold ("Friday the 13th"): the expression says it best
    if monthdays is not None and any(day < 0 for day in monthdays):
        return None
    daily = spec.freq == du.DAILY and options["interval"] == 1
    if spec.freq in SUB_DAILY or spec.freq == du.DAILY:
        words = _day_words(weekdays, monthdays, months)
        if words is None or not daily or weekdays is not None or monthdays is not None:
            return words
        return "every day" + (f" {words}" if words else "")
    if weekdays is None and monthdays is None:
        if dtstart is None:
            return None
        if spec.freq == du.WEEKLY:
            weekdays = (du.weekdays[dtstart.weekday()],)
        elif spec.freq == du.MONTHLY or months is not None:
            monthdays = (dtstart.day,)
        else:
            monthdays, months = (dtstart.day,), (dtstart.month,)
    return _day_words(weekdays, monthdays, months)


def _day_words(
    weekdays: Sequence[du.weekday] | None,
    monthdays: Sequence[int] | None,
    months: Sequence[int] | None,
) -> str | None:
    if monthdays is not None and months is not None and len(months) == 1:
        return f"on {_join([str(d) for d in sorted(monthdays)])} {MONTHS[months[0]]}"
    parts: list[str] = []
    if weekdays is not None:
        phrase = _rrule_weekdays(weekdays)
        if phrase is None:
            return None
        parts.append(phrase)
    if monthdays is not None:
        parts.append(_days_of_month(sorted(monthdays)))
    if months is not None:
        parts.append(_month_phrase(sorted(months)))
    return " ".join(parts)


def _rrule_weekdays(weekdays: Sequence[du.weekday]) -> str | None:
    ordinals = {day.n for day in weekdays}
    if ordinals == {None}:
        return _weekday_phrase(sorted({day.weekday for day in weekdays}))
    if len(weekdays) == 1 and weekdays[0].n in ORDINALS:
        day = weekdays[0]
        return f"on the {ORDINALS[day.n]} {DAY_NAMES[day.weekday]} of the month"
    return None


def _rrule_end(spec: RuleSpec) -> str:
    if spec.count is not None:
        return ", once" if spec.count == 1 else f", {spec.count} times"
    if spec.until is not None:
        until = spec.until.value
        shown = until.local.strftime("%Y-%m-%d" if until.is_date else "%Y-%m-%d %H:%M")
        return f", until {shown}" + (" UTC" if until.utc else "")
    return ""


def _describe_once(expr: str) -> str:
    at: datetime = parse_iso_datetime(expr.strip())
    shown = at.strftime("%Y-%m-%d %H:%M")
    return f"once, at {shown}" + ("" if at.tzinfo is None else f" ({at.strftime('%z')})")
