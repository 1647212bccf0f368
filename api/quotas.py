"""Per-agent quota checks of the API (engine.quotas): each runs inside the transaction that
inserts, holding the agent's quota lock, so two concurrent requests cannot both take the
last place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from engine.errors import QuotaExceeded
from engine.quotas import default_quotas as defaults_from
from engine.quotas import effective_quotas, quota_message
from engine.settings import Settings
from store import quotas as quotas_store
from store.db import Connection

Counter = Callable[[Connection, UUID], Awaitable[int]]


async def check_active_tasks(conn: Connection, agent_id: UUID, settings: Settings) -> None:
    """429 when the agent already has as many active or paused tasks as its quota."""
    await _check(conn, agent_id, settings, "active_tasks", quotas_store.count_active_tasks)


async def check_queued_runs(conn: Connection, agent_id: UUID, settings: Settings) -> None:
    """429 when the agent already has as many runs waiting as its quota."""
    await _check(conn, agent_id, settings, "queued_runs", quotas_store.count_queued_runs)


async def _check(
    conn: Connection, agent_id: UUID, settings: Settings, name: str, count: Counter
) -> None:
    await quotas_store.lock_agent(conn, agent_id)
    row = await quotas_store.agent_quotas(conn, agent_id)
    limit = getattr(effective_quotas(row, defaults_from(settings)), name)
    found = await count(conn, agent_id)
    if found >= limit:
        message = quota_message(name, limit, agent_id=agent_id, found=found)
        raise QuotaExceeded(message, quota=name, limit=limit)
