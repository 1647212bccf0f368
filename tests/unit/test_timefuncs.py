"""The custom JMESPath time functions, as documented in engine/timefuncs.py and the README."""

from __future__ import annotations

import pytest

from engine.errors import TemplateError
from engine.templates import render

NOW = {"now": "2026-01-31T22:30:00+00:00", "params": {"epoch": 1774765800, "offset": 90}}

CASES = [
    ("${add_seconds(now, `90`)}", "2026-01-31T22:31:30+00:00"),
    ("${add_seconds(now, `-30.5`)}", "2026-01-31T22:29:29.500000+00:00"),
    ("${add_seconds(now, params.offset)}", "2026-01-31T22:31:30+00:00"),
    ("${add_duration(now, 'PT1H30M')}", "2026-02-01T00:00:00+00:00"),
    ("${add_duration(now, 'P1W')}", "2026-02-07T22:30:00+00:00"),
    ("${add_duration(now, '-P1DT30M')}", "2026-01-30T22:00:00+00:00"),
    ("${add_duration(now, 'P1M')}", "2026-02-28T22:30:00+00:00"),  # calendar month, clamped
    ("${add_duration(now, 'P1Y1M')}", "2027-02-28T22:30:00+00:00"),
    ("${add_duration(now, 'PT0.25S')}", "2026-01-31T22:30:00.250000+00:00"),
    ("${to_timezone(now, 'Europe/Chisinau')}", "2026-02-01T00:30:00+02:00"),
    ("${to_timezone(now, 'Asia/Kolkata')}", "2026-02-01T04:00:00+05:30"),
    ("${to_timezone('2026-07-01T12:00:00Z', 'America/New_York')}", "2026-07-01T08:00:00-04:00"),
    ("${format_time(now, '%Y-%m-%d')}", "2026-01-31"),
    ("${format_time(to_timezone(now, 'Europe/Chisinau'), '%A %H:%M')}", "Sunday 00:30"),
    ("${parse_time('05/03/2026 10:00', '%d/%m/%Y %H:%M')}", "2026-03-05T10:00:00+00:00"),
    ("${parse_time('2026-03-05 10:00 +0200', '%Y-%m-%d %H:%M %z')}", "2026-03-05T10:00:00+02:00"),
    ("${start_of(now, 'day')}", "2026-01-31T00:00:00+00:00"),
    ("${start_of(now, 'hour')}", "2026-01-31T22:00:00+00:00"),
    ("${start_of(now, 'week')}", "2026-01-26T00:00:00+00:00"),
    ("${start_of(now, 'month')}", "2026-01-01T00:00:00+00:00"),
    ("${start_of(now, 'year')}", "2026-01-01T00:00:00+00:00"),
    ("${start_of(to_timezone(now, 'Europe/Chisinau'), 'day')}", "2026-02-01T00:00:00+02:00"),
    ("${epoch_seconds('1970-01-02T00:00:00Z')}", 86400.0),
    ("${epoch_seconds('1970-01-01T00:00:00')}", 0.0),  # naive = UTC
    ("${from_epoch(params.epoch)}", "2026-03-29T06:30:00+00:00"),
    ("${seconds_between(now, add_duration(now, 'PT2M'))}", 120.0),
    ("${seconds_between(now, '2026-01-31T22:00:00Z')}", -1800.0),
    ("report for ${format_time(now, '%d.%m.%Y')}", "report for 31.01.2026"),
]


@pytest.mark.parametrize(("template", "expected"), CASES)
def test_time_functions(template, expected):
    assert render(template, NOW) == expected


@pytest.mark.parametrize(
    "template",
    [
        "${add_seconds('yesterday', `1`)}",
        "${add_duration(now, 'P')}",
        "${add_duration(now, 'PT')}",
        "${add_duration(now, '1 day')}",
        "${add_duration(now, 'P1DT')}",
        "${to_timezone(now, 'Nowhere/City')}",
        "${start_of(now, 'fortnight')}",
        "${parse_time('31/31/2026', '%d/%m/%Y')}",
        "${from_epoch(`1e20`)}",
        "${add_seconds(now, 'ten')}",
    ],
)
def test_bad_arguments_fail_the_step_with_the_expression_named(template):
    with pytest.raises(TemplateError) as caught:
        render(template, NOW)
    assert template[2:-1] in caught.value.message
