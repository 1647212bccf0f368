"""``/agents``: agents and their tokens (admin), and ``/agents/me`` (any valid token).

Tokens are random (256 bits), shown once in the 201 answer that creates them, and stored
only as SHA-256 digests. Deleting an agent revokes its tokens in the same statement; token
look-ups are not cached, so a deleted agent's or a revoked token's next request is a 401.
The last live agent holding ``admin`` can be neither deleted nor stripped of ``admin``
(409), so an installation cannot lock itself out.

Completion webhooks: an agent sets its ``webhook_url`` (``PATCH /agents/me``) and makes its
signing secret (``POST /agents/me/webhook-secret``, shown once; making another replaces it);
admins do both for any agent.

Quotas (engine.quotas): an admin sets an agent's own with ``PATCH /agents/{id}``
``{"quotas": {...}}``; every agent answer shows the ``quotas`` that apply and the agent's
``quota_overrides``. An agent cannot set its own (``PATCH /agents/me`` with ``quotas``: 403).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from api.body import json_body, json_body_openapi, model_body
from api.components import ref
from api.deps import Admin, AppSettings, Caller, Conn
from api.operations import agents as operations
from api.operations.agents import agent_view, keep_an_admin, ordered_scopes
from api.pagination import DEFAULT_LIMIT, CursorParam, Limit, list_page
from api.responses import AGENT_NOT_FOUND, error
from api.schemas import (
    Agent,
    AgentCreate,
    AgentDetail,
    AgentPage,
    AgentQuotaUpdate,
    AgentUpdate,
    AgentWithToken,
    WebhookSecret,
    WebhookSettings,
)
from engine.errors import NotFound, PermissionDenied
from engine.quotas import default_quotas
from store import agents as agents_store

KeepPrevious = Annotated[
    bool,
    Query(
        description="Let the previous secret sign every delivery too for 24 hours (a second "
        "signature), so receivers can switch to the new one without dropping a delivery."
    ),
]

router = APIRouter(prefix="/agents", tags=["agents"])

# Paths use the ``uuid`` convertor so that ``/agents/me`` never matches ``/agents/{agent_id}``
# (``PATCH /agents/me`` is a 405, not a 422 about a malformed id); an id that is no UUID
# names no agent: 404.

CONFLICT = error(
    409,
    "The name is taken by a live agent, or the change would leave no live agent with `admin`.",
)


@router.get(
    "/me",
    operation_id="agents_me",
    response_model=Agent,
    summary="The calling agent and its scopes",
    description="Any valid token may call this, whatever its scopes.",
)
async def me(principal: Caller, conn: Conn, settings: AppSettings) -> Any:
    row = await agents_store.get_agent(conn, principal.agent_id)
    if row is None:  # deleted between authentication and now
        raise NotFound("agent not found")
    return agent_view(row, defaults=default_quotas(settings))


@router.patch(
    "/me",
    operation_id="agents_update_me",
    response_model=Agent,
    summary="Set where the completion webhooks of your runs go",
    description="`webhook_url` receives a signed `run.finished` POST whenever one of your "
    "runs ends (a task's own `webhook_url` overrides it); null stops them. Deliveries are "
    "signed with your secret (`POST /agents/me/webhook-secret`). Any valid token.",
    openapi_extra=json_body_openapi(ref("WebhookSettings")),
    responses=error(403, "The body sets `quotas`: only an admin sets them (PATCH /agents/{id})."),
)
async def update_me(request: Request, principal: Caller, conn: Conn, settings: AppSettings) -> Any:
    document = await json_body(request)
    if isinstance(document, dict) and "quotas" in document:
        raise PermissionDenied(
            "an agent cannot set its own quotas: an admin sets them with PATCH /agents/{id}"
        )
    body = await model_body(request, WebhookSettings)
    row = await agents_store.update_agent(
        conn, principal.agent_id, set_webhook_url=True, webhook_url=body.webhook_url
    )
    if row is None:
        raise NotFound("agent not found")
    return agent_view(row, defaults=default_quotas(settings))


@router.post(
    "/me/webhook-secret",
    operation_id="agents_create_my_webhook_secret",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookSecret,
    summary="Make your webhook signing secret (shown once; replaces the previous one)",
    description='Answers `{"secret": "whsec_..."}` this once; the previous secret stops '
    "signing at once, or, with `keep_previous=true`, signs every delivery too for 24 hours "
    "(two space-separated signatures in `webhook-signature`; a receiver that knows either "
    "secret accepts it), so receivers move to the new secret without dropping a delivery. "
    "Verify deliveries with any Standard Webhooks library. Any valid token.",
    openapi_extra={"x-audit-action": "agents.webhook_secret.create"},
)
async def create_my_secret(
    principal: Caller, conn: Conn, keep_previous: KeepPrevious = False
) -> Any:
    return await operations.new_webhook_secret(
        conn, principal.agent_id, keep_previous=keep_previous
    )


@router.post(
    "",
    operation_id="agents_create",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentWithToken,
    summary="Create an agent and its first token",
    description="Answers the agent's fields plus `token`, shown this once.",
    responses=CONFLICT,
    openapi_extra=json_body_openapi(ref("AgentCreate")),
)
async def create_agent(
    request: Request, principal: Admin, conn: Conn, settings: AppSettings
) -> Any:
    body = await model_body(request, AgentCreate)
    return await operations.create_agent(
        conn, name=body.name, scopes=body.scopes, defaults=default_quotas(settings)
    )


@router.get(
    "", operation_id="agents_list", response_model=AgentPage, summary="List agents, newest first"
)
async def list_agents(
    principal: Admin,
    conn: Conn,
    settings: AppSettings,
    include_deleted: Annotated[bool, Query(description="Also list deleted agents.")] = False,
    name: Annotated[str | None, Query(max_length=200, description="Exact name.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Any:
    listed = await list_page(
        lambda n, after: agents_store.list_agents(
            conn, include_deleted=include_deleted, name=name, limit=n, after=after
        ),
        limit=limit,
        cursor=cursor,
        key="created_at",
    )
    defaults = default_quotas(settings)
    return {**listed, "items": [agent_view(row, defaults=defaults) for row in listed["items"]]}


@router.get(
    "/{agent_id:uuid}",
    operation_id="agents_get",
    response_model=AgentDetail,
    summary="One agent (deleted ones too) with its tokens (prefixes only)",
    responses=AGENT_NOT_FOUND,
)
async def get_agent(agent_id: UUID, principal: Admin, conn: Conn, settings: AppSettings) -> Any:
    row = await agents_store.get_agent(conn, agent_id, include_deleted=True)
    if row is None:
        raise NotFound(f"agent {agent_id} not found")
    tokens = await agents_store.list_tokens(conn, [agent_id])
    return agent_view(row, tokens[agent_id], defaults=default_quotas(settings))


@router.patch(
    "/{agent_id:uuid}",
    operation_id="agents_update",
    response_model=Agent,
    summary="Rename an agent, replace its scopes, set its quotas",
    description="Scope changes apply to the agent's very next request. `quotas` sets the "
    'named quotas (`{"active_tasks": 50}`) or resets them to the default (null); the '
    "others stay. Quota changes apply to the next check (the lease's at its next batch).",
    responses={**AGENT_NOT_FOUND, **CONFLICT},
    openapi_extra=json_body_openapi(ref("AgentUpdate")),
)
async def update_agent(
    agent_id: UUID, request: Request, principal: Admin, conn: Conn, settings: AppSettings
) -> Any:
    body = await model_body(request, AgentUpdate)
    scopes = ordered_scopes(body.scopes) if body.scopes is not None else None
    async with conn.transaction():
        if scopes is not None and "admin" not in scopes:
            await keep_an_admin(conn, agent_id)
        row = await agents_store.update_agent(
            conn,
            agent_id,
            name=body.name,
            scopes=scopes,
            set_webhook_url="webhook_url" in body.model_fields_set,
            webhook_url=body.webhook_url,
            quotas=quota_changes(body.quotas),
        )
    if row is None:
        raise NotFound(f"agent {agent_id} not found")
    return agent_view(row, defaults=default_quotas(settings))


@router.delete(
    "/{agent_id:uuid}",
    operation_id="agents_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an agent; its tokens stop working at once",
    description="The agent's tasks and runs are kept (and keep running); an admin can "
    "still list, change or cancel them.",
    responses={**AGENT_NOT_FOUND, **CONFLICT},
)
async def delete_agent(agent_id: UUID, principal: Admin, conn: Conn) -> Response:
    await operations.delete_agent(conn, agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{agent_id:uuid}/tokens",
    operation_id="agents_create_token",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentWithToken,
    summary="Issue a new token (rotation: the agent's other tokens are revoked)",
    description="By default every other token of the agent is revoked in the same "
    "transaction (rotation). With `keep_existing=true` the old tokens stay valid, for a "
    "rollover without downtime; revoke them later with another rotation.",
    responses=AGENT_NOT_FOUND,
    openapi_extra={"x-audit-action": "agents.tokens.create"},
)
async def create_token(
    agent_id: UUID,
    principal: Admin,
    conn: Conn,
    settings: AppSettings,
    keep_existing: Annotated[
        bool, Query(description="Keep the agent's current tokens valid.")
    ] = False,
) -> Any:
    return await operations.issue_token(
        conn, agent_id, keep_existing=keep_existing, defaults=default_quotas(settings)
    )


@router.post(
    "/{agent_id:uuid}/webhook-secret",
    operation_id="agents_create_webhook_secret",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookSecret,
    summary="Make an agent's webhook signing secret (shown once; replaces the previous one)",
    description="As `POST /agents/me/webhook-secret`, for any agent. Admin scope.",
    responses=AGENT_NOT_FOUND,
    openapi_extra={"x-audit-action": "agents.webhook_secret.create"},
)
async def create_secret(
    agent_id: UUID, principal: Admin, conn: Conn, keep_previous: KeepPrevious = False
) -> Any:
    if await agents_store.get_agent(conn, agent_id) is None:
        raise NotFound(f"agent {agent_id} not found")
    return await operations.new_webhook_secret(conn, agent_id, keep_previous=keep_previous)


def quota_changes(update: AgentQuotaUpdate | None) -> dict[str, int | None]:
    """The quotas a PATCH names: a value sets, null resets to the default."""
    if update is None:
        return {}
    return {name: getattr(update, name) for name in update.model_fields_set}
