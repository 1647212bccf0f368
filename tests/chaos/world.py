"""The system under chaos: a private PostgreSQL, real ``ordinaut`` processes, the receiver,
the tasks of the load, and the harness's own access to the database (which retries while
the server restarts)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from ops.embedded_pg import EmbeddedPostgres
from store.databases import create_database
from tests.chaos.receiver import Receiver
from tests.support import Cluster, Process, api_client

EFFECT_TOOL = "chaos.effect"
EFFECT = [{"id": "effect", "uses": EFFECT_TOOL, "with": {"run": "${run.id}"}}]
NOOP = [{"id": "echo", "uses": "debug.echo", "with": {"n": "${run.attempt}"}}]
# Every chaos run must end succeeded: attempts lost to crashes and expired leases are
# retried quickly and never run out.
RUN_POLICY = {"max_retries": 100, "backoff_strategy": "fixed"}


@dataclass(frozen=True, kw_only=True)
class Tasks:
    scheduled: list[str]
    event_tasks: list[str]
    manual: str
    probe: str
    burst: str


@dataclass
class World:
    """Everything the chaos acts on; ``workers`` and ``scheduler`` are the live processes."""

    pg: EmbeddedPostgres
    url: str
    cluster: Cluster
    receiver: Receiver
    api: Process
    scheduler: Process
    workers: list[Process]
    concurrency: int
    tasks: Tasks | None = None
    restarted: list[str] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        client = api_client(self.api)
        client.timeout = httpx.Timeout(10.0)
        return client

    async def rows(self, sql: str, *params: Any, deadline: float = 120.0) -> list[dict[str, Any]]:
        """Run one statement, retrying while the server is away; ``params`` are positional,
        or one dict of named ones."""
        give_up = time.monotonic() + deadline
        bound: Any = params[0] if len(params) == 1 and isinstance(params[0], dict) else params
        while True:
            try:
                return await asyncio.to_thread(_query, self.url, sql, bound)
            except psycopg.OperationalError:
                if time.monotonic() > give_up:
                    raise
                await asyncio.sleep(0.2)

    def start_worker(self) -> Process:
        worker = self.cluster.worker(concurrency=self.concurrency)
        self.workers.append(worker)
        return worker

    def start_scheduler(self) -> Process:
        self.scheduler = self.cluster.scheduler()
        return self.scheduler


def _query(url: str, sql: str, params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=5) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def start_world(
    workdir: Path,
    receiver: Receiver,
    *,
    workers: int,
    concurrency: int,
    lease_seconds: float,
    fsync: bool,
) -> World:
    """A private cluster with a migrated database and the processes, not yet loaded."""
    pg = EmbeddedPostgres(workdir / "pg-home", fast=not fsync)
    server_url = pg.start()
    url = create_database(server_url, "chaos")
    cluster = Cluster(
        url,
        workdir,
        {
            "ORDINAUT_LEASE_SECONDS": str(lease_seconds),
            "ORDINAUT_POLL_SECONDS": "0.5",
            "ORDINAUT_RETRY_BASE_SECONDS": "0.2",
            "ORDINAUT_RETRY_MAX_SECONDS": "2",
            "ORDINAUT_RATE_LIMIT_PER_MINUTE": "0",
            "ORDINAUT_LOG_LEVEL": "WARNING",
            "ORDINAUT_HTTP_ALLOW": "127.0.0.1",
        },
    )
    migrated = cluster.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    api = cluster.api()
    world = World(pg, url, cluster, receiver, api, cluster.scheduler(), [], concurrency)
    return world


async def create_tasks(
    world: World, *, scheduled: int, event_tasks: int, start: datetime, until: datetime
) -> Tasks:
    """The load's tasks (the effect tool first, so that workers know it when they start)."""
    async with world.client() as client:
        tool = {
            "address": EFFECT_TOOL,
            "transport": "http",
            "endpoint": world.receiver.url,
            "input_schema": {"type": "object"},
            "timeout_seconds": 10,
        }
        response = await client.post("/tools", json=tool)
        assert response.status_code == 201, response.text
        rule = f"DTSTART:{_basic(start)}\nRRULE:FREQ=SECONDLY;UNTIL={_basic(until)}"
        tasks = Tasks(
            scheduled=[
                await _create(client, f"every second {n}", "rrule", rule, EFFECT)
                for n in range(scheduled)
            ],
            event_tasks=[
                await _create(client, f"on event {n}", "event", "chaos.event", EFFECT)
                for n in range(event_tasks)
            ],
            manual=await _create(client, "manual", "event", "chaos.manual", EFFECT),
            probe=await _create(client, "probe", "event", "chaos.probe", EFFECT),
            burst=await _create(client, "burst", "event", "chaos.burst", NOOP),
        )
    world.tasks = tasks
    return tasks


async def _create(
    client: httpx.AsyncClient, title: str, kind: str, expr: str, pipeline: list[dict[str, Any]]
) -> str:
    document = {
        "title": title,
        "schedule_kind": kind,
        "schedule_expr": expr,
        "catch_up": "all",
        "payload": {"pipeline": pipeline},
        **RUN_POLICY,
    }
    response = await client.post("/tasks", json=document)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _basic(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
