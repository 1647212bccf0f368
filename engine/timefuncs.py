"""Custom JMESPath functions for time arithmetic in templates.

Timestamps are ISO 8601 strings (``now`` in the context is one, in UTC).

=============================================  ==============================================
function                                       result
=============================================  ==============================================
``add_seconds(ts, n)``                         ``ts`` plus ``n`` seconds (negative subtracts)
``add_duration(ts, 'P1DT2H')``                 ``ts`` plus an ISO 8601 duration (days, hours,
                                               minutes, seconds; weeks as ``PnW``)
``to_timezone(ts, 'Europe/Chisinau')``         the same instant with the zone's offset
``format_time(ts, '%Y-%m-%d')``                ``strftime`` formatting
``epoch_seconds(ts)``                          seconds since 1970-01-01T00:00:00Z
``from_epoch(n)``                              the ISO 8601 UTC timestamp of ``n`` seconds
``seconds_between(a, b)``                      ``b - a`` in seconds
=============================================  ==============================================
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from jmespath import functions

from engine.timezones import get_zone

_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp; a naive one is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration without years or months (their length varies)."""
    match = _DURATION.match(text)
    if not match or text in ("P", "PT", "-P", "-PT"):
        raise ValueError(f"not an ISO 8601 duration (PnWnDTnHnMnS): {text!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v and k != "sign"}
    delta = timedelta(**parts)
    return -delta if match.group("sign") else delta


def iso(moment: datetime) -> str:
    """ISO 8601 with the offset; ``Z`` is spelled ``+00:00``."""
    return moment.isoformat()


class TimeFunctions(functions.Functions):
    """The functions listed in this module's docstring."""

    @functions.signature({"types": ["string"]}, {"types": ["number"]})
    def _func_add_seconds(self, timestamp: str, seconds: float) -> str:
        return iso(parse_timestamp(timestamp) + timedelta(seconds=seconds))

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_add_duration(self, timestamp: str, duration: str) -> str:
        return iso(parse_timestamp(timestamp) + parse_duration(duration))

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_to_timezone(self, timestamp: str, zone: str) -> str:
        return iso(parse_timestamp(timestamp).astimezone(get_zone(zone)))

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_format_time(self, timestamp: str, fmt: str) -> str:
        return parse_timestamp(timestamp).strftime(fmt)

    @functions.signature({"types": ["string"]})
    def _func_epoch_seconds(self, timestamp: str) -> float:
        return parse_timestamp(timestamp).timestamp()

    @functions.signature({"types": ["number"]})
    def _func_from_epoch(self, seconds: float) -> str:
        return iso(datetime.fromtimestamp(seconds, tz=UTC))

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_seconds_between(self, start: str, end: str) -> float:
        return (parse_timestamp(end) - parse_timestamp(start)).total_seconds()
