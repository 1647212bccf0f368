"""``POST /events``: publish a topic; every matching active event task gets a run."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, status
from pydantic import BaseModel

from api.body import json_body, json_body_openapi
from api.deps import AppSettings, Conn, EventsPublish
from api.idempotency import IdempotencyKey
from api.responses import FANOUT_EXCEEDED, IDEMPOTENCY_CONFLICT
from engine.catalog import schema_problems
from engine.errors import Problem, ValidationFailed
from engine.schedules.events import MAX_LENGTH, TopicError, parse_topic
from store import events as events_store

router = APIRouter(prefix="/events", tags=["events"])

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topic": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_LENGTH,
            "description": "Dot-separated segments of letters, digits, _ and - (no wildcards).",
        },
        "payload": {
            "description": "Any JSON value (default {}); pipelines read it as ${event.payload...}."
        },
    },
    "required": ["topic"],
    "additionalProperties": False,
}


class QueuedRun(BaseModel):
    task_id: UUID
    run_id: UUID


class EventPublished(BaseModel):
    event_id: UUID
    runs: list[QueuedRun]


@router.post(
    "",
    operation_id="events_publish",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventPublished,
    summary="Publish an event (scope events:publish)",
    description="Queues one run (trigger `event`) for every **active** event task whose "
    "pattern matches `topic` (`*` matches exactly one segment). An agent's events reach its "
    "own tasks; an admin's reach every agent's. The run's template context `event` is "
    "`{id, topic, payload, published_at}`, so pipelines read `${event.payload.x}`.",
    responses={**IDEMPOTENCY_CONFLICT, **FANOUT_EXCEEDED},
    openapi_extra=json_body_openapi(
        EVENT_SCHEMA,
        {"topic": "orders.eu.created", "payload": {"order_id": 42}},
        name="EventCreate",
    ),
)
async def publish(
    request: Request,
    principal: EventsPublish,
    idempotency: IdempotencyKey,
    conn: Conn,
    settings: AppSettings,
) -> Any:
    body = await json_body(request)
    problems = schema_problems(EVENT_SCHEMA, body)
    if problems:
        raise ValidationFailed(problems)
    try:
        topic = parse_topic(body["topic"])
    except TopicError as exc:
        raise ValidationFailed([Problem("$.topic", str(exc), "topic")]) from None
    event_id, runs = await events_store.publish_event(
        conn,
        topic=topic,
        payload=body.get("payload", {}),
        published_by=principal.agent_id,
        owner_filter=principal.owner_filter,
        fanout_limit=settings.quota_event_fanout,
    )
    return {"event_id": event_id, "runs": runs}
