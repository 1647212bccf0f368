"""Many concurrent ``run_now`` calls on one task: every one is a 202 with its own run
(issue 17, defect 8: 7 of 50 000 were 500s when two drew the same clock time)."""

from __future__ import annotations

import asyncio
import json

from tests.api.conftest import client_for, running_app
from tests.support import ADMIN_TOKEN

CALLS = 600


async def test_concurrent_run_now_calls_all_queue_a_run(fresh_db):
    async with (
        running_app(fresh_db, pool_max_size=20) as app,
        client_for(app, ADMIN_TOKEN) as client,
    ):
        created = await client.post(
            "/tasks",
            json={
                "title": "manual",
                "schedule_kind": "event",
                "schedule_expr": "never.published",
                "payload": {"pipeline": [{"id": "e", "uses": "debug.echo", "with": {}}]},
            },
        )
        task_id = created.json()["id"]
        gate = asyncio.Semaphore(40)

        async def run_now() -> tuple[int, str]:
            async with gate:
                response = await client.post(f"/tasks/{task_id}/run_now")
                return response.status_code, response.text

        answers = await asyncio.gather(*(run_now() for _ in range(CALLS)))
    statuses = [status for status, _ in answers]
    assert statuses.count(202) == CALLS, [text for status, text in answers if status != 202][:3]
    ids = {json.loads(text)["id"] for _, text in answers}
    assert len(ids) == CALLS
