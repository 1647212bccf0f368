"""A run as the API answers it and as completion webhooks carry it: one pure function of the
stored row, so ``GET /runs/{id}`` and the ``run.finished`` webhook cannot drift apart.

The stored forms are lean (a step without retries has no ``tries`` key; a run that never
failed has no ``attempts``); :func:`present_run` fills in every field and adds ``timing``,
where the run's wall time is cut into named parts that add up::

    total_ms = queue_ms + earlier_attempts_ms + steps_ms + step_backoff_ms + overhead_ms
               + completion_ms
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

FINAL_STATUSES = frozenset({"succeeded", "dead", "canceled"})

_STEP_DEFAULTS: dict[str, Any] = {
    "started_at": None,
    "duration_ms": None,
    "attempt": 0,
    "output": None,
    "error": None,
    "skip_reason": None,
}


def present_run(row: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of a run row (``store.runs`` columns): ids and timestamps as strings,
    every step and attempt with all its fields, and ``timing`` once the run has ended."""
    steps = [present_step(step) for step in row["steps"] or ()]
    attempts = [present_attempt(attempt) for attempt in row["attempts"] or ()]
    return {
        "id": str(row["id"]),
        "task_id": str(row["task_id"]),
        "status": row["status"],
        "trigger": row["trigger"],
        "scheduled_for": _iso(row["scheduled_for"]),
        "queued_at": _iso(row["queued_at"]),
        "attempt": row["attempt"],
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "duration_ms": row["duration_ms"],
        "worker_id": row["worker_id"],
        "steps": steps,
        "error": row["error"],
        "event": row["event"],
        "retry_of": None if row["retry_of"] is None else str(row["retry_of"]),
        "next_attempt_at": _iso(row["next_attempt_at"]),
        "cancel_requested": bool(row["cancel_requested"]),
        "attempts": attempts,
        "timing": run_timing(row, steps, attempts),
    }


def present_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """A stored step with every field (``tries`` [] and ``skip_reason`` null when absent)."""
    shown = {"id": step["id"], "uses": step["uses"], "status": step["status"]}
    for key, default in _STEP_DEFAULTS.items():
        shown[key] = step.get(key, default)
    shown["tries"] = [dict(one) for one in step.get("tries") or ()]
    return shown


def present_attempt(attempt: Mapping[str, Any]) -> dict[str, Any]:
    """A failed attempt; its timestamps in the same ISO 8601 form as the run's own."""
    return {
        "number": attempt["number"],
        "worker_id": attempt.get("worker_id"),
        "started_at": _reformat(attempt.get("started_at")),
        "finished_at": _reformat(attempt.get("finished_at")),
        "duration_ms": attempt.get("duration_ms"),
        "error": attempt.get("error"),
    }


def run_timing(
    row: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    attempts: Sequence[Mapping[str, Any]],
) -> dict[str, int] | None:
    """Where an ended run's time went, from ``scheduled_for`` to ``finished_at`` (None
    while it has not ended, or when its last attempt never ran to an outcome):

    - ``queue_ms``: waiting for a worker until the first attempt started;
    - ``earlier_attempts_ms``: the failed attempts before the last and the waits between them;
    - ``steps_ms``: the last attempt's steps, every try of each;
    - ``step_backoff_ms``: pauses between a step's tries;
    - ``overhead_ms``: the rest of the last attempt (templates, validation, the worker);
    - ``completion_ms``: handing the run to its worker and writing its outcome.
    """
    finished, started, duration = row["finished_at"], row["started_at"], row["duration_ms"]
    if row["status"] not in FINAL_STATUSES or None in (finished, started, duration):
        return None
    scheduled: datetime = row["scheduled_for"]
    first_started = _first_start(attempts, started)
    total = _ms(finished - scheduled)
    queue = _ms(first_started - scheduled)
    earlier = _ms(started - first_started)
    steps_ms = sum(_step_ms(step) for step in steps)
    backoff = sum(t.get("backoff_ms") or 0 for step in steps for t in step["tries"])
    overhead = max(0, duration - steps_ms - backoff)
    return {
        "total_ms": total,
        "queue_ms": queue,
        "earlier_attempts_ms": earlier,
        "steps_ms": steps_ms,
        "step_backoff_ms": backoff,
        "overhead_ms": overhead,
        # What is left: the hand-off and the write, measured by the database's clock.
        "completion_ms": total - queue - earlier - steps_ms - backoff - overhead,
    }


def _first_start(attempts: Sequence[Mapping[str, Any]], started: datetime) -> datetime:
    for attempt in attempts:
        if attempt["started_at"] is not None:
            return datetime.fromisoformat(attempt["started_at"])
    return started


def _step_ms(step: Mapping[str, Any]) -> int:
    tries = sum(int(t.get("duration_ms") or 0) for t in step["tries"])
    return int(step["duration_ms"] or 0) + tries


def _ms(delta: timedelta) -> int:
    return round(delta.total_seconds() * 1000)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _reformat(value: str | None) -> str | None:
    """PostgreSQL's JSON timestamps (``...:05.12+00:00``) in Python's ISO form."""
    return None if value is None else datetime.fromisoformat(value).isoformat()
