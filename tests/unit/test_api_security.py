"""Pure pieces of the API's security layer: the rate limiter, redaction of secrets in logs
and audit details, audit action names, request hashing, cursors."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from api.audit import route_audit, summarize
from api.deps import require
from api.idempotency import request_hash
from api.pagination import bigint, decode_typed_cursor, encode_cursor
from api.ratelimit import RateLimiter
from engine.errors import ValidationFailed
from engine.tokens import display_prefix, generate_token
from observability.logging import JsonFormatter, redact, scrub


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_refills_at_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock)  # one per second
    assert [limiter.acquire("a") for _ in range(60)] == [None] * 60
    assert limiter.acquire("a") == 1
    assert limiter.acquire("b") is None  # buckets are per key
    clock.now += 0.5
    assert limiter.acquire("a") == 1  # half a token: wait
    clock.now += 0.5
    assert limiter.acquire("a") is None
    clock.now += 3600
    assert [limiter.acquire("a") for _ in range(60)] == [None] * 60  # capped at the burst


def test_retry_after_rounds_up_to_whole_seconds():
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock)  # one every 30 s
    limiter.acquire("a")
    limiter.acquire("a")
    assert limiter.acquire("a") == 30
    clock.now += 29.5
    assert limiter.acquire("a") == 1


def test_rate_limit_zero_is_off_and_idle_buckets_are_forgotten():
    assert all(RateLimiter(0).acquire("a") is None for _ in range(10_000))
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, max_keys=3)
    for key in "abc":
        limiter.acquire(key)
    clock.now += 120
    limiter.acquire("d")
    assert set(limiter._buckets) == {"d"}


def test_redact_masks_secret_keys_and_token_values():
    document = {
        "password": "hunter2",
        "nested": [{"API_KEY": "k", "apiKey": "k2", "city": "Chisinau"}],
        "message": "use ord_AbCdEfGhIjKlMnOp and Bearer xyz.abc please",
        "Authorization": "Basic Zm9v",
        "count": 3,
    }
    assert redact(document) == {
        "password": "[redacted]",
        "nested": [{"API_KEY": "[redacted]", "apiKey": "[redacted]", "city": "Chisinau"}],
        "message": "use [redacted] and Bearer [redacted] please",
        "Authorization": "[redacted]",
        "count": 3,
    }
    assert scrub("no secrets here, ord_ alone") == "no secrets here, ord_ alone"


def test_json_log_lines_never_carry_tokens():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ordinaut.test.api_security")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = "ord_3q0Zx9k2c9Q2mJ8Zt1Jb0bW0yYl7a8sY0bQ0dGk9Zk4"
        logger.warning(
            "header was Bearer %s", token, extra={"payload": {"secret": "s", "note": token}}
        )
        try:
            raise ValueError(f"bad token {token}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert token not in text
    first = json.loads(text.splitlines()[0])
    assert first["message"] == "header was Bearer [redacted]"
    assert first["payload"] == {"secret": "[redacted]", "note": "[redacted]"}


def test_audit_summaries_are_redacted_and_bounded():
    summary = summarize({"token": "t", "text": "x" * 2000, "items": list(range(100))})
    assert summary["token"] == "[redacted]"
    assert len(summary["text"]) == 501
    assert summary["items"][-1] == "…" and len(summary["items"]) == 51
    huge = summarize({f"k{i}": "y" * 400 for i in range(100)})
    assert huge["truncated"] is True and len(huge["keys"]) == 50


def _route(path: str, method: str, **extra: object) -> APIRoute:
    router = APIRouter()

    async def endpoint(principal=require("tasks:write")) -> None:
        return None

    router.add_api_route(path, endpoint, methods=[method], **extra)  # type: ignore[arg-type]
    route = router.routes[-1]
    assert isinstance(route, APIRoute)
    return route


@pytest.mark.parametrize(
    ("path", "method", "action", "subject"),
    [
        ("/tasks", "POST", "tasks.create", "task"),
        ("/tasks/{task_id}", "PATCH", "tasks.update", "task"),
        ("/tasks/{task_id}", "DELETE", "tasks.delete", "task"),
        ("/tasks/{task_id}/pause", "POST", "tasks.pause", "task"),
        ("/runs/{run_id}/retry", "POST", "runs.retry", "run"),
        ("/events", "POST", "events.create", "event"),
        ("/tools/{address:path}", "DELETE", "tools.delete", "tool"),
        ("/schedules/preview", "POST", "schedules.preview", "schedule"),
    ],
)
def test_audit_action_names(path: str, method: str, action: str, subject: str):
    described = route_audit(_route(path, method))
    assert described.action(method) == action
    assert described.subject_type == subject


def test_a_route_may_name_its_audit_action():
    route = _route("/agents/{agent_id}/tokens", "POST", openapi_extra={"x-audit-action": "a.b"})
    assert route_audit(route).action("POST") == "a.b"


def test_request_hash_compares_json_canonically():
    one = request_hash("POST", "/tasks", b'{"a": 1, "b": [1, 2]}')
    assert one == request_hash("POST", "/tasks", b'{"b":[1,2],"a":1}')
    assert one != request_hash("POST", "/tasks", b'{"a": 1, "b": [2, 1]}')
    assert one != request_hash("POST", "/events", b'{"a": 1, "b": [1, 2]}')
    assert request_hash("POST", "/x", b"not json") == request_hash("POST", "/x", b"not json")


def test_bigint_cursors_round_trip_and_reject_garbage():
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert decode_typed_cursor(encode_cursor(at, 42), bigint) == (at, 42)
    for bad in ("", "x", encode_cursor(at, 2**70), encode_cursor(at, "abc")):
        with pytest.raises(ValidationFailed):
            decode_typed_cursor(bad, bigint)


def test_a_chosen_token_is_listed_by_a_fingerprint_never_by_its_text():
    generated = generate_token()
    assert display_prefix(generated) == generated[:10]
    for chosen in ("bootstrap-admin-token-16", "ord_short_but_chosen"):
        shown = display_prefix(chosen)
        assert shown.startswith("sha256:") and len(shown) == 15
        assert not any(chosen[i : i + 4] in shown for i in range(len(chosen) - 3))
