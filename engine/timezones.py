"""IANA time zones from the newest tz data this machine has.

Python's ``zoneinfo`` prefers the system's files, which can be older than the ``tzdata``
package (Moldova changed its transition times in 2022; a 2025b system lags 2026 data).
We compare the two versions once and load zones from whichever is newer.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import zoneinfo
from datetime import datetime, tzinfo
from pathlib import Path

import tzdata

_SYSTEM_TZDATA = Path("/usr/share/zoneinfo/tzdata.zi")
_VERSION = re.compile(r"#\s*version\s+(\d{4})([a-z]*)")


class UnknownTimezone(ValueError):
    """The name is not an IANA time zone."""


def _version_key(text: str) -> tuple[int, str] | None:
    match = _VERSION.match(text)
    return (int(match.group(1)), match.group(2)) if match else None


@functools.cache
def system_tz_version() -> str | None:
    """The version of the system's tz database, e.g. ``2025b`` (None when unknown)."""
    try:
        first = _SYSTEM_TZDATA.open(encoding="utf-8").readline()
    except OSError:
        return None
    key = _version_key(first)
    return f"{key[0]}{key[1]}" if key else None


@functools.cache
def package_is_newer() -> bool:
    """True when the ``tzdata`` package is newer than the system's files."""
    system = system_tz_version()
    if system is None:
        return True
    return _version_key(f"# version {tzdata.IANA_VERSION}") > _version_key(  # type: ignore[operator]
        f"# version {system}"
    )


def tz_version() -> str:
    """The version of the tz data that :func:`get_zone` uses."""
    return tzdata.IANA_VERSION if package_is_newer() else (system_tz_version() or "unknown")


# Files the system's zoneinfo directory holds besides zones: the machine's own zone (a
# link that differs per host) and the POSIX rules template. Never task zones.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def available_zones() -> frozenset[str]:
    """Every zone name we accept: those of the tz data that :func:`get_zone` loads from (a
    name only the other source lists would fail to load)."""
    if package_is_newer():
        names = importlib.resources.files("tzdata").joinpath("zones").read_text().split()
        return frozenset(names) - _NOT_ZONES | {"UTC"}
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES | {"UTC"}


@functools.cache
def get_zone(name: str) -> tzinfo:
    """The zone called ``name`` (e.g. ``Europe/Chisinau``); raises :class:`UnknownTimezone`.

    Every zone of Ordinaut (tasks, previews, ``to_timezone``, the default) is resolved here.
    """
    if name not in available_zones():
        raise UnknownTimezone(f"unknown time zone {name!r} (expected an IANA name such as UTC)")
    try:
        if package_is_newer():
            resource = importlib.resources.files("tzdata.zoneinfo").joinpath(*name.split("/"))
            with resource.open("rb") as handle:
                return zoneinfo.ZoneInfo.from_file(handle, key=name)
        return zoneinfo.ZoneInfo(name)
    except (OSError, ValueError) as exc:  # listed, yet its file is missing or unreadable
        raise UnknownTimezone(f"time zone {name!r} cannot be loaded: {exc}") from None


def parse_iso_datetime(text: str) -> datetime:
    """An ISO 8601 date-time, ``Z`` accepted for UTC; naive when it names no offset. Raises
    ``ValueError`` (callers say what they expected)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
