"""``/audit``: the audit log of every mutating call (admin). Entries are written by
:class:`api.audit.AuditMiddleware`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import Admin, Conn
from api.pagination import DEFAULT_LIMIT, CursorParam, Limit, bigint, list_page
from api.schemas import AuditPage
from store import audit as audit_store

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get(
    "",
    operation_id="audit_list",
    response_model=AuditPage,
    summary="The audit log, newest first",
    description="One entry per successful (status < 400) POST, PUT, PATCH or DELETE that "
    "changes something. Filters combine with AND.",
)
async def list_audit(
    principal: Admin,
    conn: Conn,
    actor: Annotated[UUID | None, Query(description="The acting agent's id.")] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=200,
            description="An exact action (`tasks.create`), or a prefix ending in `.*` (`tasks.*`).",
            examples=["tasks.create"],
        ),
    ] = None,
    subject_type: Annotated[
        str | None, Query(max_length=50, description="`task`, `run`, `agent`, `tool`, ...")
    ] = None,
    subject_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601).")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Any:
    prefix = action[:-1] if action is not None and action.endswith(".*") else None
    return await list_page(
        lambda n, after: audit_store.list_entries(
            conn,
            actor_id=actor,
            action=None if prefix is not None else action,
            action_prefix=prefix,
            subject_type=subject_type,
            subject_id=subject_id,
            since=since,
            until=until,
            limit=n,
            after=after,
        ),
        limit=limit,
        cursor=cursor,
        key="at",
        id_type=bigint,
    )
