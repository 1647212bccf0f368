"""What each CLI command does."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import psycopg

from engine.errors import Conflict, OrdinautError
from engine.tokens import SCOPES, display_prefix, generate_token, hash_token
from ops.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError
from ops.settings import Settings
from store import agents as agents_store
from store import migrate as migrate_store
from store.db import connect


class CommandError(Exception):
    """A command failed; the message is shown as one line."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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


def db(settings: Settings, action: str) -> int:
    cluster = embedded(settings)
    try:
        if action == "start":
            print(cluster.start())
        elif action == "stop":
            if not cluster.stop():
                say("embedded PostgreSQL is not running")
        else:
            url = cluster.url()
            if url is None:
                say("embedded PostgreSQL is not running (ordinaut db start)")
                return 1
            print(url)
    except EmbeddedPostgresError as exc:
        raise CommandError(str(exc)) from None
    return 0


def migrate(settings: Settings) -> int:
    applied = asyncio.run(apply_migrations(settings))
    say(
        f"applied {len(applied)} migration(s): {', '.join(applied)}"
        if applied
        else "migrations already at head"
    )
    return 0


async def apply_migrations(settings: Settings) -> list[str]:
    """Apply pending migrations, then ensure the bootstrap admin token (when configured)."""
    assert settings.database_url
    try:
        conn = await connect(settings.database_url, name="ordinaut-migrate")
    except OrdinautError as exc:
        raise CommandError(exc.message) from None
    async with conn:
        try:
            applied = await migrate_store.migrate(conn)
        except psycopg.Error as exc:
            raise CommandError(f"migration failed: {exc}") from None
        if settings.bootstrap_admin_token:
            token = settings.bootstrap_admin_token
            async with conn.transaction():
                await agents_store.ensure_admin_token(
                    conn, token_hash=hash_token(token), prefix=display_prefix(token)
                )
    return applied


def api(settings: Settings, host: str, port: int) -> int:
    from ops.processes import run_api

    run_api(settings, host, port)
    return 0


def scheduler(settings: Settings, metrics_port: int | None) -> int:
    from ops.processes import run_scheduler

    run_scheduler(settings, metrics_port)
    return 0


def worker(settings: Settings, concurrency: int, metrics_port: int | None) -> int:
    from ops.processes import run_worker

    run_worker(settings, concurrency, metrics_port)
    return 0


async def create_agent(settings: Settings, name: str, scopes: list[str]) -> int:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise CommandError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    assert settings.database_url
    token = generate_token()
    try:
        conn = await connect(settings.database_url, name="ordinaut-cli")
    except OrdinautError as exc:
        raise CommandError(exc.message) from None
    async with conn, conn.transaction():
        try:
            agent: dict[str, Any] = await agents_store.insert_agent(
                conn, name=name, scopes=sorted(set(scopes))
            )
        except Conflict as exc:
            raise CommandError(exc.message) from None
        await agents_store.insert_token(
            conn, agent_id=agent["id"], token_hash=hash_token(token), prefix=display_prefix(token)
        )
    say(f"agent {name} ({agent['id']}) created with scopes {', '.join(agent['scopes'])}")
    say("its token (shown once, store it now):")
    print(token)
    return 0


def up(settings: Settings, workers: int, concurrency: int, host: str, port: int) -> int:
    from ops.supervisor import run_up

    return run_up(settings, workers=workers, concurrency=concurrency, host=host, port=port)
