"""``events.publish``: the builtin tool that publishes an event as the task's owner (the one
builtin that writes to the database)."""

from __future__ import annotations

import uuid
from typing import Any

from engine.catalog import TOOL_SCOPES
from engine.errors import (
    FanoutExceeded,
    StoreError,
    ToolFailed,
    ToolForbidden,
    ToolInputInvalid,
)
from engine.pipeline import CallContext
from engine.schedules.events import TopicError, parse_topic
from engine.tokens import holds_scope
from store import agents as agents_store
from store import events as events_store
from store.db import Connection, Pool
from store.jsonb import storable_json
from workers.tools.builtin import Handler


def events_publisher(pool: Pool, *, max_payload_bytes: int, fanout_limit: int) -> Handler:
    """``events.publish {topic, payload}``: publish as the task's owner and start only that
    owner's matching event tasks (even for an admin: a pipeline never starts other agents'
    tasks). Once per run and step: a retried run gets the first publication's answer. The
    owner must hold ``events:publish`` when the step runs (it may have lost it since the
    task was accepted): otherwise the step fails, not retryably, and nothing is published.
    A payload larger than ``max_payload_bytes`` (what ``POST /events`` accepts) fails the
    step, not retryably: the same payload would be refused again. So does an event matching
    more tasks than the owner's ``event_fanout`` quota (``fanout_limit``: the default for
    owners without their own)."""

    async def publish(arguments: dict[str, Any], context: CallContext) -> dict[str, Any]:
        try:
            topic = parse_topic(arguments["topic"])
        except TopicError as exc:
            raise ToolInputInvalid(f"events.publish: {exc}") from None
        payload = arguments.get("payload", {})
        _check_payload_size(payload, max_payload_bytes)
        owner = uuid.UUID(context.agent_id) if context.agent_id else None
        try:
            async with pool.connection() as conn, conn.transaction():
                await _owner_may_publish(conn, owner)
                event_id, runs = await events_store.publish_event(
                    conn,
                    topic=topic,
                    payload=payload,
                    published_by=owner,
                    owner_filter=owner,
                    fanout_limit=fanout_limit,
                    source=context.idempotency_key,  # a retried run does not publish twice
                )
        except FanoutExceeded as exc:
            raise ToolFailed(f"events.publish: {exc.message}", retryable=False) from None
        except StoreError as exc:
            raise ToolFailed(f"events.publish: {exc.message}", retryable=True) from None
        refs = [{"task_id": str(r["task_id"]), "run_id": str(r["run_id"])} for r in runs]
        return {"event_id": str(event_id), "runs": refs}

    return publish


async def _owner_may_publish(conn: Connection, owner: uuid.UUID | None) -> None:
    scope = TOOL_SCOPES["events.publish"]
    agent = await agents_store.get_agent(conn, owner) if owner is not None else None
    if agent is None or not holds_scope(agent["scopes"], scope):
        raise ToolForbidden(
            f"events.publish: the task's owner lacks the {scope!r} scope (or no longer exists)"
        )


def _check_payload_size(payload: Any, max_bytes: int) -> None:
    # Measured as the compact JSON the store writes: a pipeline must not publish more than
    # an agent could send to POST /events, whose whole body is bounded by the same figure.
    size = len(storable_json(payload).encode())
    if size > max_bytes:
        raise ToolInputInvalid(
            f"events.publish: the payload is {size} bytes of JSON, over the limit of "
            f"{max_bytes} bytes (ORDINAUT_MAX_BODY_BYTES, the POST /events body limit)"
        )
