"""Creating objects on an agent's behalf: who the owner is, and idempotent creation by
``dedupe_key`` (DESIGN section 5)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from api.deps import Principal
from engine.errors import PermissionDenied, Problem, ValidationFailed
from store import agents as agents_store
from store import idempotency as idempotency_store
from store import tasks as tasks_store
from store.db import Connection, Row


async def resolve_owner(conn: Connection, created_by: str | None, principal: Principal) -> UUID:
    """The owner of a new task: the caller, or (admin only) the live agent ``created_by``
    names; 403 for a non-admin naming someone else, 422 for an id that is no live agent."""
    if created_by is None:
        return principal.agent_id
    try:
        owner = UUID(created_by)
    except ValueError:
        raise ValidationFailed([Problem("$.created_by", "not an agent id", "uuid")]) from None
    if owner == principal.agent_id:
        return owner
    if not principal.is_admin:
        raise PermissionDenied("created_by other than yourself needs the 'admin' scope")
    if await agents_store.get_agent(conn, owner) is None:
        raise ValidationFailed([Problem("$.created_by", "no live agent has this id", "agent")])
    return owner


async def owner_scopes(conn: Connection, document: Any, principal: Principal) -> frozenset[str]:
    """The scopes of the agent that will own the task ``document`` describes: the caller's,
    or those of the agent an admin names in ``created_by`` (an invalid or unknown
    ``created_by`` is refused later by :func:`resolve_owner`)."""
    created_by = document.get("created_by") if isinstance(document, dict) else None
    if not isinstance(created_by, str) or not principal.is_admin:
        return principal.scopes
    return await scopes_of(conn, created_by, principal)


async def scopes_of(conn: Connection, agent_id: UUID | str, principal: Principal) -> frozenset[str]:
    """The current scopes of ``agent_id`` (none when it is deleted or unknown)."""
    try:
        owner = agent_id if isinstance(agent_id, UUID) else UUID(agent_id)
    except ValueError:
        return frozenset()
    if owner == principal.agent_id:
        return principal.scopes
    row = await agents_store.get_agent(conn, owner)
    return frozenset(row["scopes"]) if row is not None else frozenset()


async def create_task_once(
    conn: Connection,
    *,
    owner: UUID,
    dedupe_key: str | None,
    dedupe_window_seconds: int,
    insert: Callable[[], Awaitable[Row]],
) -> tuple[Row, bool]:
    """``(task, created)``: the result of ``insert()``, or the owner's existing task with the
    same ``dedupe_key`` (created within ``dedupe_window_seconds``; 0 = while it is not
    canceled) and ``created = False``.

    Race-safe: the check and the insert run in one transaction holding an advisory lock on
    (owner, key), so two concurrent creates with one key yield one task.
    """
    if dedupe_key is None:
        return await insert(), True
    async with conn.transaction():
        await idempotency_store.lock_dedupe_key(conn, owner=owner, key=dedupe_key)
        existing = await idempotency_store.find_dedupe_match(
            conn, owner=owner, key=dedupe_key, window_seconds=dedupe_window_seconds
        )
        if existing is None:
            return await insert(), True
        task = await tasks_store.get_task(conn, existing, owner=None)
        assert task is not None  # the lock is held and the row was just seen
        return task, False
