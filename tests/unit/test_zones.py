"""Time zones come from one source of tz data; names it cannot load are unknown (issue 17).

``localtime`` (and ``posixrules``, ``Factory`` …) are listed by the system's zoneinfo but
absent from the ``tzdata`` package that Ordinaut loads zones from when it is newer: such a
name was accepted by the check and failed when loaded (a 500). Every zone is resolved
through :func:`engine.timezones.get_zone`, which refuses what it cannot load.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.errors import ValidationFailed
from engine.schedules import parse_schedule
from engine.timezones import UnknownTimezone, available_zones, get_zone


@pytest.mark.parametrize("name", ["localtime", "posixrules", "zone.tab", "../etc/passwd", "UTC/"])
def test_names_the_tz_data_cannot_load_are_unknown(name):
    with pytest.raises(UnknownTimezone):
        get_zone(name)
    assert name not in available_zones()


def test_every_listed_zone_loads():
    for name in sorted(available_zones()):
        get_zone(name)


def test_a_schedule_in_localtime_is_a_validation_error():
    with pytest.raises(ValidationFailed) as caught:
        parse_schedule("cron", "0 9 * * *", "localtime", anchor=datetime.now(UTC))
    assert [p.path for p in caught.value.problems] == ["$.timezone"]
