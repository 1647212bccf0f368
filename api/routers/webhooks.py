"""``/webhook-deliveries``: completion webhooks that are not delivered (yet)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import Conn, RunsRead
from api.pagination import DEFAULT_LIMIT, CursorParam, Limit, list_page
from api.schemas import WebhookDeliveryPage
from store import webhooks as webhooks_store

router = APIRouter(prefix="/webhook-deliveries", tags=["webhooks"])

DeliveryStatus = Literal["pending", "delivered", "failed"]


@router.get(
    "",
    operation_id="webhook_deliveries_list",
    response_model=WebhookDeliveryPage,
    summary="Completion webhooks still pending or given up, newest first (scope runs:read)",
    description="Your runs' deliveries (an admin's: everyone's). `status` (repeatable) "
    "defaults to `pending` and `failed`; `delivered` lists the ones that arrived.",
)
async def list_deliveries(
    principal: RunsRead,
    conn: Conn,
    status: Annotated[list[DeliveryStatus] | None, Query()] = None,
    run_id: UUID | None = None,
    task_id: UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Any:
    statuses = status or ["pending", "failed"]
    return await list_page(
        lambda n, after: webhooks_store.list_deliveries(
            conn,
            owner=principal.owner_filter,
            statuses=statuses,
            run_id=run_id,
            task_id=task_id,
            limit=n,
            after=after,
        ),
        limit=limit,
        cursor=cursor,
        key="created_at",
    )
