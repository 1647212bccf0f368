"""Pure ASGI middleware (no per-request task, no body buffering):

- :class:`RequestContextMiddleware` (outermost): the request id, HTTP metrics, one access
  log line per request, and the last-resort 500 in the common error format;
- :class:`BodyLimitMiddleware`: 413 for a body over ``ORDINAUT_MAX_BODY_BYTES``, before
  anything parses it.

The audit log's middleware lives in :mod:`api.audit`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_document
from observability.logging import log_context
from observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

log = logging.getLogger("ordinaut.api")
access_log = logging.getLogger("ordinaut.api.access")
PROBES = frozenset({"/health", "/health/ready", "/metrics"})

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    """Accepts a well-formed ``X-Request-ID`` (else makes one), echoes it on the response,
    binds it to every log line of the request, records ``ordinaut_http_requests_total``
    and the request duration by route template (``/tasks/{task_id}``, never the raw path,
    so label cardinality stays bounded), and logs one access line (method, path without
    query string, status, duration; never a header).

    An exception that escapes the application becomes a 500 in the common error format
    here, inside the request's context, so it still carries the request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_code = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status_code, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_code = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled error")
                if response_started:
                    raise
                await send_json(
                    send_with_id,
                    500,
                    error_document(request_id, "internal", "internal error (this is a bug)"),
                )
            finally:
                self._observe(scope, status_code, time.perf_counter() - started)

    @staticmethod
    def _observe(scope: Scope, status_code: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        labels = (scope["method"], template, str(status_code))
        HTTP_REQUESTS.labels(*labels).inc()
        HTTP_REQUEST_DURATION.labels(*labels).observe(elapsed)
        # Probes and scrapes (every few seconds, forever) only at DEBUG, unless they fail.
        level = logging.DEBUG if template in PROBES and status_code < 400 else logging.INFO
        if access_log.isEnabledFor(level):
            access_log.log(
                level,
                "%s %s %s",
                scope["method"],
                scope.get("path", ""),
                status_code,
                extra={
                    "route": template,
                    "status": status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.match(text) else None
    return None


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the body grows past the limit. An ``HTTPException``
    so that FastAPI's own body parsing lets it through unchanged (it turns other errors
    into a 400) and the error handler answers 413 in the common format."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimitMiddleware:
    """413 for a request body over ``max_bytes``: at once when ``Content-Length`` says so,
    otherwise (chunked uploads) as soon as the bytes received exceed it. Either way nothing
    has parsed the body yet."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            request_id = scope.get("state", {}).get("request_id")
            message = f"request body larger than {self.max_bytes} bytes"
            document = error_document(request_id, "payload_too_large", message)
            await send_json(send, 413, document, [(b"connection", b"close")])
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_json(
    send: Send,
    status: int,
    document: Any,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete JSON response from middleware."""
    body = json.dumps(document).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
