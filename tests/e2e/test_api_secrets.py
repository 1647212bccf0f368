"""Tokens at rest and in logs, with real processes: a dump of the whole database holds no
token text (only SHA-256 digests), and no process logs a token or an Authorization value,
even when a pipeline logs one on purpose."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from psycopg import sql

from store.db import connect
from tests.support import ADMIN_TOKEN, api_client, cluster, eventually

pytestmark = pytest.mark.e2e


async def dump_database(url: str) -> str:
    """Every row of every table, as ``COPY ... TO STDOUT`` text (what a data dump holds)."""
    conn = await connect(url)
    chunks: list[str] = []
    async with conn:
        cursor = await conn.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        for table in await cursor.fetchall():
            name = sql.Identifier(table["schemaname"], table["tablename"])
            async with conn.cursor().copy(sql.SQL("COPY {} TO STDOUT").format(name)) as copy:
                async for data in copy:
                    chunks.append(bytes(data).decode("utf-8", errors="replace"))
    return "".join(chunks)


async def test_tokens_are_neither_stored_nor_logged(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path, ORDINAUT_LOG_LEVEL="DEBUG") as running:
        api = running.api()
        running.scheduler()
        worker = running.worker(concurrency=2)
        async with api_client(api) as admin:
            created = await admin.post("/agents", json={"name": "bot", "scopes": ["tasks:write"]})
            first = created.json()["token"]
            rotated = await admin.post(f"/agents/{created.json()['id']}/tokens")
            second = rotated.json()["token"]
            tokens = [ADMIN_TOKEN, first, second]
            await admin.get("/tasks", headers={"Authorization": f"Bearer {first}"})  # revoked
            await admin.get("/tasks", headers={"Authorization": "Bearer not-a-token-but-secret"})
            task: dict[str, Any] = {
                "title": "leaky",
                "schedule_kind": "once",
                "schedule_expr": "2020-01-01T00:00:00Z",
                "payload": {
                    "params": {"password": "hunter2", "token": second},
                    "pipeline": [
                        {
                            "id": "leak",
                            "uses": "debug.log",
                            "with": {"message": "calling with Bearer ${params.token} now"},
                        }
                    ],
                },
            }
            made = await admin.post(
                "/tasks", json=task, headers={"Authorization": f"Bearer {second}"}
            )
            assert made.status_code == 201, made.text

            async def finished() -> list[dict[str, Any]]:
                runs = await admin.get("/runs", params={"task_id": made.json()["id"]})
                return runs.json()["items"]

            await eventually(
                finished,
                until=lambda rs: bool(rs) and rs[0]["status"] == "succeeded",
                message="the leaky run",
            )
            audit = (await admin.get("/audit", params={"action": "tasks.create"})).json()
            assert audit["items"][0]["details"]["body"]["payload"]["params"] == {
                "password": "[redacted]",
                "token": "[redacted]",
            }
        dump = await dump_database(fresh_db)
        logs = api.output() + worker.output()

    assert "calling with Bearer [redacted] now" in logs  # the pipeline did log its message
    for token in tokens:
        assert token not in logs
        assert hashlib.sha256(token.encode()).hexdigest() in dump  # the digest is there...
    for token in tokens[:2]:
        assert token not in dump  # ...but never the token (the task's params hold `second`)
    assert "not-a-token-but-secret" not in logs
    assert "hunter2" not in logs
    assert "Bearer ord_" not in logs
