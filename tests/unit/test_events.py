"""Event topics and patterns: ``*`` matches exactly one dot-separated segment."""

from __future__ import annotations

import pytest

from engine.errors import ValidationFailed
from engine.schedules import parse_schedule
from engine.schedules.events import (
    TopicError,
    matches,
    matching_patterns,
    parse_pattern,
    parse_topic,
)

MATCHES = [
    ("orders.created", "orders.created", True),
    ("orders.created", "orders.updated", False),
    ("orders.*", "orders.created", True),
    ("orders.*", "orders", False),
    ("orders.*", "orders.eu.created", False),
    ("*.created", "orders.created", True),
    ("orders.*.created", "orders.eu.created", True),
    ("orders.*.created", "orders.created", False),
    ("*", "orders", True),
    ("*", "orders.created", False),
    ("*.*", "a.b", True),
    ("Orders.created", "orders.created", False),
]


@pytest.mark.parametrize(("pattern", "topic", "expected"), MATCHES)
def test_matches(pattern: str, topic: str, expected: bool) -> None:
    assert matches(pattern, topic) is expected
    patterns = matching_patterns(topic)
    assert patterns is not None
    assert (pattern in patterns) is expected


@pytest.mark.parametrize("text", ["", "a..b", ".a", "a.", "a b", "a.**", "a.b*", "x" * 201, "café"])
def test_invalid_patterns(text: str) -> None:
    with pytest.raises(TopicError):
        parse_pattern(text)


def test_topics_have_no_wildcards() -> None:
    assert parse_topic("orders.eu-west.created_v2") == "orders.eu-west.created_v2"
    with pytest.raises(TopicError):
        parse_topic("orders.*")


def test_deep_topics_are_not_enumerated() -> None:
    assert len(matching_patterns("a.b.c.d.e.f.g.h") or []) == 256
    assert matching_patterns("a.b.c.d.e.f.g.h.i") is None


def test_event_schedule_validation_names_the_field() -> None:
    with pytest.raises(ValidationFailed) as failure:
        parse_schedule("event", "orders..created", "UTC", anchor=None)  # type: ignore[arg-type]
    assert failure.value.problems[0].path == "$.schedule_expr"
    assert parse_schedule("event", "orders.*.created", "UTC", anchor=None) is None  # type: ignore[arg-type]
