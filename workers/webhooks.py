"""Completion webhooks: the workers send what the outbox holds, off the runs' hot path.

A loop per worker takes due deliveries (``FOR UPDATE SKIP LOCKED``, as many as it has free
slots: ``ORDINAUT_WEBHOOK_CONCURRENCY``), sends each from its own task with its own HTTP
client, and records the outcome. Nothing here holds a database connection while a receiver
answers, and nothing in the run's completion waits for it: a receiver that is slow or down
only delays its own deliveries.

Each try is signed per Standard Webhooks (:mod:`engine.webhooks`) with the owner's key and
carries the same ``webhook-id``; the body is the run as ``GET /runs/{id}`` shows it
(:func:`engine.runs.present_run`). A 2xx answer delivers it; anything else (another status,
a timeout, a refused address, no signing key yet) is tried again with exponential backoff
and jitter until 24 hours after the run ended, then the delivery is ``failed``. Receivers'
addresses pass the SSRF guard of ``http.request`` (``ORDINAUT_HTTP_ALLOW`` for private ones);
the connection goes to the address that was checked, redirects are not followed, and proxies
from the environment are not used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from engine import webhooks
from engine.clock import Clock, now_utc
from engine.errors import StoreError
from engine.runs import present_run
from engine.settings import Settings
from observability import metrics
from store import runs as runs_store
from store import webhooks as webhooks_store
from store.db import Pool
from store.webhooks import DueDelivery
from workers.tools.ssrf import AddressRefused, AllowList, Resolver, checked_address, system_resolver

log = logging.getLogger("ordinaut.webhooks")

USER_AGENT = "ordinaut-webhooks"
# A delivery taken by a worker comes due again this long after its timeout, should the
# worker die before recording the outcome.
LEASE_MARGIN_SECONDS = 30.0
MAX_ERROR_CHARS = 500
_EXCERPT_BYTES = 200


@dataclass(frozen=True)
class Outcome:
    """What one try gave: the answer's status (None: no answer) and why it failed."""

    delivered: bool
    http_status: int | None = None
    error: str | None = None


@dataclass
class WebhookSender:
    """The delivery loop of one worker (see the module docstring)."""

    settings: Settings
    pool: Pool
    allow: AllowList = field(default_factory=AllowList)
    resolve: Resolver = system_resolver
    clock: Clock = field(default=now_utc)

    def __post_init__(self) -> None:
        self._wake = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()
        # Receivers' URLs are agents' URLs: no keep-alive (a pooled connection must never
        # serve another host name), no proxies from the environment, no redirects.
        self._client = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def wake(self) -> None:
        """Deliveries were queued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Forever: take due deliveries for the free slots and send them."""
        while True:
            self._wake.clear()
            free = self.settings.webhook_concurrency - len(self._sending)
            taken = await self._take(free) if free > 0 else 0
            if taken and taken == free:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_seconds)

    async def aclose(self, grace: float) -> None:
        """Let deliveries under way finish for up to ``grace`` seconds, then stop them
        (their lease runs out and another worker tries again) and close the client."""
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=grace)
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self._client.aclose()

    async def _take(self, limit: int) -> int:
        lease = self.settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
        try:
            async with self.pool.connection() as conn:
                due = await webhooks_store.lease_due_deliveries(
                    conn, limit=limit, lease_seconds=lease
                )
                rows = await runs_store.get_runs(conn, [d.run_id for d in due])
        except StoreError as exc:
            log.warning("could not take webhook deliveries: %s", exc.message)
            return 0
        runs = {row["id"]: row for row in rows}
        for delivery in due:
            row = runs.get(delivery.run_id)
            payload = webhooks.body(present_run(row)) if row is not None else None
            task = asyncio.create_task(self._deliver(delivery, payload))
            self._sending.add(task)
            task.add_done_callback(self._sent)
        return len(due)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._wake.set()  # a slot is free

    async def _deliver(self, delivery: DueDelivery, payload: bytes | None) -> None:
        if payload is None:
            outcome = Outcome(False, error="the run no longer exists (pruned)")
        elif delivery.secret is None:
            outcome = Outcome(
                False, error="the agent has no signing secret: POST /agents/me/webhook-secret"
            )
        else:
            keys = [delivery.secret]
            if delivery.previous_secret is not None:
                keys.append(delivery.previous_secret)
            outcome = await self._send(delivery, keys, payload)
        await self._record(delivery, outcome, give_up=payload is None)

    async def _send(self, delivery: DueDelivery, keys: Sequence[bytes], payload: bytes) -> Outcome:
        timeout = self.settings.webhook_timeout_seconds
        try:
            async with asyncio.timeout(timeout + 1):  # name resolution included
                return await self._post(delivery, keys, payload, timeout)
        except TimeoutError:
            return Outcome(False, error=f"no answer within {timeout:g}s")
        except Exception as exc:  # a bug here must not leave the delivery to its lease
            log.exception("webhook delivery %s crashed", delivery.id)
            return Outcome(False, error=f"internal error: {type(exc).__name__}: {exc}")

    async def _post(
        self, delivery: DueDelivery, keys: Sequence[bytes], payload: bytes, seconds: float
    ) -> Outcome:
        try:
            url = httpx.URL(delivery.url)
            host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
            if url.scheme not in ("http", "https") or not host:
                return Outcome(False, error="the webhook URL is not http(s)://host/...")
            address = await checked_address(host, port, self.allow, self.resolve)
        except AddressRefused as exc:
            return Outcome(False, error=str(exc))
        except (httpx.InvalidURL, ValueError) as exc:
            return Outcome(False, error=f"invalid webhook URL: {exc}")
        timestamp = int(self.clock().timestamp())
        headers = webhooks.headers(keys, delivery.id, timestamp, payload)
        # Connect to the address that was checked (DNS rebinding); Host and SNI keep the name.
        headers["Host"] = url.netloc.decode("ascii")
        request = self._client.build_request(
            "POST",
            url.copy_with(host=str(address)),
            content=payload,
            headers=headers,
            timeout=httpx.Timeout(seconds),
            extensions={"sni_hostname": host} if url.scheme == "https" else {},
        )
        return await self._exchange(request, seconds)

    async def _exchange(self, request: httpx.Request, seconds: float) -> Outcome:
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            return Outcome(False, error=f"no answer within {seconds:g}s")
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}")
        try:
            if 200 <= response.status_code < 300:
                return Outcome(True, http_status=response.status_code)
            excerpt = await _excerpt(response)
            error = f"HTTP {response.status_code}" + (f": {excerpt}" if excerpt else "")
            return Outcome(False, http_status=response.status_code, error=error)
        finally:
            await response.aclose()

    async def _record(self, delivery: DueDelivery, outcome: Outcome, *, give_up: bool) -> None:
        retry_at: datetime | None = None
        if outcome.delivered:
            status = "delivered"
        else:
            retry_at = None if give_up else self._next_try(delivery)
            status = "pending" if retry_at is not None else "failed"
        error = None if outcome.error is None else outcome.error[:MAX_ERROR_CHARS]
        try:
            async with self.pool.connection() as conn:
                await webhooks_store.record_outcome(
                    conn,
                    delivery_id=delivery.id,
                    attempts=delivery.attempts,
                    status=status,
                    retry_at=retry_at,
                    http_status=outcome.http_status,
                    error=error,
                )
        except StoreError as exc:  # the lease runs out and the delivery is tried again
            log.warning("could not record webhook delivery %s: %s", delivery.id, exc.message)
            return
        shown = {"delivered": "delivered", "pending": "retrying", "failed": "failed"}[status]
        metrics.child(metrics.WEBHOOK_DELIVERIES, shown).inc()
        if not outcome.delivered:
            log.log(
                logging.WARNING if status == "failed" else logging.INFO,
                "webhook delivery %s try %d %s: %s",
                delivery.id,
                delivery.attempts,
                "given up" if status == "failed" else "failed, retrying",
                error,
                extra={"run_id": str(delivery.run_id)},
            )

    def _next_try(self, delivery: DueDelivery) -> datetime | None:
        return webhooks.next_try_at(
            attempts=delivery.attempts,
            created_at=delivery.created_at,
            now=self.clock(),
            base_seconds=self.settings.webhook_retry_base_seconds,
        )


async def _excerpt(response: httpx.Response) -> str:
    """The start of an error answer's body, for the delivery's ``last_error``."""
    body = bytearray()
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _EXCERPT_BYTES:
                break
    return bytes(body[:_EXCERPT_BYTES]).decode("utf-8", errors="replace").strip()
