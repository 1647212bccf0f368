"""The walking skeleton with real processes: POST /tasks → scheduler → worker → GET /runs."""

from __future__ import annotations

import pytest

from tests.support import api_client, cluster, echo_task, eventually

pytestmark = pytest.mark.e2e


async def test_a_once_task_runs_end_to_end(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        running.scheduler()
        running.worker(concurrency=4)
        async with api_client(api) as client:
            created = await client.post("/tasks", json=echo_task())
            assert created.status_code == 201, created.text
            task_id = created.json()["id"]

            async def runs() -> list[dict]:
                response = await client.get("/runs", params={"task_id": task_id})
                return response.json()["items"]

            items = await eventually(
                runs,
                until=lambda rs: bool(rs) and rs[0]["status"] == "succeeded",
                message="the run to succeed",
            )
            run = (await client.get(f"/runs/{items[0]['id']}")).json()
            assert run["trigger"] == "schedule"
            assert run["attempt"] == 1
            assert run["steps"][0]["output"] == {"value": 42}
            assert run["steps"][0]["status"] == "succeeded"
            task = (await client.get(f"/tasks/{task_id}")).json()
            assert task["status"] == "completed"
            assert task["next_run_at"] is None


async def test_invalid_task_json_is_a_422_not_a_500(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        async with api_client(api) as client:
            broken = await client.post(
                "/tasks", content=b"{not json", headers={"Content-Type": "application/json"}
            )
            assert broken.status_code == 422
            assert broken.json()["error"]["details"][0]["path"] == "$"
            wrong = await client.post("/tasks", json={"title": 5, "payload": []})
            assert wrong.status_code == 422
            paths = {d["path"] for d in wrong.json()["error"]["details"]}
            assert {"$.title", "$.payload"} <= paths
            anonymous = await client.get("/tasks", headers={"Authorization": ""})
            assert anonymous.status_code == 401
