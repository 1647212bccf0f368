"""Liveness, readiness and Prometheus metrics (no authentication)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from store import migrate
from store.db import translated_errors

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Readiness: database reachable and migrations at head (else 503)",
    responses={503: {"description": "Not ready; `reason` says why."}},
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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
