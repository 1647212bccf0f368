"""Whole databases: create (plain, from a template, asynchronous commit), ensure, drop."""

from __future__ import annotations

import uuid

import psycopg

from store import databases


def test_create_ensure_and_drop(server_url: str, template_url: str) -> None:
    name = f"ordinaut_test_{uuid.uuid4().hex[:12]}"
    url = databases.create_database(
        server_url, name, template=databases.database_name(template_url), synchronous_commit=False
    )
    try:
        assert databases.database_name(url) == name
        databases.ensure_database(server_url, name)  # exists: nothing to do
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
            migrated = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
            assert migrated is not None and migrated[0] > 0  # a copy of the template
    finally:
        databases.drop_database(server_url, name)
    databases.ensure_database(server_url, name)  # missing: created
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    finally:
        databases.drop_database(server_url, name)


def test_with_database_keeps_server_user_and_options() -> None:
    url = "postgresql://u:p@127.0.0.1:5433/one?host=/tmp/sock&sslmode=disable"
    assert databases.with_database(url, "two") == (
        "postgresql://u:p@127.0.0.1:5433/two?host=/tmp/sock&sslmode=disable"
    )
