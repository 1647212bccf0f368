"""Every error the client raises, in one tree.

::

    OrdinautError                   base of everything this package raises on purpose
    ├── APIError                    the server answered 4xx/5xx: status, code, message,
    │   │                           problems, request_id, retry_after
    │   ├── ValidationError         400, 422: problems name each JSON path
    │   ├── AuthenticationError     401: no, unknown or revoked token
    │   ├── PermissionDeniedError   403: the token lacks the scope
    │   ├── NotFoundError           404: no such object, or another agent's
    │   ├── ConflictError           409: state conflict, duplicate, Idempotency-Key reuse
    │   ├── PayloadTooLargeError    413: body over the server's limit
    │   ├── RateLimitedError        429: retry_after seconds (after the client's own retries)
    │   ├── QuotaExceededError      429 or 422 ``quota_exceeded``: an agent quota; ``quota``
    │   │                           names it; raised at once, never retried
    │   └── ServerError             5xx
    │       └── UnavailableError    503: the database is unreachable (after retries)
    ├── TransportError              no answer: connection refused or lost, timeout
    │                               (also a builtin ``ConnectionError``)
    ├── UnexpectedResponseError     a 2xx answer that is not the JSON the client expects
    └── WaitTimeout                 a run was not final in time; ``run`` is the last seen
                                    (also a builtin ``TimeoutError``)

``str(error)`` is one line: for an :class:`APIError`, the status, code, message and every
problem's path, so a command line can print it as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ordinaut.models import Run


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a JSON path such as ``$.schedule_expr``, or
    ``query.limit``) and why."""

    path: str
    message: str
    type: str = "invalid"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Problem:
        return cls(
            str(data.get("path", "$")),
            str(data.get("message", "")),
            str(data.get("type", "invalid")),
        )


def one_line(text: str) -> str:
    """``text`` with its line breaks turned into spaces."""
    return " ".join(text.splitlines())


class OrdinautError(Exception):
    """Base of every error this package raises on purpose."""


class APIError(OrdinautError):
    """The server answered with an error status (the base of the per-status classes)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        problems: tuple[Problem, ...] = (),
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(self._line())

    def _line(self) -> str:
        # A problem the message already says (with or without its path) is not said twice.
        unmentioned = [p for p in self.problems if p.message not in self.message]
        line = f"{self.status} {self.code}: {self.message}"
        if unmentioned:
            line += " (" + "; ".join(f"{p.path}: {p.message}" for p in unmentioned) + ")"
        return one_line(line)


class ValidationError(APIError):
    """400 or 422: the request was invalid; :attr:`problems` name each JSON path."""


class AuthenticationError(APIError):
    """401: no token, or an unknown, revoked or deleted agent's token."""


class PermissionDeniedError(APIError):
    """403: the token lacks the scope the call needs."""


class NotFoundError(APIError):
    """404: no such object, or it belongs to another agent."""


class ConflictError(APIError):
    """409: not allowed in the object's state, a duplicate, or an Idempotency-Key reuse."""


class PayloadTooLargeError(APIError):
    """413: the body is over the server's limit."""


class RateLimitedError(APIError):
    """429: too many requests; :attr:`retry_after` says how many seconds to wait."""


class QuotaExceededError(APIError):
    """An agent quota refused the request (code ``quota_exceeded``): 429 for active tasks and
    queued runs (it passes once work finishes, or an admin raises the quota), 422 for an
    event matching more tasks than ``event_fanout`` allows. Not retried by the client:
    waiting a few seconds rarely helps. :attr:`quota` is the quota's name."""

    @property
    def quota(self) -> str | None:
        for problem in self.problems:
            if problem.path.startswith("quotas."):
                return problem.path.removeprefix("quotas.")
        return None


class ServerError(APIError):
    """5xx: the server failed (a 500 is a bug in the server)."""


class UnavailableError(ServerError):
    """503: the server cannot reach its database; :attr:`retry_after` when it said so."""


class TransportError(OrdinautError, ConnectionError):
    """No answer: the connection failed or broke, or a timeout passed (the cause is the
    underlying ``httpx`` exception)."""


class UnexpectedResponseError(OrdinautError):
    """A success status whose body is not the JSON the client expects."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(one_line(message))
        self.status = status


class WaitTimeout(OrdinautError, TimeoutError):
    """A run was not final when the wait ran out; :attr:`run` is its last state seen."""

    def __init__(self, run: Run, timeout: float) -> None:
        super().__init__(f"run {run.id} still {run.status} after {timeout:g}s")
        self.run = run
        self.timeout = timeout


_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitedError,
    503: UnavailableError,
}


QUOTA_EXCEEDED = "quota_exceeded"


def error_class(status: int, code: str | None = None) -> type[APIError]:
    """The class for an error status (and the body's ``code``)."""
    if code == QUOTA_EXCEEDED:
        return QuotaExceededError
    return _BY_STATUS.get(status, ServerError if status >= 500 else APIError)


def is_quota_error(content: bytes) -> bool:
    """Whether an error body says ``quota_exceeded`` (such a 429 is not retried)."""
    return _error_info(content).get("code") == QUOTA_EXCEEDED


def api_error(status: int, headers: Mapping[str, str], content: bytes) -> APIError:
    """The typed error for a 4xx/5xx answer (``headers`` with lower-case names); bodies that
    are not the server's error document (a proxy's page) still give the right class."""
    info = _error_info(content)
    code = str(info.get("code") or f"http_{status}")
    message = str(info.get("message") or _fallback_message(status, content))
    details = info.get("details")
    problems = tuple(
        Problem.from_api(d)
        for d in (details if isinstance(details, list) else ())
        if isinstance(d, Mapping)
    )
    request_id = info.get("request_id") or headers.get("x-request-id")
    return error_class(status, code)(
        status,
        code,
        message,
        problems=problems,
        request_id=str(request_id) if request_id else None,
        retry_after=retry_after(headers),
    )


def _error_info(content: bytes) -> Mapping[str, Any]:
    try:
        document = json.loads(content)
    except (ValueError, RecursionError):
        return {}
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else {}


def _fallback_message(status: int, content: bytes) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    text = content.decode("utf-8", "replace").strip()[:200]
    return f"{phrase}: {text}" if text else phrase


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), None when absent or
    unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when.tzinfo else None
