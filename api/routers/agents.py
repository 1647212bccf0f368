"""``/agents``: who am I (agent management lives here too)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Caller, Conn
from api.schemas import Agent, ErrorResponse
from engine.errors import NotFound
from store import agents as agents_store

router = APIRouter(prefix="/agents", tags=["agents"])


@router.get(
    "/me",
    response_model=Agent,
    summary="The calling agent and its scopes (any valid token)",
    responses={401: {"model": ErrorResponse}},
)
async def me(principal: Caller, conn: Conn) -> Any:
    agent = await agents_store.get_live_agent_by_name(conn, principal.name)
    if agent is None:
        raise NotFound("agent not found")
    return agent
