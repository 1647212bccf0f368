"""Pure parts of results: a run as the API shows it (timing that adds up), the Standard
Webhooks signature (checked against the reference library), and run-change tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from engine import webhooks
from engine.retry import webhook_retry_delay
from engine.runs import present_run
from store.run_events import parse_changes

T0 = datetime(2026, 3, 29, 6, 30, tzinfo=UTC)


def row(**overrides: Any) -> dict[str, Any]:
    """A finished run as ``store.runs`` reads it: queued at T0, started 40 ms later."""
    values: dict[str, Any] = {
        "id": "0b6f0c8e-0000-4000-8000-000000000001",
        "task_id": "0b6f0c8e-0000-4000-8000-000000000002",
        "agent_id": "0b6f0c8e-0000-4000-8000-000000000003",
        "status": "succeeded",
        "trigger": "manual",
        "scheduled_for": T0,
        "queued_at": T0,
        "attempt": 1,
        "started_at": T0 + timedelta(milliseconds=40),
        "finished_at": T0 + timedelta(milliseconds=3240),
        "duration_ms": 3190,
        "worker_id": "w1",
        "steps": [
            {
                "id": "call",
                "uses": "http.request",
                "status": "succeeded",
                "started_at": "2026-03-29T06:30:03.100000+00:00",
                "duration_ms": 60,
                "attempt": 3,
                "output": {"status": 200},
                "error": None,
                "tries": [
                    {"try": 1, "started_at": "x", "duration_ms": 50, "backoff_ms": 1000},
                    {"try": 2, "started_at": "y", "duration_ms": 70, "backoff_ms": 2000},
                ],
            },
            {"id": "skip", "uses": "debug.echo", "status": "skipped", "skip_reason": None},
        ],
        "error": None,
        "event": None,
        "retry_of": None,
        "next_attempt_at": None,
        "cancel_requested": False,
        "attempts": [],
    }
    values.update(overrides)
    return values


def test_the_timing_of_an_ended_run_names_every_part_and_adds_up():
    timing = present_run(row())["timing"]
    assert timing == {
        "total_ms": 3240,
        "queue_ms": 40,
        "earlier_attempts_ms": 0,
        "steps_ms": 180,  # 50 + 70 + 60: every try
        "step_backoff_ms": 3000,
        "overhead_ms": 10,  # 3190 - 180 - 3000
        "completion_ms": 10,  # the rest: 3240 - 40 - 3190
    }


def test_earlier_attempts_count_from_the_first_start():
    attempts = [
        {
            "number": 1,
            "worker_id": "w0",
            "started_at": "2026-03-29T06:29:58.5+00:00",
            "finished_at": "2026-03-29T06:29:59+00:00",
            "duration_ms": 500,
            "error": {"step_id": None, "type": "timeout", "message": "m", "retryable": True},
        }
    ]
    run = present_run(row(scheduled_for=T0 - timedelta(seconds=2), attempts=attempts, attempt=2))
    timing = run["timing"]
    assert timing["queue_ms"] == 500 and timing["earlier_attempts_ms"] == 1540
    assert sum(v for k, v in timing.items() if k != "total_ms") == timing["total_ms"] == 5240
    assert run["attempts"][0]["started_at"] == "2026-03-29T06:29:58.500000+00:00"


def test_runs_that_have_not_ended_have_no_timing_and_every_field_is_filled_in():
    run = present_run(row(status="running", finished_at=None, duration_ms=None))
    assert run["timing"] is None
    assert run["steps"][1]["tries"] == [] and run["steps"][1]["started_at"] is None
    assert set(run["steps"][0]) == set(run["steps"][1])
    assert present_run(row(status="canceled", duration_ms=None))["timing"] is None


def test_signatures_verify_with_the_reference_library():
    key, shown = webhooks.new_secret()
    assert shown.startswith("whsec_") and len(key) == 32
    payload = webhooks.body({"id": "r", "status": "succeeded", "note": "déjà"})
    stamp = int(datetime.now(UTC).timestamp())
    headers = webhooks.headers([key], "msg_1", stamp, payload)
    assert Webhook(shown).verify(payload, headers) == {
        "type": "run.finished",
        "data": {"id": "r", "status": "succeeded", "note": "déjà"},
    }
    assert json.loads(payload)["data"]["note"] == "déjà"
    assert (
        Webhook(shown).sign("msg_1", datetime.fromtimestamp(stamp, UTC), payload.decode())
        == (headers["webhook-signature"])
    )


def test_during_a_rotation_either_key_verifies_and_a_third_does_not():
    (new, new_shown), (old, old_shown) = webhooks.new_secret(), webhooks.new_secret()
    payload = webhooks.body({"id": "r"})
    stamp = int(datetime.now(UTC).timestamp())
    headers = webhooks.headers([new, old], "msg_2", stamp, payload)
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert signatures[0] == webhooks.signature(new, "msg_2", stamp, payload)
    for shown in (new_shown, old_shown):
        assert Webhook(shown).verify(payload, headers)["data"] == {"id": "r"}
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()[1]).verify(payload, headers)


def test_change_tokens_parse_and_malformed_ones_are_skipped():
    run = "0b6f0c8e-0000-4000-8000-000000000001"
    changes = parse_changes(f"q{run}:0 s{run}:3 z{run}:1 r{run}:x r{run[:-1]}:1 p{run}:2")
    assert [(c.kind, c.status, c.attempt, c.final) for c in changes] == [
        ("q", "queued", 0, False),
        ("s", "succeeded", 3, True),
        ("p", "progress", 2, False),
    ]


def test_webhook_retries_are_jittered_even_at_the_cap():
    assert webhook_retry_delay(1, base=5, cap=3600, rand=lambda: 1.0) == 5
    assert webhook_retry_delay(1, base=5, cap=3600, rand=lambda: 0.0) == 2.5
    assert webhook_retry_delay(30, base=5, cap=3600, rand=lambda: 1.0) == 3600
    assert webhook_retry_delay(30, base=5, cap=3600, rand=lambda: 0.0) == 1800
