"""Example task documents: the quick start of DESIGN §5, shown in the OpenAPI description
and exercised by the tests (unit, validation and end to end), so all of them agree."""

from __future__ import annotations

import copy
from typing import Any

QUICK_START_PARAMS: dict[str, Any] = {"city": "Chisinau"}

QUICK_START_PIPELINE: list[dict[str, Any]] = [
    {
        "id": "greet",
        "uses": "debug.echo",
        "with": {"message": "Hello ${params.city}"},
        "save_as": "greeting",
    },
    {
        "id": "log",
        "uses": "debug.log",
        "with": {"message": "${steps.greeting.message}"},
        "if": "steps.greeting != null",
        "timeout_seconds": 10,
        "max_retries": 2,
    },
]

QUICK_START_TASK: dict[str, Any] = {
    "title": "Weekday briefing",
    "description": "optional text",
    "schedule_kind": "rrule",
    "schedule_expr": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30",
    "timezone": "Europe/Chisinau",
    "payload": {"params": QUICK_START_PARAMS, "pipeline": QUICK_START_PIPELINE},
    "priority": 5,
    "max_retries": 3,
    "backoff_strategy": "exponential_jitter",
    "timeout_seconds": 300,
    "concurrency_key": None,
    "dedupe_key": None,
    "dedupe_window_seconds": 0,
    "catch_up": "latest",
}


def quick_start_pipeline() -> list[dict[str, Any]]:
    """A fresh copy of the quick-start pipeline (safe to modify)."""
    return copy.deepcopy(QUICK_START_PIPELINE)
