"""Custom JMESPath functions for time arithmetic in templates.

Timestamps are ISO 8601 strings (``now`` in the context is one, in UTC; a timestamp without
an offset is taken as UTC). Results are ISO 8601 with the offset (``+00:00`` for UTC).

=============================================  ==============================================
function                                       result
=============================================  ==============================================
``add_seconds(ts, n)``                         ``ts`` plus ``n`` seconds (negative subtracts)
``add_duration(ts, 'P1DT2H')``                 ``ts`` plus an ISO 8601 duration: ``PnYnMnWnDT
                                               nHnMnS``, a leading ``-`` subtracts; years and
                                               months are calendar units (Jan 31 + P1M =
                                               Feb 28/29), the rest exact
``to_timezone(ts, 'Europe/Chisinau')``         the same instant with that zone's offset
``format_time(ts, '%Y-%m-%d')``                ``strftime`` formatting (in ``ts``'s offset)
``parse_time('05/03/2026 10:00', fmt)``        ``strptime`` parsing to ISO 8601 (UTC if the
                                               format has no ``%z``)
``start_of(ts, 'day')``                        the start of the ``minute``, ``hour``, ``day``,
                                               ``week`` (Monday), ``month`` or ``year``
                                               containing ``ts``, in ``ts``'s offset
``epoch_seconds(ts)``                          seconds since 1970-01-01T00:00:00Z
``from_epoch(n)``                              the ISO 8601 UTC timestamp of ``n`` seconds
``seconds_between(a, b)``                      ``b - a`` in seconds
=============================================  ==============================================

Wall-clock arithmetic in a zone: convert first, then add (``add_duration(to_timezone(now,
'Europe/Chisinau'), 'P1D')`` keeps the offset ``now`` had in that zone; convert again with
``to_timezone`` when a DST change may lie in between). Every function raises ``ValueError``
on a bad argument, which fails the step with a template error naming the expression.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from jmespath import functions

from engine.jsonshape import DEFAULT_MAX_VALUE_BYTES, json_text
from engine.timezones import get_zone, parse_iso_datetime

_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_UNITS = ("minute", "hour", "day", "week", "month", "year")


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp; a naive one is taken as UTC."""
    try:
        parsed = parse_iso_datetime(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_duration(text: str) -> tuple[int, timedelta]:
    """Parse an ISO 8601 duration into ``(months, exact part)``; a year is 12 months."""
    match = _DURATION.match(text)
    if not match or text.rstrip("T").lstrip("-") == "P" or text.endswith("T"):
        raise ValueError(f"not an ISO 8601 duration (PnYnMnWnDTnHnMnS): {text!r}")
    parts = {k: v for k, v in match.groupdict().items() if v and k != "sign"}
    months = int(parts.get("years", 0)) * 12 + int(parts.get("months", 0))
    exact = timedelta(
        weeks=float(parts.get("weeks", 0)),
        days=float(parts.get("days", 0)),
        hours=float(parts.get("hours", 0)),
        minutes=float(parts.get("minutes", 0)),
        seconds=float(parts.get("seconds", 0)),
    )
    return (-months, -exact) if match.group("sign") else (months, exact)


def add_duration(moment: datetime, duration: str) -> datetime:
    """``moment`` plus the ISO 8601 ``duration``: calendar months first, then the rest."""
    months, exact = parse_duration(duration)
    return moment + relativedelta(months=months) + exact


def iso(moment: datetime) -> str:
    """ISO 8601 with the offset; UTC is spelled ``+00:00``."""
    return moment.isoformat()


def start_of(moment: datetime, unit: str) -> datetime:
    """The start of the calendar ``unit`` containing ``moment`` (in its own offset)."""
    if unit not in _UNITS:
        raise ValueError(f"unit must be one of {', '.join(_UNITS)}, not {unit!r}")
    moment = moment.replace(second=0, microsecond=0)
    if unit == "minute":
        return moment
    moment = moment.replace(minute=0)
    if unit == "hour":
        return moment
    moment = moment.replace(hour=0)
    if unit == "week":
        return moment - timedelta(days=moment.weekday())
    if unit == "month":
        return moment.replace(day=1)
    if unit == "year":
        return moment.replace(month=1, day=1)
    return moment


class TimeFunctions(functions.Functions):
    """The functions listed in this module's docstring (plus JMESPath's builtins, of which
    ``to_string`` and ``join`` refuse to build text longer than a step's values may be)."""

    @functions.signature({"types": []})
    def _func_to_string(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        return json_text(value, ensure_ascii=True)  # as JMESPath's own to_string writes it

    @functions.signature({"types": ["string"]}, {"types": ["array-string"]})
    def _func_join(self, separator: str, items: list[str]) -> str:
        size = len(separator) * max(0, len(items) - 1) + sum(len(item) for item in items)
        if size > DEFAULT_MAX_VALUE_BYTES:
            raise ValueError(f"join would build {size} characters, over the limit")
        return separator.join(items)

    @functions.signature({"types": ["string"]}, {"types": ["number"]})
    def _func_add_seconds(self, timestamp: str, seconds: float) -> str:
        return iso(parse_timestamp(timestamp) + timedelta(seconds=seconds))

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_add_duration(self, timestamp: str, duration: str) -> str:
        return iso(add_duration(parse_timestamp(timestamp), duration))

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_to_timezone(self, timestamp: str, zone: str) -> str:
        return iso(parse_timestamp(timestamp).astimezone(get_zone(zone)))

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_format_time(self, timestamp: str, fmt: str) -> str:
        return parse_timestamp(timestamp).strftime(fmt)

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_parse_time(self, text: str, fmt: str) -> str:
        parsed = datetime.strptime(text, fmt)
        return iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_start_of(self, timestamp: str, unit: str) -> str:
        return iso(start_of(parse_timestamp(timestamp), unit))

    @functions.signature({"types": ["string"]})
    def _func_epoch_seconds(self, timestamp: str) -> float:
        return parse_timestamp(timestamp).timestamp()

    @functions.signature({"types": ["number"]})
    def _func_from_epoch(self, seconds: float) -> str:
        return iso(datetime.fromtimestamp(seconds, tz=UTC))

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_seconds_between(self, start: str, end: str) -> float:
        return (parse_timestamp(end) - parse_timestamp(start)).total_seconds()
