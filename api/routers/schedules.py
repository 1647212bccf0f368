"""``POST /schedules/preview``: a schedule's next occurrences, without saving anything."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from api.body import json_body, json_body_openapi
from api.deps import AppSettings, TasksRead
from api.responses import INVALID
from api.routers.task_lifecycle import Preview
from engine.catalog import schema_problems
from engine.clock import now_utc
from engine.errors import ValidationFailed
from engine.schedules import SCHEDULE_KINDS, parse_schedule
from engine.schedules.preview import MAX_COUNT, parse_after, preview

router = APIRouter(prefix="/schedules", tags=["schedules"])

PREVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "schedule_kind": {"enum": list(SCHEDULE_KINDS)},
        "schedule_expr": {"type": "string", "minLength": 1, "maxLength": 10000},
        "timezone": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "IANA zone (default: the server's ORDINAUT_DEFAULT_TIMEZONE).",
        },
        "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": 10},
        "after": {
            "type": "string",
            "maxLength": 64,
            "description": "ISO 8601, exclusive; default now; may lie in the past; naive means "
            "the zone's wall-clock time.",
        },
    },
    "required": ["schedule_kind", "schedule_expr"],
    "additionalProperties": False,
}
EXAMPLE = {
    "schedule_kind": "rrule",
    "schedule_expr": "DTSTART;TZID=America/New_York:19970902T090000\nRRULE:FREQ=DAILY;COUNT=10",
    "timezone": "America/New_York",
    "count": 10,
    "after": "1997-01-01T00:00:00Z",
}


@router.post(
    "/preview",
    operation_id="schedules_preview",
    response_model=Preview,
    summary="Preview a schedule's occurrences (scope tasks:read)",
    description="The next `count` (≤ 1000) occurrences strictly after `after`, as ISO 8601 "
    "with the zone's offset. Nothing is saved. An invalid schedule, zone or `after` is a 422 "
    "naming the field; a schedule that never fires (again) answers an empty list, and so "
    "does an event topic (events have no occurrences in time). For an RRULE without DTSTART "
    "the DTSTART is now, truncated to the minute, as for a task created now.",
    responses=INVALID,
    openapi_extra=json_body_openapi(PREVIEW_SCHEMA, EXAMPLE, name="SchedulePreviewRequest"),
)
async def preview_schedule(request: Request, principal: TasksRead, settings: AppSettings) -> Any:
    body = await json_body(request)
    problems = schema_problems(PREVIEW_SCHEMA, body)
    if problems:
        raise ValidationFailed(problems)
    now = now_utc()
    timezone = body.get("timezone") or settings.default_timezone
    schedule = parse_schedule(body["schedule_kind"], body["schedule_expr"], timezone, anchor=now)
    after = parse_after(body["after"], timezone, "$.after") if "after" in body else now
    count = body.get("count", 10)
    # In a thread: the event loop keeps serving other requests while a slow rule is expanded.
    occurrences = await asyncio.to_thread(preview, schedule, timezone, after=after, count=count)
    return {"occurrences": occurrences}
