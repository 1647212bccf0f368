"""Both clients against a real ``ordinaut api`` and ``ordinaut worker``: the life of tasks
and runs, end to end."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from ordinaut import AgentQuotaOverrides, ConflictError, NotFoundError, Page, Run, Task
from tests.client.harness import collect, raised, resolve
from tests.support import eventually

pytestmark = pytest.mark.e2e

NEVER_SOON = "0 0 1 1 *"  # cron: midnight on 1 January; nothing runs unless asked


def echo_task(title: str, x: Any = 42, **overrides: Any) -> dict[str, Any]:
    """A cron task that runs only when asked to (run_now): it echoes ``params.x``."""
    return {
        "title": title,
        "schedule_kind": "cron",
        "schedule_expr": NEVER_SOON,
        "timezone": "UTC",
        "payload": {
            "params": {"x": x},
            "pipeline": [
                {
                    "id": "echo",
                    "uses": "debug.echo",
                    "with": {"value": "${params.x}"},
                    "save_as": "e",
                }
            ],
        },
        **overrides,
    }


async def test_tasks_pages_runs_and_lifecycle(live, open_client):
    async with open_client(live.url) as c:
        created = [await resolve(c.tasks.create(echo_task(f"t{i}", x=i))) for i in range(7)]
        first = created[0]
        assert isinstance(first, Task) and isinstance(first.id, UUID)
        assert first.status == "active" and first.schedule_kind == "cron"
        assert first.created_at.tzinfo is not None
        assert first.next_run_at is not None and (
            first.next_run_at.month,
            first.next_run_at.day,
        ) == (1, 1)

        got = await resolve(c.tasks.get(first.id))
        assert (got.id, got.title, got.payload) == (first.id, "t0", first.payload)
        assert got.raw["id"] == str(first.id)

        # Pages of 3: one page by hand, then the iterator follows next_cursor to the end.
        page = await resolve(c.tasks.page(limit=3))
        assert isinstance(page, Page) and len(page.items) == 3 and page.next_cursor
        second = await resolve(c.tasks.page(limit=3, cursor=page.next_cursor))
        assert not {t.id for t in page.items} & {t.id for t in second.items}
        listed = await collect(c.tasks.list(limit=3))
        assert [t.id for t in listed] == [t.id for t in reversed(created)]  # newest first
        assert await collect(c.tasks.list(status="paused", limit=3)) == []
        assert len(await collect(c.tasks.list(status="active", schedule_kind="cron"))) == 7

        # run_now and wait: the worker runs the pipeline; the step's output comes back.
        run = await resolve(c.tasks.run_now(first.id, wait=30))
        assert isinstance(run, Run) and run.status == "succeeded" and run.is_final
        assert run.trigger == "manual" and run.task_id == first.id
        assert run.step("echo").output == {"value": 0}
        assert run.finished_at is not None and run.finished_at >= run.queued_at

        queued = await resolve(c.tasks.run_now(created[1].id))
        assert queued.status in ("queued", "running", "succeeded")
        done = await resolve(c.runs.wait(queued.id, timeout=30))
        assert done.id == queued.id and done.status == "succeeded"
        assert done.steps[0].output == {"value": 1} and done.steps[0].status == "succeeded"
        assert (await resolve(c.runs.get(queued.id))).status == "succeeded"

        runs = await collect(c.runs.list(task_id=first.id))
        assert [r.id for r in runs] == [run.id]
        assert await collect(c.runs.list(task_id=first.id, status="succeeded")) == runs
        assert await collect(c.runs.list(task_id=first.id, status="dead")) == []
        assert [r.id for r in await collect(c.runs.list(task_id=first.id, trigger="manual"))] == [
            run.id
        ]
        assert await collect(c.runs.list(task_id=first.id, trigger="schedule")) == []
        since = await collect(c.runs.list(since=run.queued_at - timedelta(seconds=1), limit=1))
        assert {r.id for r in since} == {run.id, queued.id}

        # Lifecycle: pause and resume are idempotent; a canceled task cannot run.
        assert (await resolve(c.tasks.pause(first.id))).status == "paused"
        assert (await resolve(c.tasks.pause(first.id))).status == "paused"
        assert (await resolve(c.tasks.resume(first.id))).status == "active"
        assert (await resolve(c.tasks.cancel(first.id))).status == "canceled"
        conflict = await raised(ConflictError, lambda: c.tasks.run_now(first.id))
        assert conflict.status == 409 and "canceled" in str(conflict)

        # Preview, update, snooze, delete.
        preview = await resolve(c.tasks.preview(created[2].id, count=3))
        years = [o.year for o in preview.occurrences]
        assert len(years) == 3 and years == sorted(years) and len(set(years)) == 3
        assert all(
            (o.month, o.day, o.hour, o.utcoffset()) == (1, 1, 0, timedelta(0))
            for o in preview.occurrences
        )
        after = datetime(2030, 6, 1, tzinfo=UTC)
        later = await resolve(c.tasks.preview(created[2].id, count=1, after=after))
        assert later.occurrences == (datetime(2031, 1, 1, tzinfo=UTC),)

        renamed = await resolve(c.tasks.update(created[2].id, {"title": "renamed", "priority": 2}))
        assert (renamed.title, renamed.priority, renamed.schedule_expr) == (
            "renamed",
            2,
            NEVER_SOON,
        )

        before = created[3].next_run_at
        assert before is not None
        snoozed = await resolve(c.tasks.snooze(created[3].id, 3600))
        assert snoozed.next_run_at == before + timedelta(hours=1)

        assert await resolve(c.tasks.delete(created[4].id)) is None
        await raised(NotFoundError, lambda: c.tasks.get(created[4].id))


async def test_schedules_events_tools_and_agents(live, open_client):
    async with open_client(live.url) as c:
        preview = await resolve(
            c.schedules.preview(
                "cron", "0 9 * * 1-5", "Europe/Chisinau", count=3, after="2026-03-27T00:00:00Z"
            )
        )
        assert [o.isoformat() for o in preview.occurrences] == [
            "2026-03-27T09:00:00+02:00",  # Friday, winter time
            "2026-03-30T09:00:00+03:00",  # Monday, after the change to summer time
            "2026-03-31T09:00:00+03:00",
        ]

        tools = await collect(c.tools.list())
        assert "debug.echo" in {t.address for t in tools}
        echo = await resolve(c.tools.get("debug.echo"))
        assert echo.transport == "builtin" and echo.input_schema.get("type") == "object"
        await raised(NotFoundError, lambda: c.tools.get("no.such.tool"))

        listener = await resolve(
            c.tasks.create(
                echo_task("on order", schedule_kind="event", schedule_expr="orders.*.created")
            )
        )
        published = await resolve(
            c.events.publish("orders.eu.created", {"n": 1}, idempotency_key="order-1")
        )
        assert [r.task_id for r in published.runs] == [listener.id]
        again = await resolve(
            c.events.publish("orders.eu.created", {"n": 1}, idempotency_key="order-1")
        )
        assert again.event_id == published.event_id  # replayed, not published twice
        run = await resolve(c.runs.wait(published.runs[0].run_id, timeout=30))
        assert run.status == "succeeded" and run.trigger == "event"
        assert run.event["payload"] == {"n": 1}
        assert (await resolve(c.events.publish("nothing.listens"))).runs == ()
        manual = await resolve(c.tasks.run_now(listener.id, wait=30))
        # The filter the client sends is honoured whether or not the server knows it.
        by_trigger = [
            r.id for r in await collect(c.runs.list(task_id=listener.id, trigger="event"))
        ]
        assert by_trigger == [run.id]
        by_trigger = [
            r.id for r in await collect(c.runs.list(task_id=listener.id, trigger="manual"))
        ]
        assert by_trigger == [manual.id]

        me = await resolve(c.agents.me())
        assert me.name == "admin" and "admin" in me.scopes

        bot = await resolve(c.agents.create("reporter", ["tasks:read"]))
        assert bot.token.startswith("ord_") and bot.scopes == ("tasks:read",)
        assert bot.token not in repr(bot)
        assert bot.id in {a.id for a in await collect(c.agents.list())}
        assert [a.id for a in await collect(c.agents.list(name="reporter"))] == [bot.id]
        detail = await resolve(c.agents.get(bot.id))
        assert detail.tokens is not None and len(detail.tokens) == 1
        changed = await resolve(c.agents.update(bot.id, scopes=["tasks:read", "runs:read"]))
        assert changed.scopes == ("tasks:read", "runs:read") and changed.name == "reporter"
        assert changed.webhook_url is None and changed.quotas is not None
        assert changed.quota_overrides is not None
        assert changed.quota_overrides == AgentQuotaOverrides(
            active_tasks=None, queued_runs=None, concurrent_runs=None, event_fanout=None
        )
        limited = await resolve(c.agents.update(bot.id, quotas={"queued_runs": 50}))
        assert limited.quotas == replace(changed.quotas, queued_runs=50)
        assert limited.quota_overrides == replace(changed.quota_overrides, queued_runs=50)
        reset = await resolve(c.agents.update(bot.id, quotas={"queued_runs": None}))
        assert reset.quotas == changed.quotas and reset.quota_overrides == changed.quota_overrides
        hooked = await resolve(c.agents.set_webhook_url(bot.id, "https://hooks.example/in"))
        assert hooked.webhook_url == "https://hooks.example/in"
        secret = await resolve(c.agents.create_webhook_secret(bot.id))
        assert secret.secret.startswith("whsec_") and secret.agent_id == bot.id
        assert secret.previous_valid_until is None and secret.secret not in repr(secret)
        kept = await resolve(c.agents.create_webhook_secret(bot.id, keep_previous=True))
        assert kept.previous_valid_until == kept.created_at + timedelta(hours=24)
        mine = await resolve(c.agents.create_webhook_secret())  # "me": the caller's own
        assert mine.agent_id == me.id
        assert (await resolve(c.agents.set_webhook_url(bot.id, None))).webhook_url is None
        rotated = await resolve(c.agents.create_token(bot.id))
        assert rotated.token != bot.token and rotated.id == bot.id
        assert await resolve(c.agents.delete(bot.id)) is None
        deleted = await resolve(c.agents.get(bot.id))
        assert deleted.deleted_at is not None
        assert bot.id not in {a.id for a in await collect(c.agents.list())}
        assert bot.id in {a.id for a in await collect(c.agents.list(include_deleted=True))}


async def test_the_worker_registry(live, open_client):
    async with open_client(live.url) as c:
        workers = await eventually(
            lambda: collect(c.workers.list()), message="the worker registers"
        )
    (worker,) = workers
    assert worker.live and worker.concurrency == 4 and worker.pid > 0
    assert worker.last_seen_at.tzinfo is not None
