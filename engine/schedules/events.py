"""``event``: topic patterns, and which published topics they match.

Topics are dot-separated segments of letters, digits, ``_`` and ``-`` (``orders.eu.created``).
A pattern is a topic in which a segment may be ``*``, matching exactly one segment:
``orders.*.created`` matches ``orders.eu.created`` but neither ``orders.created`` nor
``orders.eu.west.created``. At most :data:`MAX_LENGTH` characters.
"""

from __future__ import annotations

import itertools
import re

MAX_LENGTH = 200
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
# Up to this many segments a topic's matching patterns are enumerated (2^n of them) so the
# database can look them up by index; deeper topics are matched segment by segment.
ENUMERATE_UP_TO_SEGMENTS = 8


class TopicError(ValueError):
    """Not a valid topic or pattern; the message says why."""


def parse_pattern(text: str) -> str:
    """Validate an event task's pattern; returns it unchanged."""
    return _check(text, wildcards=True)


def parse_topic(text: str) -> str:
    """Validate a published topic (no wildcards); returns it unchanged."""
    return _check(text, wildcards=False)


def _check(text: str, *, wildcards: bool) -> str:
    what = "pattern" if wildcards else "topic"
    if not text or len(text) > MAX_LENGTH:
        raise TopicError(f"a {what} has 1 to {MAX_LENGTH} characters")
    for segment in text.split("."):
        if segment == "*" and wildcards:
            continue
        if not _SEGMENT.match(segment):
            allowed = "letters, digits, _ and -" + (", or exactly *" if wildcards else "")
            raise TopicError(
                f"{what} {text!r}: segment {segment!r} must be non-empty {allowed} "
                "(segments are separated by dots)"
            )
    return text


def matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches ``pattern`` (``*`` = exactly one segment)."""
    wanted, given = pattern.split("."), topic.split(".")
    return len(wanted) == len(given) and all(
        w in ("*", g) for w, g in zip(wanted, given, strict=True)
    )


def matching_patterns(topic: str) -> list[str] | None:
    """Every pattern that matches ``topic`` (each segment itself or ``*``), or None when the
    topic has too many segments to enumerate."""
    segments = topic.split(".")
    if len(segments) > ENUMERATE_UP_TO_SEGMENTS:
        return None
    return [".".join(choice) for choice in itertools.product(*[(s, "*") for s in segments])]
