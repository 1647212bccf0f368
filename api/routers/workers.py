"""``/workers``: the worker registry (infrastructure, so ``admin``: hosts and pids are the
operator's business, not an agent's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Admin, Conn
from api.schemas import Timestamp
from store import workers as workers_store

router = APIRouter(prefix="/workers", tags=["workers"])


class Worker(BaseModel):
    id: str = Field(description="The worker's id (also `worker_id` on its runs and logs).")
    host: str
    pid: int
    concurrency: int = Field(description="Runs it executes at once.")
    inflight: int = Field(description="Runs executing at its last heartbeat.")
    processed: int = Field(description="Runs it finished since it started.")
    started_at: Timestamp
    last_seen_at: Timestamp = Field(description="Its last heartbeat (about every 5 s).")
    live: bool = Field(
        description=f"Heartbeated within {workers_store.LIVE_WITHIN_SECONDS:g} s. Silent "
        "workers stay listed until the registry forgets them (three lease periods)."
    )


class WorkerPage(BaseModel):
    items: list[Worker]
    next_cursor: str | None = Field(description="Always null: the registry is one page.")


@router.get(
    "",
    operation_id="workers_list",
    response_model=WorkerPage,
    summary="The worker registry, oldest first (scope admin)",
)
async def list_workers(principal: Admin, conn: Conn) -> Any:
    return {"items": await workers_store.list_workers(conn), "next_cursor": None}
