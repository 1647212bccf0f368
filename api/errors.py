"""The one place where errors become HTTP responses.

Every 4xx/5xx body has the same shape::

    {"error": {"code": "...", "message": "...", "details": [...], "request_id": "..."}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import auth_failure
from api.idempotency import IdempotentReplay
from engine.errors import (
    Conflict,
    FanoutExceeded,
    NotFound,
    OrdinautError,
    PermissionDenied,
    Problem,
    QuotaExceeded,
    RateLimited,
    StoreUnavailable,
    Unauthenticated,
    ValidationFailed,
    ValueRefused,
)

log = logging.getLogger("ordinaut.api")

_STATUS: list[tuple[type[OrdinautError], int]] = [
    (ValidationFailed, 422),
    (ValueRefused, 422),
    (NotFound, 404),
    (Conflict, 409),
    (PermissionDenied, 403),
    (Unauthenticated, 401),
    (RateLimited, 429),
    (FanoutExceeded, 422),  # before its base class: the same event is refused again
    (QuotaExceeded, 429),  # no Retry-After: when it passes depends on work finishing
    (StoreUnavailable, 503),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_document(
    request_id: str | None, code: str, message: str, details: list[Any] | None = None
) -> dict[str, Any]:
    """The body of every 4xx/5xx answer."""
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or [],
            "request_id": request_id,
        }
    }


def error_body(
    request: Request, code: str, message: str, details: list[Any] | None = None
) -> dict[str, Any]:
    return error_document(getattr(request.state, "request_id", None), code, message, details)


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(request, code, message, details), status_code=status, headers=headers
    )


def status_for(exc: OrdinautError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


async def _ordinaut_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OrdinautError)
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, StoreUnavailable):
        headers["Retry-After"] = "1"
        # Expected while the database restarts: one line each, no traceback.
        log.warning("request failed: %s", exc.message)
    elif status >= 500:
        log.error("request failed: %s", exc.message, exc_info=exc)
    return error_response(request, status, exc.code, exc.message, _details(exc), headers)


def _details(exc: OrdinautError) -> list[dict[str, str]]:
    if isinstance(exc, ValidationFailed):
        return [p.as_dict() for p in exc.problems]
    if isinstance(exc, QuotaExceeded):
        return [Problem(f"quotas.{exc.quota}", exc.message, "quota_exceeded").as_dict()]
    if isinstance(exc, ValueRefused):  # PostgreSQL refused a value of the body as data
        return [Problem("$", exc.message, "data").as_dict()]
    return []


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        source = parts.pop(0)
        prefix = "$" if source == "body" else source
    else:
        prefix = "$"
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    refused = await auth_failure(request)
    if refused is not None:
        return await _ordinaut_error(request, refused)
    errors = exc.errors()
    if errors and all(tuple(err.get("loc", ()))[:1] == ("path",) for err in errors):
        literal = _allowed_methods(request, literal_only=True)
        if literal:  # e.g. PATCH /tasks/validate: "validate" is a route, not a task id
            headers = {"Allow": ", ".join(literal)}
            message = f"{request.method} is not allowed here"
            return error_response(request, 405, "method_not_allowed", message, headers=headers)
    problems = [
        Problem(_loc_to_path(tuple(err.get("loc", ()))), str(err.get("msg")), str(err.get("type")))
        for err in errors
    ]
    message = "; ".join(f"{p.path}: {p.message}" for p in problems) or "invalid request"
    return error_response(
        request, 422, "validation_error", message, [p.as_dict() for p in problems]
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code < 500 else "internal")
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        refused = await auth_failure(request)
        if refused is not None:
            return await _ordinaut_error(request, refused)
        # FastAPI answers 400 when a model body is not UTF-8 text; every other unreadable
        # body is a 422 naming ``$``, so this one is too.
        problem = Problem("$", "body is not valid JSON (UTF-8 text expected)", "json")
        return error_response(
            request, 422, "validation_error", problem.message, [problem.as_dict()]
        )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(request, exc.status_code, code, str(exc.detail), headers=headers)


def _allowed_methods(request: Request, *, literal_only: bool = False) -> list[str]:
    """Every method some route serves at this path (the router names only the first);
    ``literal_only``: only routes without path parameters."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        regex = getattr(context, "path_regex", None)
        if regex is None or (literal_only and getattr(context, "param_convertors", None)):
            continue
        if regex.match(path):
            methods |= set(getattr(context, "methods", None) or ())
    return sorted(methods)


async def _replay(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    headers = {"Idempotent-Replayed": "true"}
    if exc.body is None:
        return Response(status_code=exc.status, headers=headers)
    return JSONResponse(exc.body, status_code=exc.status, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(request, 500, "internal", "internal error (this is a bug)")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IdempotentReplay, _replay)
    app.add_exception_handler(OrdinautError, _ordinaut_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


# Re-exported so routers raise domain errors without importing the engine tree piecemeal.
__all__ = ["Conflict", "NotFound", "PermissionDenied", "install_error_handlers"]
