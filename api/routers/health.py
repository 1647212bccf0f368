"""Liveness, readiness and Prometheus metrics (no authentication)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from store import migrate
from store.db import translated_errors

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    reason: str = Field(
        description="The migration head when ready; else why not (database, migrations)."
    )


@router.get(
    "/health",
    operation_id="health_live",
    response_model=Liveness,
    summary="Liveness: the process answers",
)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    operation_id="health_ready",
    response_model=Readiness,
    summary="Readiness: database reachable and migrations at head (else 503)",
    responses={503: {"model": Readiness, "description": "Not ready; `reason` says why."}},
)
async def ready(request: Request) -> Any:
    try:
        async with translated_errors(), request.app.state.pool.connection(timeout=2) as conn:
            at_head, reason = await migrate.is_at_head(conn)
    except Exception as exc:  # any failure to reach the database means "not ready"
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    if not at_head:
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return {"status": "ready", "reason": reason}


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
