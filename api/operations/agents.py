"""Agent operations (admin): create an agent with its first token, delete one, issue a token,
make a webhook signing secret.

Tokens are random (256 bits), returned once by the operation that creates them, and stored
only as SHA-256 digests. Deleting an agent revokes its tokens in the same statement. The
last live agent holding ``admin`` can be neither deleted nor stripped of ``admin`` (409), so
an installation cannot lock itself out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from engine import webhooks
from engine.errors import Conflict, NotFound
from engine.quotas import Quotas, effective_quotas, overrides_of
from engine.tokens import SCOPES, display_prefix, generate_token, hash_token
from store import agents as agents_store
from store import webhooks as webhooks_store
from store.db import Connection, Row

_AGENT_FIELDS = (
    "id",
    "name",
    "created_at",
    "updated_at",
    "deleted_at",
    "webhook_url",
    "webhook_secret_created_at",
)


def agent_view(row: Row, tokens: list[Row] | None = None, *, defaults: Quotas) -> dict[str, Any]:
    """An agent as the API shows it (scopes in the documented order), with the quotas that
    apply (``defaults``: those of the settings, for agents without their own)."""
    agent = {key: row[key] for key in _AGENT_FIELDS}
    agent["scopes"] = ordered_scopes(row["scopes"])
    agent["quotas"] = effective_quotas(row, defaults).as_dict()
    agent["quota_overrides"] = overrides_of(row)
    if tokens is not None:
        agent["tokens"] = tokens
    return agent


def ordered_scopes(scopes: Sequence[str]) -> list[str]:
    """Scopes without duplicates, in the documented order."""
    return [scope for scope in SCOPES if scope in set(scopes)]


async def create_agent(
    conn: Connection, *, name: str, scopes: Sequence[str], defaults: Quotas
) -> dict[str, Any]:
    """A new agent and its first token (``token``, shown this once); 409 for a taken name."""
    async with conn.transaction():
        row = await agents_store.insert_agent(conn, name=name, scopes=ordered_scopes(scopes))
        token = await _issue_token(conn, row["id"])
    return {**agent_view(row, defaults=defaults), "token": token}


async def delete_agent(conn: Connection, agent_id: UUID) -> None:
    """Soft-delete a live agent; its tokens (and console sessions) stop working at once."""
    async with conn.transaction():
        await keep_an_admin(conn, agent_id)
        deleted = await agents_store.delete_agent(conn, agent_id)
    if not deleted:
        raise NotFound(f"agent {agent_id} not found")


async def issue_token(
    conn: Connection, agent_id: UUID, *, keep_existing: bool, defaults: Quotas
) -> dict[str, Any]:
    """A new token for a live agent (``token``, shown once); unless ``keep_existing``, the
    agent's other tokens are revoked in the same transaction (rotation)."""
    async with conn.transaction():
        row = await agents_store.get_agent(conn, agent_id)
        if row is None:
            raise NotFound(f"agent {agent_id} not found")
        if not keep_existing:
            await agents_store.revoke_tokens(conn, agent_id)
        token = await _issue_token(conn, agent_id)
    return {**agent_view(row, defaults=defaults), "token": token}


async def new_webhook_secret(
    conn: Connection, agent_id: UUID, *, keep_previous: bool = False
) -> dict[str, Any]:
    """A new signing key for the agent; its ``whsec_`` form is answered and never again.

    The previous key stops signing at once, or, with ``keep_previous``, signs every delivery
    too for ``webhooks.PREVIOUS_KEY_OVERLAP`` (a second signature), so receivers switch
    unhurried.
    """
    key, shown = webhooks.new_secret()
    keep = webhooks.PREVIOUS_KEY_OVERLAP.total_seconds() if keep_previous else 0.0
    row = await webhooks_store.replace_secret(conn, agent_id, key, keep_previous_seconds=keep)
    return {
        "secret": shown,
        "created_at": row["created_at"],
        "agent_id": agent_id,
        "previous_valid_until": row["previous_until"],
    }


async def _issue_token(conn: Connection, agent_id: UUID) -> str:
    token = generate_token()
    await agents_store.insert_token(
        conn, agent_id=agent_id, token_hash=hash_token(token), prefix=display_prefix(token)
    )
    return token


async def keep_an_admin(conn: Connection, agent_id: UUID) -> None:
    """409 when ``agent_id`` is the last live admin (call inside the transaction that
    removes its admin scope or deletes it)."""
    await agents_store.lock_admins(conn)
    target = await agents_store.get_agent(conn, agent_id)
    if target is None or "admin" not in target["scopes"]:
        return
    if await agents_store.count_other_admins(conn, agent_id) == 0:
        raise Conflict("this is the last live agent with the 'admin' scope")
