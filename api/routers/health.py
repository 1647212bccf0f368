"""Liveness, readiness and Prometheus metrics (no authentication)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from engine.errors import first_line
from store import migrate
from store.db import translated_errors

router = APIRouter(tags=["health"])


_INSTANCE = Field(
    default=None,
    description="`ORDINAUT_INSTANCE_ID` of this process (null when unset): tells processes "
    "behind one address apart; `ordinaut up` checks with it that the API answering is its own.",
)


class Liveness(BaseModel):
    status: Literal["ok"]
    instance: str | None = _INSTANCE


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    reason: str = Field(
        description="The migration head when ready; else why not (database, migrations)."
    )
    instance: str | None = _INSTANCE


@router.get(
    "/health",
    operation_id="health_live",
    response_model=Liveness,
    summary="Liveness: the process answers",
)
async def health(request: Request) -> dict[str, str | None]:
    return {"status": "ok", "instance": request.app.state.settings.instance_id}


@router.get(
    "/health/ready",
    operation_id="health_ready",
    response_model=Readiness,
    summary="Readiness: database reachable and migrations at head (else 503)",
    responses={503: {"model": Readiness, "description": "Not ready; `reason` says why."}},
)
async def ready(request: Request) -> Any:
    instance = request.app.state.settings.instance_id
    try:
        async with translated_errors(), request.app.state.pool.connection(timeout=2) as conn:
            at_head, reason = await migrate.is_at_head(conn)
    except Exception as exc:  # any failure to reach the database means "not ready"
        reason, at_head = first_line(exc), False
    if not at_head:
        body = {"status": "unavailable", "reason": reason, "instance": instance}
        return JSONResponse(body, status_code=503)
    return {"status": "ready", "reason": reason, "instance": instance}


@router.get(
    "/metrics",
    operation_id="metrics_get",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
