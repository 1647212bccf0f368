"""The client's logic without I/O: operations are generators of effects.

An operation (``Op[T]``) is a generator that yields effects and receives their results:

- :class:`Request` → a :class:`Response`, or a :class:`Failure` when no answer came;
- :class:`Sleep` → None, once that many seconds have passed;
- :data:`NOW` → the driver's monotonic clock, in seconds.

It returns its parsed result or raises an :class:`~ordinaut.errors.OrdinautError`. Retries,
error mapping, parsing and waiting are written here once; the sync and the async driver
(:mod:`ordinaut._drivers`) only perform the effects, with httpx and ``time``/``asyncio``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, TypeVar

from ordinaut.errors import (
    TransportError,
    UnexpectedResponseError,
    api_error,
    is_quota_error,
    retry_after,
)

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class Request:
    """One HTTP request. ``wait``: seconds the server may hold it (added to the read
    timeout); ``idempotent``: safe to send twice (default: by method)."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json: Any = None
    idempotency_key: str | None = None
    idempotent: bool | None = None
    wait: float = 0.0

    @property
    def repeatable(self) -> bool:
        """Whether sending it again after it may have reached the server is harmless."""
        if self.idempotency_key is not None:
            return True
        return self.idempotent if self.idempotent is not None else self.method in IDEMPOTENT_METHODS


@dataclass(frozen=True)
class Response:
    """An answer: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True)
class Failure:
    """No answer. ``sent``: the request may have reached the server (the connection broke
    or timed out after it was written), so only a repeatable request may be sent again."""

    error: Exception
    sent: bool


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Now:
    """Ask the driver for its monotonic clock."""


NOW: Final = Now()

Effect: TypeAlias = Request | Sleep | Now
Reply: TypeAlias = Response | Failure | float | None
Op: TypeAlias = Generator[Effect, Reply, T]


def exchange(request: Request) -> Op[Response | Failure]:
    """Send ``request`` once."""
    reply = yield request
    assert isinstance(reply, Response | Failure), reply
    return reply


def sleep(seconds: float) -> Op[None]:
    if seconds > 0:
        yield Sleep(seconds)


def now() -> Op[float]:
    reply = yield NOW
    assert isinstance(reply, float | int), reply
    return float(reply)


@dataclass(frozen=True)
class RetryPolicy:
    """When to send a request again, and after how long.

    Retried: 429 (but not a ``quota_exceeded`` one) and 503 answers (after their
    ``Retry-After`` when it is at most ``max_retry_after``, else the error is raised at
    once for the caller to decide), and
    requests that got no answer, provided they never reached the server or are repeatable
    (idempotent, or carrying an ``Idempotency-Key``). Without ``Retry-After`` the delay is
    ``base * 2**attempt`` capped at ``cap``, with jitter (50-100 %).
    """

    max_retries: int = 3
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 60.0
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int, request: Request, reply: Response | Failure) -> float | None:
        """Seconds to wait before sending ``request`` again after ``reply`` to its
        ``attempt``-th try (0 first), or None to stop."""
        if attempt >= self.max_retries:
            return None
        if isinstance(reply, Failure):
            return self.backoff(attempt) if request.repeatable or not reply.sent else None
        if reply.status not in (429, 503):
            return None
        if reply.status == 429 and is_quota_error(reply.content):
            return None  # a quota: retrying in a few seconds rarely helps; the caller decides
        after = retry_after(reply.headers)
        if after is None:
            return self.backoff(attempt)
        return after if after <= self.max_retry_after else None

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * 2.0**attempt)
        return ceiling * (0.5 + self.random() / 2)


@dataclass
class ServerTraits:
    """What a client learned about its server from the answers (a client may meet a server
    older than itself)."""

    # ``GET /runs/{id}?wait=N`` and ``run_now?wait=N`` are held until the run ends; False
    # once the server refused ``wait`` as an unknown parameter.
    long_polls: bool = True


@dataclass(frozen=True)
class Context:
    """What every operation needs besides its arguments."""

    retry: RetryPolicy
    server: ServerTraits = field(default_factory=ServerTraits)


def send(ctx: Context, request: Request) -> Op[Response]:
    """Send ``request``, again as :class:`RetryPolicy` allows; the last answer (any status),
    or :class:`~ordinaut.errors.TransportError` when none came."""
    attempt = 0
    while True:
        reply = yield from exchange(request)
        delay = ctx.retry.delay(attempt, request, reply)
        if delay is None:
            break
        yield from sleep(delay)
        attempt += 1
    if isinstance(reply, Failure):
        reason = f"{type(reply.error).__name__}: {reply.error}".rstrip(": ")
        raise TransportError(f"{request.method} {request.path}: {reason}") from reply.error
    return reply


def call(ctx: Context, request: Request) -> Op[Any]:
    """Send ``request``; its JSON body (None when empty), or the typed error of a 4xx/5xx."""
    body, _ = yield from _answer(ctx, request)
    return body


def fetch(ctx: Context, request: Request, parse: Callable[[Any], T]) -> Op[T]:
    """Send ``request`` and parse its JSON with ``parse``; a body that does not fit gives
    :class:`~ordinaut.errors.UnexpectedResponseError`."""
    body, status = yield from _answer(ctx, request)
    try:
        return parse(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        message = (
            f"{request.method} {request.path}: unexpected answer ({type(exc).__name__}: {exc})"
        )
        raise UnexpectedResponseError(message, status) from exc


def _answer(ctx: Context, request: Request) -> Op[tuple[Any, int]]:
    response = yield from send(ctx, request)
    if response.status >= 400:
        raise api_error(response.status, response.headers, response.content)
    if not response.content.strip():
        return None, response.status
    try:
        return json.loads(response.content), response.status
    except (ValueError, RecursionError):
        message = f"{request.method} {request.path}: the answer is not JSON"
        raise UnexpectedResponseError(message, response.status) from None
