"""The database a command runs against: ``DATABASE_URL``, or the embedded cluster under
``ORDINAUT_HOME``; migrations and the bootstrap admin; agents created from the terminal."""

from __future__ import annotations

from typing import Any

from engine.errors import Conflict, StoreError
from engine.settings import Settings
from engine.tokens import SCOPES, display_prefix, generate_token, hash_token
from ops.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError
from ops.terminal import CommandError, say
from store import agents as agents_store
from store import migrate as migrate_store
from store.db import session


def embedded(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.home, say=say)


def with_database(settings: Settings) -> Settings:
    """Settings with a database URL: ``DATABASE_URL``, else the embedded cluster (started
    when it is not running)."""
    if settings.database_url:
        return settings
    try:
        return settings.with_database_url(embedded(settings).start())
    except EmbeddedPostgresError as exc:
        raise CommandError(str(exc)) from None


async def apply_migrations(settings: Settings) -> list[str]:
    """Apply pending migrations, then ensure the bootstrap admin token (when configured)."""
    assert settings.database_url
    try:
        async with session(settings.database_url, name="ordinaut-migrate") as conn:
            applied = await migrate_store.migrate(conn)
            if settings.bootstrap_admin_token:
                token = settings.bootstrap_admin_token
                async with conn.transaction():
                    await agents_store.ensure_admin_token(
                        conn, token_hash=hash_token(token), prefix=display_prefix(token)
                    )
    except StoreError as exc:
        raise CommandError(f"migration failed: {exc.message}") from None
    return applied


async def create_agent(settings: Settings, name: str, scopes: list[str]) -> tuple[str, str]:
    """Create an agent with ``scopes`` and a token; returns ``(agent line, token)``."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise CommandError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    assert settings.database_url
    token = generate_token()
    try:
        async with (
            session(settings.database_url, name="ordinaut-cli") as conn,
            conn.transaction(),
        ):
            agent: dict[str, Any] = await agents_store.insert_agent(
                conn, name=name, scopes=sorted(set(scopes))
            )
            await agents_store.insert_token(
                conn,
                agent_id=agent["id"],
                token_hash=hash_token(token),
                prefix=display_prefix(token),
            )
    except (Conflict, StoreError) as exc:
        raise CommandError(exc.message) from None
    line = f"agent {name} ({agent['id']}) created with scopes {', '.join(agent['scopes'])}"
    return line, token
