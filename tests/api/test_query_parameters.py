"""Query parameters: several values per filter, the ``trigger`` filter of ``GET /runs``,
enums refused by value, and an unknown parameter refused (422 naming ``query.<name>``) on
every route of the app."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from api.openapi import api_routes
from api.query import accepted_query
from tests.api.test_list_filters import finished_run, list_ids, new_task, run_now


async def test_runs_filter_by_several_statuses_and_by_trigger(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    task = await new_task(client)
    dead = await finished_run(app, task, status="dead")
    succeeded = await finished_run(app, task, status="succeeded")
    manual = await run_now(client, task["id"])
    async with app.state.pool.connection() as conn:
        await conn.execute("UPDATE runs SET trigger = 'retry' WHERE id = %s", (succeeded,))

    both = await list_ids(client, "/runs", status=["dead", "succeeded"])
    assert set(both) == {dead, succeeded}
    assert set(await list_ids(client, "/runs", trigger="retry")) == {succeeded}
    assert set(await list_ids(client, "/runs", trigger="manual")) == {dead, manual}
    assert set(await list_ids(client, "/runs", trigger=["manual", "retry"])) == {
        dead,
        succeeded,
        manual,
    }
    assert await list_ids(client, "/runs", trigger="manual", status="succeeded") == []


async def test_tasks_filter_by_several_values(client: httpx.AsyncClient) -> None:
    once = await new_task(client, title="once")
    cron = await new_task(client, title="cron", schedule_kind="cron", schedule_expr="0 9 * * *")
    paused = await client.post(f"/tasks/{cron['id']}/pause")
    assert paused.status_code == 200
    kinds = await list_ids(client, "/tasks", schedule_kind=["once", "cron"])
    assert set(kinds) == {once["id"], cron["id"]}
    assert await list_ids(client, "/tasks", status=["paused", "canceled"]) == [cron["id"]]


async def test_a_filter_value_outside_its_enum_is_a_422_naming_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/runs", params={"status": ["dead", "deadd"]})
    assert response.status_code == 422
    assert [d["path"] for d in response.json()["error"]["details"]] == ["query.status[1]"]
    response = await client.get("/runs", params={"trigger": "cron"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "query.trigger[0]"


async def test_an_unknown_query_parameter_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/runs", params={"trigerr": "manual", "limit": 5})
    assert response.status_code == 422
    body = response.json()["error"]
    assert [d["path"] for d in body["details"]] == ["query.trigerr"]
    assert "unknown query parameter" in body["message"]
    assert "trigger" in body["message"]  # names what the route takes


async def test_every_route_refuses_an_unknown_query_parameter(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    checked = 0
    for path, route in api_routes(app):
        url = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)
        for method in sorted(route.methods or ()):
            response = await client.request(method, url, params={"no_such_parameter": "1"})
            label = f"{method} {path}"
            assert response.status_code == 422, (label, response.text)
            details = response.json()["error"]["details"]
            assert "query.no_such_parameter" in [d["path"] for d in details], label
            checked += 1
    assert checked >= 30


async def test_a_stranger_gets_401_not_the_parameter_list(app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as anonymous:
        response = await anonymous.get("/runs", params={"trigerr": "x"})
    assert response.status_code == 401


def test_the_accepted_names_are_the_declared_ones(app: FastAPI) -> None:
    routes = {(p, m): route for p, route in api_routes(app) for m in route.methods or ()}
    assert accepted_query(routes[("/runs", "GET")]) == {
        "task_id",
        "status",
        "trigger",
        "since",
        "until",
        "limit",
        "cursor",
    }
    assert accepted_query(routes[("/health", "GET")]) == frozenset()
