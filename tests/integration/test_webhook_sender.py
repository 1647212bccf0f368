"""The workers' webhook sender against real Postgres and a real local receiver: signed per
Standard Webhooks (verified with the ``standardwebhooks`` library), the SSRF guard, a
missing secret, retries, giving up after 24 hours, and the lease's fence."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from engine import webhooks
from engine.runs import present_run
from engine.settings import Settings
from store import due_work as q
from store import runs as runs_store
from store import webhooks as webhooks_store
from store.db import Connection, Pool, connect, create_pool
from tests.factories import event_task, make_agent, make_task
from tests.servers.webhook_receiver import handler_for
from tests.support import eventually
from workers.tools.ssrf import AllowList
from workers.webhooks import WebhookSender

LOCAL = AllowList.parse(["127.0.0.1"])


@contextmanager
def receiver(log: Path) -> Iterator[str]:
    """The test receiver (``tests.servers.webhook_receiver``) in a thread; its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(log))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def received(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
async def db(fresh_db: str) -> AsyncIterator[Connection]:
    conn = await connect(fresh_db)
    async with conn:
        yield conn


@pytest.fixture
async def pool(fresh_db: str) -> AsyncIterator[Pool]:
    opened = create_pool(fresh_db, max_size=4)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@asynccontextmanager
async def sending(pool: Pool, **overrides: Any) -> AsyncIterator[WebhookSender]:
    settings = Settings(webhook_retry_base_seconds=0.2, webhook_timeout_seconds=2, poll_seconds=0.1)
    sender = WebhookSender(settings, pool, **{"allow": LOCAL, **overrides})
    loop = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await sender.aclose(grace=1)


async def finished_run(db: Connection, url: str, *, secret: bool = True) -> tuple[dict, str]:
    """A run that ended, whose owner's webhook goes to ``url``; the owner's whsec_ secret."""
    agent, _ = await make_agent(db)
    await db.execute("UPDATE agents SET webhook_url = %s WHERE id = %s", (url, agent["id"]))
    shown = ""
    if secret:
        key, shown = webhooks.new_secret()
        await webhooks_store.replace_secret(db, agent["id"], key)
    task = await make_task(db, agent["id"], **event_task())
    await q.insert_manual_run(db, run_id=uuid.uuid4(), task_id=task["id"], trigger="manual")
    (row,) = await q.lease_batch(db, worker_id="w", limit=1, lease_seconds=30)
    done = q.Finished(
        run_id=row["id"],
        attempt=1,
        agent_id=row["agent_id"],
        status="succeeded",
        duration_ms=2,
        steps=[{"id": "s", "uses": "debug.echo", "status": "succeeded", "output": {"x": 1}}],
        error=None,
    )
    await q.finish_runs(db, worker_id="w", runs=[done])
    run = await runs_store.get_run(db, row["id"], owner=None)
    assert run is not None
    return run, shown


async def delivery_of(db: Connection, run_id: Any) -> dict[str, Any]:
    (found,) = (await webhooks_store.deliveries_of_runs(db, [run_id]))[run_id]
    return found


async def test_a_delivery_is_signed_and_carries_the_run(db, pool, tmp_path):
    log = tmp_path / "hooks.log"
    with receiver(log) as base:
        run, secret = await finished_run(db, f"{base}/hook")
        async with sending(pool):
            await eventually(lambda: _async(received(log)), message="a delivery")
            delivery = await eventually(
                lambda: delivery_of(db, run["id"]), until=lambda d: d["status"] == "delivered"
            )
    (request,) = received(log)
    headers = {k.lower(): v for k, v in request["headers"].items()}
    verified = Webhook(secret).verify(request["body"], headers)
    assert verified == {"type": "run.finished", "data": present_run(run)}
    assert headers["webhook-id"] == str(delivery["id"])
    assert headers["content-type"] == "application/json"
    assert (delivery["attempts"], delivery["last_status"]) == (1, 204)
    assert delivery["delivered_at"] is not None
    # Another key's signature, or another body, does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()[1]).verify(request["body"], headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request["body"].replace("succeeded", "dead"), headers)


async def test_private_receivers_need_the_allow_list(db, pool, tmp_path):
    log = tmp_path / "hooks.log"
    with receiver(log) as base:
        run, _ = await finished_run(db, f"{base}/hook")
        async with sending(pool, allow=AllowList()):
            delivery = await eventually(
                lambda: delivery_of(db, run["id"]), until=lambda d: d["last_error"] is not None
            )
    assert received(log) == []
    assert delivery["status"] == "pending" and delivery["last_status"] is None
    assert "ORDINAUT_HTTP_ALLOW" in delivery["last_error"]
    assert "loopback" in delivery["last_error"]


async def test_without_a_secret_nothing_is_sent_and_the_delivery_waits(db, pool, tmp_path):
    log = tmp_path / "hooks.log"
    with receiver(log) as base:
        run, _ = await finished_run(db, f"{base}/hook", secret=False)
        async with sending(pool):
            delivery = await eventually(
                lambda: delivery_of(db, run["id"]), until=lambda d: d["last_error"] is not None
            )
            assert received(log) == []
            # Once the agent has a secret, the next try goes out, signed with it.
            key, shown = webhooks.new_secret()
            await webhooks_store.replace_secret(db, run["agent_id"], key)
            delivered = await eventually(
                lambda: delivery_of(db, run["id"]),
                until=lambda d: d["status"] == "delivered",
                timeout=20,
            )
    assert "POST /agents/me/webhook-secret" in delivery["last_error"]
    assert delivery["status"] == "pending"
    (request,) = received(log)
    Webhook(shown).verify(request["body"], {k.lower(): v for k, v in request["headers"].items()})
    assert delivered["attempts"] >= 2


async def test_failures_are_retried_with_the_same_webhook_id(db, pool, tmp_path):
    log = tmp_path / "hooks.log"
    with receiver(log) as base:
        run, _ = await finished_run(db, f"{base}/hook?status=503")
        async with sending(pool):
            # A try is counted when it is taken, before its request is sent: wait for the
            # receiver to have heard three of them too.
            delivery = await eventually(
                lambda: delivery_of(db, run["id"]),
                until=lambda d: d["attempts"] >= 3 and len(received(log)) >= 3,
                timeout=20,
            )
    ids = {request["headers"]["webhook-id"] for request in received(log)}
    assert ids == {str(delivery["id"])} and len(received(log)) >= 3
    assert delivery["status"] == "pending" and delivery["last_status"] == 503
    assert delivery["last_error"].startswith("HTTP 503")
    assert delivery["next_attempt_at"] > delivery["last_attempt_at"]


async def test_a_delivery_is_given_up_24_hours_after_the_run_ended(db, pool, tmp_path):
    log = tmp_path / "hooks.log"
    with receiver(log) as base:
        run, _ = await finished_run(db, f"{base}/hook?status=500")
        await db.execute(
            "UPDATE webhook_deliveries SET created_at = now() - interval '24 hours'"
            " WHERE run_id = %s",
            (run["id"],),
        )
        async with sending(pool):
            delivery = await eventually(
                lambda: delivery_of(db, run["id"]), until=lambda d: d["status"] != "pending"
            )
    assert delivery["status"] == "failed" and delivery["attempts"] == 1
    listed = await webhooks_store.list_deliveries(
        db, owner=None, statuses=["failed"], run_id=None, task_id=None, limit=10, after=None
    )
    assert [d["id"] for d in listed] == [delivery["id"]]


async def test_an_outcome_is_fenced_on_the_attempt_it_took(db):
    run, _ = await finished_run(db, "https://hooks.example/x")
    (taken,) = await webhooks_store.lease_due_deliveries(db, limit=5, lease_seconds=0)
    (again,) = await webhooks_store.lease_due_deliveries(db, limit=5, lease_seconds=60)
    assert (taken.attempts, again.attempts) == (1, 2)
    stale = await webhooks_store.record_outcome(
        db,
        delivery_id=taken.id,
        attempts=taken.attempts,
        status="delivered",
        retry_at=None,
        http_status=204,
        error=None,
    )
    assert stale is False
    assert (await delivery_of(db, run["id"]))["status"] == "pending"


def test_the_retry_schedule_backs_off_with_jitter_for_24_hours():
    created = datetime(2026, 1, 1, tzinfo=UTC)
    at, tries, waits = created, 0, []
    while True:
        tries += 1
        following = webhooks.next_try_at(
            attempts=tries, created_at=created, now=at, base_seconds=5, rand=lambda: 1.0
        )
        if following is None:
            break
        waits.append((following - at).total_seconds())
        at = following
    assert waits[:5] == [5, 10, 20, 40, 80] and max(waits) == 3600
    assert at - created <= timedelta(hours=24) < at - created + timedelta(hours=1)
    half = webhooks.next_try_at(
        attempts=1, created_at=created, now=created, base_seconds=5, rand=lambda: 0.0
    )
    assert half == created + timedelta(seconds=2.5)


async def _async(value: Any) -> Any:
    return value


async def test_a_previous_key_signs_in_its_window_and_is_erased_after_it(db):
    agent, _ = await make_agent(db)
    (first, _), (second, _), (third, _) = (webhooks.new_secret() for _ in range(3))
    await webhooks_store.replace_secret(db, agent["id"], first)
    kept = await webhooks_store.replace_secret(db, agent["id"], second, keep_previous_seconds=60)
    assert kept["previous_until"] - kept["created_at"] == timedelta(seconds=60)
    # Another agent's keys, and a previous key still in its window, stay.
    other, _ = await make_agent(db)
    await webhooks_store.replace_secret(db, other["id"], first)
    await webhooks_store.replace_secret(db, other["id"], third, keep_previous_seconds=60)
    assert await webhooks_store.forget_previous_secrets(db) == 0

    async def stored(agent_id: Any) -> dict[str, Any]:
        cursor = await db.execute(
            "SELECT secret, previous_secret, previous_until FROM webhook_secrets"
            " WHERE agent_id = %s",
            (agent_id,),
        )
        row = await cursor.fetchone()
        assert row is not None
        return row

    assert bytes((await stored(agent["id"]))["previous_secret"]) == first
    await db.execute(
        "UPDATE webhook_secrets SET previous_until = now() - interval '1 second'"
        " WHERE agent_id = %s",
        (agent["id"],),
    )
    assert await webhooks_store.forget_previous_secrets(db) == 1
    after = await stored(agent["id"])
    assert bytes(after["secret"]) == second
    assert (after["previous_secret"], after["previous_until"]) == (None, None)
    assert bytes((await stored(other["id"]))["previous_secret"]) == first
    # A plain rotation keeps no previous key, even inside a window.
    await webhooks_store.replace_secret(db, other["id"], second)
    assert (await stored(other["id"]))["previous_secret"] is None
