"""The ``Idempotency-Key`` request header, for any route that creates something.

Same key + same request (method, route and body; JSON bodies compared canonically) by the
same agent → the first answer is replayed (same status and body, plus the header
``Idempotent-Replayed: true``) and nothing runs again. Same key + a different body → 409.
A key whose first request is still running → 409 (retry shortly). Only successful (2xx)
answers are remembered: after a 4xx the key is free again, so a corrected request may
reuse it. Keys are remembered for 24 hours per (agent, route).

How: before the handler runs, the dependency *claims* the key with one ``INSERT ... ON
CONFLICT`` (two concurrent requests with one key cannot both win); once the response is
final, a response hook (:func:`api.audit.add_response_hook`) stores the answer or releases
the claim, in the audit entry's transaction. A claim left by a crashed process is taken over
after :data:`STALE_CLAIM_SECONDS`.

Use: add a parameter ``idempotency: IdempotencyKey`` to the route, *after* its scope
parameter (dependencies are solved in order, so a caller without the scope gets its 403
before any key is claimed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute

from api.audit import add_response_hook
from api.deps import Caller, Conn
from engine.errors import Conflict
from store import idempotency as idempotency_store
from store.db import Connection

TTL_SECONDS = idempotency_store.TTL_SECONDS
STALE_CLAIM_SECONDS = 60.0
HEADER = "Idempotency-Key"


class IdempotentReplay(Exception):
    """Answer with a stored response instead of running the handler again."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"replay of a {status} answer")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Claim:
    """A key this request owns until its response is final."""

    agent_id: UUID
    route: str
    key: str

    async def finish(self, conn: Connection, status: int, body: bytes | None) -> None:
        """Store a 2xx answer for replay; release the claim otherwise."""
        stored = _answer(body) if 200 <= status < 300 else None
        if stored is not None:
            await idempotency_store.save_response(
                conn,
                agent_id=self.agent_id,
                route=self.route,
                key=self.key,
                status=status,
                body=stored[0],
            )
            return
        await idempotency_store.release_key(
            conn, agent_id=self.agent_id, route=self.route, key=self.key
        )


def _answer(body: bytes | None) -> tuple[Any] | None:
    """The response body to store (a 1-tuple, as the body may be JSON null or empty), or
    None when it cannot be replayed (not captured, not JSON)."""
    if body is None:
        return None
    if not body:
        return (None,)
    try:
        return (json.loads(body),)
    except (ValueError, RecursionError):
        return None


def request_hash(method: str, route: str, body: bytes) -> bytes:
    """What "the same request" means: method, route template and body (JSON compared
    after sorting keys and dropping insignificant whitespace)."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, RecursionError):
        canonical = body
    return hashlib.sha256(f"{method} {route}\n".encode() + canonical).digest()


async def idempotency_key(
    request: Request,
    principal: Caller,
    conn: Conn,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Makes the call safe to retry: a repeat with the same key and body "
            "replays the first answer (header `Idempotent-Replayed: true`); the same key with "
            "a different body is a 409. Keys are kept 24 hours per agent and route. "
            "Printable ASCII, 1..200 characters, e.g. a UUID.",
            examples=["6f1c8e52-3b7a-4d0e-9a51-0c2b8f7d4e19"],
        ),
    ] = None,
) -> Claim | None:
    """Claim the ``Idempotency-Key`` (if any) or replay/refuse (see module docstring)."""
    if key is None:
        return None
    route = request.scope.get("route")
    template = route.path if isinstance(route, APIRoute) else request.url.path
    digest = request_hash(request.method, template, await request.body())
    existing = await idempotency_store.claim_key(
        conn,
        agent_id=principal.agent_id,
        route=f"{request.method} {template}",
        key=key,
        request_hash=digest,
        ttl_seconds=TTL_SECONDS,
        stale_seconds=STALE_CLAIM_SECONDS,
    )
    if existing is None:
        claim = Claim(principal.agent_id, f"{request.method} {template}", key)
        add_response_hook(request, claim.finish)
        return claim
    if bytes(existing["request_hash"]) != digest:
        raise Conflict(f"{HEADER} {key!r} was already used with a different request")
    if existing["response_status"] == idempotency_store.IN_PROGRESS:
        raise Conflict(f"a request with {HEADER} {key!r} is still in progress; retry shortly")
    raise IdempotentReplay(existing["response_status"], existing["response_body"])


IdempotencyKey = Annotated[Claim | None, Depends(idempotency_key)]
