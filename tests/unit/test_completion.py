"""What becomes of an attempt, decided as data before anything is written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from engine.pipeline import PipelineOutcome, RunError, StepResult
from engine.settings import Settings
from workers.completion import Outcome, classify

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = Settings(retry_base_seconds=10, retry_max_seconds=60)


def outcome(error=None, attempt=1, max_retries=2, strategy="fixed"):
    row = {
        "id": uuid.uuid4(),
        "attempt": attempt,
        "max_retries": max_retries,
        "backoff_strategy": strategy,
        "agent_id": uuid.uuid4(),
    }
    result = PipelineOutcome([StepResult("s", "debug.echo", "succeeded", attempt=1)], error)
    return Outcome(row, result, 0.25)


def test_success_is_finished():
    classified = classify([outcome()], now=NOW, settings=SETTINGS)
    (done,) = classified.finished
    assert (done.status, done.error, done.duration_ms) == ("succeeded", None, 250)
    assert done.steps[0]["id"] == "s"
    assert classified.retrying == []


def test_retryable_failure_with_attempts_left_is_retried_after_the_backoff():
    error = RunError("s", "tool_error", "boom", True)
    classified = classify([outcome(error)], now=NOW, settings=SETTINGS)
    (retry,) = classified.retrying
    assert retry.run_at == NOW + timedelta(seconds=10)
    assert retry.error["message"] == "boom"


def test_failures_without_attempts_left_or_not_retryable_are_dead():
    exhausted = outcome(RunError("s", "tool_error", "boom", True), attempt=3, max_retries=2)
    fatal = outcome(RunError("s", "invalid_input", "bad", False))
    classified = classify([exhausted, fatal], now=NOW, settings=SETTINGS)
    assert [r.status for r in classified.finished] == ["dead", "dead"]


def test_a_canceled_run_is_canceled_not_retried():
    classified = classify(
        [outcome(RunError(None, "canceled", "run canceled", False))], now=NOW, settings=SETTINGS
    )
    assert [r.status for r in classified.finished] == ["canceled"]
