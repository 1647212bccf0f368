"""Whole databases on a server: create, clone from a template, drop.

Used before any pool exists — by the embedded cluster's bootstrap, the tests' per-test
clones and the benchmarks' scratch databases — so the functions are synchronous and open
their own connection to the server's ``postgres`` maintenance database.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

MAINTENANCE_DATABASE = "postgres"


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (same server, user and options)."""
    base, _, query = url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def database_name(url: str) -> str:
    """The database a URL names."""
    return url.partition("?")[0].rsplit("/", 1)[1]


def ensure_database(server_url: str, name: str) -> None:
    """Create database ``name`` unless it exists."""
    with _maintenance(server_url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def create_database(
    server_url: str, name: str, *, template: str | None = None, synchronous_commit: bool = True
) -> str:
    """Create database ``name`` (a copy of ``template`` when given) and return its URL;
    ``synchronous_commit=False`` makes that the default of every session in it."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with _maintenance(server_url) as conn:
        conn.execute(statement)
        if not synchronous_commit:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
                    sql.Identifier(name)
                )
            )
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions."""
    with _maintenance(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _maintenance(server_url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(with_database(server_url, MAINTENANCE_DATABASE), autocommit=True)
