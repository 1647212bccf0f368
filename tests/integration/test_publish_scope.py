"""``events.publish`` as a pipeline step honours the owner's ``events:publish`` scope at
run time (issue 17, defect 11): the scope can be removed after the task was accepted, and
the step then fails without publishing, not retryably."""

from __future__ import annotations

import pytest

from engine.errors import StepError
from engine.pipeline import CallContext
from store import agents as agents_store
from store.db import connect, create_pool
from tests.factories import event_task, make_agent, make_task
from workers.tools.events import events_publisher


def context(agent_id: str, step: str) -> CallContext:
    return CallContext(
        run_id="11111111-1111-1111-1111-111111111111",
        task_id="22222222-2222-2222-2222-222222222222",
        step_id=step,
        run_attempt=1,
        step_attempt=1,
        agent_id=agent_id,
        timeout_seconds=5.0,
    )


async def test_publishing_needs_the_scope_when_the_step_runs(fresh_db):
    conn = await connect(fresh_db)
    pool = create_pool(fresh_db, max_size=2)
    await pool.open()
    try:
        agent, _ = await make_agent(conn, "tasks:write", "events:publish")
        await make_task(conn, agent["id"], **event_task(schedule_expr="scope.check"))
        publish = events_publisher(pool, max_payload_bytes=1024 * 1024, fanout_limit=1000)
        answer = await publish({"topic": "scope.check"}, context(str(agent["id"]), "first"))
        assert len(answer["runs"]) == 1

        await agents_store.update_agent(conn, agent["id"], name=None, scopes=["tasks:write"])
        with pytest.raises(StepError) as caught:
            await publish({"topic": "scope.check"}, context(str(agent["id"]), "second"))
        assert caught.value.retryable is False
        assert caught.value.type == "forbidden"
        assert "events:publish" in caught.value.message
        cursor = await conn.execute("SELECT count(*) AS n FROM events")
        assert await cursor.fetchone() == {"n": 1}  # nothing published the second time

        await agents_store.update_agent(conn, agent["id"], name=None, scopes=["admin"])
        answer = await publish({"topic": "scope.check"}, context(str(agent["id"]), "third"))
        assert len(answer["runs"]) == 1  # admin implies every scope
    finally:
        await pool.close()
        await conn.close()


async def test_publishing_past_the_fanout_quota_fails_the_step_and_queues_nothing(fresh_db):
    """The owner's ``event_fanout`` quota (here the default the worker passes) bounds what
    one step may start; over it, nothing is recorded and the step fails for good."""
    conn = await connect(fresh_db)
    pool = create_pool(fresh_db, max_size=2)
    await pool.open()
    try:
        agent, _ = await make_agent(conn, "tasks:write", "events:publish")
        for _ in range(3):
            await make_task(conn, agent["id"], **event_task(schedule_expr="fan.out"))
        publish = events_publisher(pool, max_payload_bytes=1024 * 1024, fanout_limit=2)
        with pytest.raises(StepError) as caught:
            await publish({"topic": "fan.out"}, context(str(agent["id"]), "over"))
        assert caught.value.retryable is False
        assert "event_fanout" in caught.value.message
        cursor = await conn.execute(
            "SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM due_work) AS q"
        )
        assert await cursor.fetchone() == {"events": 0, "q": 0}
        # the agent's own quota wins over the default
        await agents_store.update_agent(conn, agent["id"], quotas={"event_fanout": 3})
        answer = await publish({"topic": "fan.out"}, context(str(agent["id"]), "within"))
        assert len(answer["runs"]) == 3
    finally:
        await pool.close()
        await conn.close()
