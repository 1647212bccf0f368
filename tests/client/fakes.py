"""Answers of a fake server for the transport-logic tests (retries, waiting): the
shapes are the real server's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

RUN_ID = "6f1c8e52-3b7a-4d0e-9a51-0c2b8f7d4e19"
TASK_ID = "0b7e9f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
URL = "http://ordinaut.test"


def run_document(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": RUN_ID,
        "task_id": TASK_ID,
        "status": status,
        "trigger": "manual",
        "scheduled_for": "2026-03-30T09:00:00+03:00",
        "queued_at": "2026-03-30T06:00:00+00:00",
        "attempt": 1,
        "started_at": None,
        "finished_at": None,
        "duration_ms": None,
        "worker_id": None,
        "steps": [],
        "error": None,
        **extra,
    }


def task_document(**extra: Any) -> dict[str, Any]:
    return {
        "id": TASK_ID,
        "title": "t",
        "description": None,
        "schedule_kind": "once",
        "schedule_expr": "2030-01-01T00:00:00Z",
        "timezone": "UTC",
        "payload": {"pipeline": []},
        "priority": 5,
        "max_retries": 3,
        "backoff_strategy": "exponential_jitter",
        "timeout_seconds": 300,
        "concurrency_key": None,
        "dedupe_key": None,
        "dedupe_window_seconds": 0,
        "catch_up": "latest",
        "status": "active",
        "created_by": RUN_ID,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "next_run_at": "2030-01-01T00:00:00+00:00",
        **extra,
    }


def agent_document() -> dict[str, Any]:
    return {
        "id": TASK_ID,
        "name": "admin",
        "scopes": ["admin"],
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    names = {name.replace("_", "-"): value for name, value in headers.items()}
    return httpx.Response(
        status, content=content, headers={"content-type": "application/json", **names}
    )


def rate_limited(retry_after: str | None = "0") -> httpx.Response:
    body = {
        "error": {"code": "rate_limited", "message": "slow down", "details": [], "request_id": "r1"}
    }
    return answer(429, body, **({"Retry_After": retry_after} if retry_after is not None else {}))


class Script:
    """A MockTransport handler that plays ``steps`` in order (a response, an exception to
    raise, or a callable of the request) and records every request."""

    def __init__(
        self, *steps: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]
    ) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)
