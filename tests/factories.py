"""Rows for store-level tests, created through the real store functions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from engine.catalog import file_catalog
from engine.expansion import expansion_start
from engine.tokens import display_prefix, generate_token, hash_token
from engine.validation import validate_task
from store import agents as agents_store
from store import tasks as tasks_store
from store.db import Connection, connect
from tests.support import echo_task


async def make_agent(conn: Connection, *scopes: str, name: str | None = None) -> tuple[dict, str]:
    """An agent with ``scopes`` and a token for it."""
    agent = await agents_store.insert_agent(
        conn, name=name or f"agent-{uuid.uuid4().hex[:8]}", scopes=list(scopes or ["admin"])
    )
    token = generate_token()
    await agents_store.insert_token(
        conn, agent_id=agent["id"], token_hash=hash_token(token), prefix=display_prefix(token)
    )
    return agent, token


async def make_task(
    conn: Connection, owner: Any, *, now: datetime | None = None, **document: Any
) -> dict:
    """A validated task owned by ``owner``, created at ``now`` (default: the current time;
    default document: :func:`echo_task`)."""
    now = now or datetime.now(UTC)
    spec = validate_task(
        echo_task(**document), file_catalog(), default_timezone="UTC", now=now, owner_scopes=None
    )
    start = expansion_start(spec.schedule, now)
    return await tasks_store.insert_task(
        conn, document=spec.document(), created_by=owner, start=start
    )


def event_task(**overrides: Any) -> dict:
    """A task document that never runs on its own (an event task), for queue tests."""
    return {"schedule_kind": "event", "schedule_expr": "tests.never", **overrides}


async def insert_dead_run(database_url: str, task_id: str, agent_id: str) -> str:
    """A run that ended dead a minute ago (the in-process API has no workers)."""
    run_id = str(uuid.uuid4())
    finished = datetime.now(UTC) - timedelta(minutes=1)
    conn = await connect(database_url)
    async with conn:
        await conn.execute(
            """
            INSERT INTO runs (id, task_id, agent_id, trigger, status, scheduled_for, queued_at,
                              attempt, started_at, finished_at, duration_ms, steps, error)
            VALUES (%s, %s, %s, 'manual', 'dead', %s, %s, 1, %s, %s, 5, %s, %s)
            """,
            (
                run_id,
                task_id,
                agent_id,
                finished,
                finished,
                finished,
                finished,
                Jsonb([]),
                Jsonb({"step_id": "e", "type": "tool_error", "message": "boom", "retryable": True}),
            ),
        )
    return run_id
