"""The two drivers: they perform the operations' effects (:mod:`ordinaut._protocol`).

:class:`SyncDriver` sends over ``httpx.Client`` and sleeps with ``time.sleep``;
:class:`AsyncDriver` sends over ``httpx.AsyncClient`` and sleeps with ``asyncio.sleep``.
Nothing else differs between :class:`ordinaut.Client` and :class:`ordinaut.AsyncClient`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

import httpx

from ordinaut._config import Config
from ordinaut._protocol import (
    Context,
    Effect,
    Failure,
    Now,
    Op,
    Reply,
    Request,
    Response,
    RetryPolicy,
)

T = TypeVar("T")

# Raised before any byte of the request left: sending it again is always safe.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def build_request(
    http: httpx.Client | httpx.AsyncClient, request: Request, timeout: float
) -> httpx.Request:
    """The httpx request for ``request``; the read timeout grows by the seconds the server
    may hold it."""
    headers = {"Idempotency-Key": request.idempotency_key} if request.idempotency_key else None
    return http.build_request(
        request.method,
        request.path,
        params=list(request.params) or None,
        json=request.json,
        headers=headers,
        timeout=httpx.Timeout(timeout, read=timeout + request.wait),
    )


def response_of(answer: httpx.Response) -> Response:
    headers = {name.lower(): value for name, value in answer.headers.items()}
    return Response(answer.status_code, headers, answer.content)


def failure_of(error: httpx.TransportError) -> Failure:
    return Failure(error, sent=not isinstance(error, NOT_SENT))


def context_of(config: Config) -> Context:
    return Context(retry=RetryPolicy(max_retries=config.max_retries))


class SyncDriver:
    """Runs operations to completion, blocking."""

    def __init__(self, http: httpx.Client, config: Config) -> None:
        self.http = http
        self.context = context_of(config)
        self.timeout = config.timeout
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], float] = time.monotonic

    def run(self, op: Op[T]) -> T:
        reply: Reply = None
        while True:
            try:
                effect = op.send(reply)
            except StopIteration as stop:
                return cast(T, stop.value)
            reply = self._perform(effect)

    def _perform(self, effect: Effect) -> Reply:
        if isinstance(effect, Now):
            return self.clock()
        if isinstance(effect, Request):
            return self._send(effect)
        self.sleep(effect.seconds)
        return None

    def _send(self, request: Request) -> Response | Failure:
        try:
            answer = self.http.send(build_request(self.http, request, self.timeout))
        except httpx.TransportError as error:
            return failure_of(error)
        return response_of(answer)


class AsyncDriver:
    """Runs operations to completion, awaiting."""

    def __init__(self, http: httpx.AsyncClient, config: Config) -> None:
        self.http = http
        self.context = context_of(config)
        self.timeout = config.timeout
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.clock: Callable[[], float] = time.monotonic

    async def run(self, op: Op[T]) -> T:
        reply: Reply = None
        while True:
            try:
                effect = op.send(reply)
            except StopIteration as stop:
                return cast(T, stop.value)
            reply = await self._perform(effect)

    async def _perform(self, effect: Effect) -> Reply:
        if isinstance(effect, Now):
            return self.clock()
        if isinstance(effect, Request):
            return await self._send(effect)
        await self.sleep(effect.seconds)
        return None

    async def _send(self, request: Request) -> Response | Failure:
        try:
            answer = await self.http.send(build_request(self.http, request, self.timeout))
        except httpx.TransportError as error:
            return failure_of(error)
        return response_of(answer)
