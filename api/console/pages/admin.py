"""For admins: agents (create, revoke, rotate a token — a new token is shown once) and the
audit log. Each needs ``admin``, as its REST call does."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.console.mirror import (
    AGENT_CREATE,
    AGENT_DELETE,
    AGENT_READ,
    AGENT_TOKEN,
    AGENTS_LIST,
    AUDIT_LIST,
    Done,
    record,
)
from api.console.render import page, redirect
from api.console.routing import (
    Form,
    Signed,
    act,
    allowed,
    first,
    posted_form,
    query_string,
    router,
)
from api.deps import Conn
from api.operations import agents as operations
from api.pagination import bigint, list_page
from api.schemas import AgentCreate
from engine.errors import Conflict, NotFound, Problem, ValidationFailed
from engine.quotas import default_quotas
from engine.tokens import SCOPES
from store import agents as agents_store
from store import audit as audit_store
from store.db import Row

PAGE_SIZE = 50
Choice = Annotated[str | None, Query(max_length=200)]


@router.get("/agents")
async def agents_page(
    request: Request, session: Signed, conn: Conn, deleted: Choice = None, cursor: Choice = None
) -> Response:
    allowed(request, session, AGENTS_LIST)
    include_deleted = deleted == "1"
    listed = await list_page(
        lambda n, after: agents_store.list_agents(
            conn, include_deleted=include_deleted, name=None, limit=n, after=after
        ),
        limit=PAGE_SIZE,
        cursor=cursor or None,
        key="created_at",
    )
    defaults = default_quotas(request.app.state.settings)
    agents = [operations.agent_view(row, defaults=defaults) for row in listed["items"]]
    tokens = await agents_store.list_tokens(conn, [a["id"] for a in agents])
    filters = {"deleted": "1" if include_deleted else None}
    return page(
        request,
        "agents.html",
        session,
        agents=agents,
        tokens=tokens,
        last_used={agent_id: _last_used(rows) for agent_id, rows in tokens.items()},
        scopes=SCOPES,
        include_deleted=include_deleted,
        next_url=(
            "/ui/agents?" + query_string({**filters, "cursor": listed["next_cursor"]})
            if listed["next_cursor"]
            else None
        ),
        can_create=AGENT_CREATE.allows(request.app, session.principal),
    )


def _last_used(tokens: list[Row]) -> datetime | None:
    used = [t["last_used_at"] for t in tokens if t["last_used_at"] is not None]
    return max(used, default=None)


@router.post("/agents")
async def create_agent(request: Request, session: Signed, conn: Conn) -> Response:
    form = await posted_form(request, session, AGENT_CREATE)
    try:
        body = _agent_body(form)
        async with conn.transaction():
            created = await operations.create_agent(
                conn,
                name=body.name,
                scopes=body.scopes,
                defaults=default_quotas(request.app.state.settings),
            )
            done = [Done(str(created["id"]), 201)]
            await record(conn, request, AGENT_CREATE, session.principal, done)
    except (ValidationFailed, Conflict) as exc:
        return redirect("/ui/agents", ("error", exc.message))
    return page(request, "token_shown.html", session, agent=created, created=True)


def _agent_body(form: Form) -> AgentCreate:
    """The form as the body of ``POST /agents``, validated by the same model."""
    try:
        return AgentCreate.model_validate(
            {"name": first(form, "name") or "", "scopes": form.get("scope", [])}
        )
    except ValidationError as exc:
        problems = [
            Problem("$." + ".".join(str(p) for p in e["loc"]), e["msg"], e["type"])
            for e in exc.errors()
        ]
        raise ValidationFailed(problems) from None


@router.get("/agents/{agent_id}")
async def agent_page(request: Request, agent_id: UUID, session: Signed, conn: Conn) -> Response:
    allowed(request, session, AGENT_READ)
    row = await agents_store.get_agent(conn, agent_id, include_deleted=True)
    if row is None:
        raise NotFound(f"agent {agent_id} not found")
    tokens = await agents_store.list_tokens(conn, [agent_id])
    return page(
        request,
        "agent.html",
        session,
        agent=operations.agent_view(
            row, tokens[agent_id], defaults=default_quotas(request.app.state.settings)
        ),
        is_self=agent_id == session.principal.agent_id,
    )


@router.post("/agents/{agent_id}/rotate")
async def rotate(request: Request, agent_id: UUID, session: Signed, conn: Conn) -> Response:
    form = await posted_form(request, session, AGENT_TOKEN)
    keep = first(form, "keep_existing") == "1"
    async with conn.transaction():
        issued = await operations.issue_token(
            conn, agent_id, keep_existing=keep, defaults=default_quotas(request.app.state.settings)
        )
        await record(conn, request, AGENT_TOKEN, session.principal, [Done(str(agent_id), 201)])
    return page(request, "token_shown.html", session, agent=issued, created=False, kept=keep)


@router.post("/agents/{agent_id}/revoke")
async def revoke(request: Request, agent_id: UUID, session: Signed, conn: Conn) -> Response:
    await posted_form(request, session, AGENT_DELETE)

    async def work() -> tuple[str, str | None]:
        async with conn.transaction():
            await operations.delete_agent(conn, agent_id)
            done = [Done(str(agent_id), 204)]
            await record(conn, request, AGENT_DELETE, session.principal, done)
        return "Agent deleted: its tokens and console sessions stopped working.", "/ui/agents"

    return await act(f"/ui/agents/{agent_id}", work)


@router.get("/audit")
async def audit_page(
    request: Request,
    session: Signed,
    conn: Conn,
    actor: Choice = None,
    action: Choice = None,
    subject_type: Choice = None,
    subject_id: Choice = None,
    cursor: Choice = None,
) -> Response:
    allowed(request, session, AUDIT_LIST)
    actor_id = _actor(actor)
    action = (action or "").strip() or None
    prefix = action[:-1] if action and action.endswith(".*") else None
    listed = await list_page(
        lambda n, after: audit_store.list_entries(
            conn,
            actor_id=actor_id,
            action=None if prefix is not None else action,
            action_prefix=prefix,
            subject_type=(subject_type or "").strip() or None,
            subject_id=(subject_id or "").strip() or None,
            limit=n,
            after=after,
        ),
        limit=PAGE_SIZE,
        cursor=cursor or None,
        key="at",
        id_type=bigint,
    )
    filters = {
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
    }
    agents = await agents_store.list_agents(
        conn, include_deleted=True, name=None, limit=200, after=None
    )
    return page(
        request,
        "audit.html",
        session,
        entries=listed["items"],
        filters=filters,
        agents=agents,
        next_url=(
            "/ui/audit?" + query_string({**filters, "cursor": listed["next_cursor"]})
            if listed["next_cursor"]
            else None
        ),
        first_url="/ui/audit?" + query_string(filters) if cursor else None,
    )


def _actor(value: str | None) -> UUID | None:
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise ValidationFailed([], "the actor filter is not an agent id") from None
