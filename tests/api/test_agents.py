"""``/agents``: creation with a token shown once, listing, changes, deletion, rotation,
``/agents/me``, the last-admin guard and the bootstrap admin."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from engine.tokens import hash_token
from store.db import connect
from tests.api.conftest import client_for, quick_task, running_app
from tests.support import ADMIN_TOKEN


async def test_create_shows_the_token_once_and_stores_only_its_hash(
    app: FastAPI, client: httpx.AsyncClient, fresh_db: str
):
    created = await client.post(
        "/agents", json={"name": "weather-bot", "scopes": ["tasks:write", "tasks:read"]}
    )
    assert created.status_code == 201, created.text
    agent = created.json()
    token = agent["token"]
    assert token.startswith("ord_") and len(token) >= 40
    assert agent["scopes"] == ["tasks:read", "tasks:write"]  # documented order
    assert agent["deleted_at"] is None

    shown = await client.get(f"/agents/{agent['id']}")
    assert shown.status_code == 200
    assert "token" not in shown.json()
    [listed_token] = shown.json()["tokens"]
    assert token.startswith(listed_token["prefix"]) and len(listed_token["prefix"]) < 16
    assert listed_token["revoked_at"] is None

    conn = await connect(fresh_db)
    async with conn:
        cursor = await conn.execute(
            "SELECT token_hash FROM agent_tokens WHERE agent_id = %s", (agent["id"],)
        )
        assert [bytes(r["token_hash"]) for r in await cursor.fetchall()] == [hash_token(token)]

    async with client_for(app, token) as bot:
        me = await bot.get("/agents/me")
    assert me.status_code == 200
    assert me.json()["name"] == "weather-bot"
    assert me.json()["scopes"] == ["tasks:read", "tasks:write"]


async def test_token_last_used_is_recorded(client: httpx.AsyncClient, make_agent: Any):
    bot = await make_agent("tasks:read")
    assert (await bot.client.get("/tasks")).status_code == 200
    [token] = (await client.get(f"/agents/{bot.id}")).json()["tokens"]
    assert token["last_used_at"] is not None


async def test_invalid_agents_are_422_with_paths(client: httpx.AsyncClient):
    cases = [
        ({"name": "", "scopes": []}, "$.name"),
        ({"name": "  padded ", "scopes": []}, "$.name"),
        ({"name": "nul\u0000name", "scopes": []}, "$.name"),
        ({"name": "x", "scopes": ["root"]}, "$.scopes[0]"),
        ({"name": "x", "scopes": [], "extra": 1}, "$.extra"),
        ({"scopes": []}, "$.name"),
    ]
    for body, path in cases:
        response = await client.post("/agents", json=body)
        assert response.status_code == 422, (body, response.text)
        assert path in [d["path"] for d in response.json()["error"]["details"]], body


async def test_names_are_unique_among_live_agents(client: httpx.AsyncClient):
    first = await client.post("/agents", json={"name": "twin", "scopes": []})
    assert first.status_code == 201
    again = await client.post("/agents", json={"name": "twin", "scopes": []})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert (await client.delete(f"/agents/{first.json()['id']}")).status_code == 204
    reused = await client.post("/agents", json={"name": "twin", "scopes": []})
    assert reused.status_code == 201


async def test_list_paginates_and_hides_deleted_agents(client: httpx.AsyncClient, make_agent):
    made = [await make_agent("tasks:read") for _ in range(5)]
    await client.delete(f"/agents/{made[0].id}")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/agents", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert made[0].id not in seen
    assert {m.id for m in made[1:]} <= set(seen)
    assert len(seen) == len(set(seen))
    everyone = (await client.get("/agents", params={"include_deleted": True, "limit": 500})).json()
    assert made[0].id in [item["id"] for item in everyone["items"]]
    named = (await client.get("/agents", params={"name": made[1].name})).json()["items"]
    assert [item["id"] for item in named] == [made[1].id]


async def test_scope_changes_apply_to_the_next_request(client: httpx.AsyncClient, make_agent):
    bot = await make_agent("tasks:read")
    assert (await bot.client.get("/runs")).status_code == 403
    patched = await client.patch(f"/agents/{bot.id}", json={"scopes": ["runs:read"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["scopes"] == ["runs:read"]
    assert (await bot.client.get("/runs")).status_code == 200
    assert (await bot.client.get("/tasks")).status_code == 403
    renamed = await client.patch(f"/agents/{bot.id}", json={"name": "renamed-bot"})
    assert renamed.json()["name"] == "renamed-bot"
    assert renamed.json()["scopes"] == ["runs:read"]


async def test_delete_revokes_every_token_at_once(
    app: FastAPI, client: httpx.AsyncClient, make_agent
):
    bot = await make_agent("tasks:read")
    spare = (await client.post(f"/agents/{bot.id}/tokens", params={"keep_existing": True})).json()
    assert (await client.delete(f"/agents/{bot.id}")).status_code == 204
    assert (await bot.client.get("/tasks")).status_code == 401
    async with client_for(app, spare["token"]) as spare_client:
        assert (await spare_client.get("/agents/me")).status_code == 401
    shown = (await client.get(f"/agents/{bot.id}")).json()
    assert shown["deleted_at"] is not None
    assert all(token["revoked_at"] for token in shown["tokens"])
    assert (await client.delete(f"/agents/{bot.id}")).status_code == 404
    assert (await client.patch(f"/agents/{bot.id}", json={"name": "z"})).status_code == 404
    assert (await client.post(f"/agents/{bot.id}/tokens")).status_code == 404


async def test_rotation_revokes_old_tokens_unless_asked_to_keep_them(
    app: FastAPI, client: httpx.AsyncClient, make_agent
):
    bot = await make_agent("tasks:read")
    kept = await client.post(f"/agents/{bot.id}/tokens", params={"keep_existing": "true"})
    assert kept.status_code == 201
    assert kept.json()["id"] == bot.id
    async with client_for(app, kept.json()["token"]) as second:
        assert (await bot.client.get("/tasks")).status_code == 200  # both work
        assert (await second.get("/tasks")).status_code == 200
        rotated = await client.post(f"/agents/{bot.id}/tokens")
        assert rotated.status_code == 201
        assert (await bot.client.get("/tasks")).status_code == 401
        assert (await second.get("/tasks")).status_code == 401
    async with client_for(app, rotated.json()["token"]) as third:
        assert (await third.get("/tasks")).status_code == 200
    tokens = (await client.get(f"/agents/{bot.id}")).json()["tokens"]
    assert [t["revoked_at"] is None for t in tokens] == [True, False, False]


async def test_the_last_admin_cannot_be_deleted_or_demoted(client: httpx.AsyncClient, make_agent):
    me = (await client.get("/agents/me")).json()
    assert (await client.delete(f"/agents/{me['id']}")).status_code == 409
    demoted = await client.patch(f"/agents/{me['id']}", json={"scopes": ["tasks:read"]})
    assert demoted.status_code == 409
    second = await make_agent("admin")
    assert (await client.patch(f"/agents/{me['id']}", json={"scopes": ["tasks:read"]})).is_success
    assert (await second.client.delete(f"/agents/{second.id}")).status_code == 409
    assert (await second.client.patch(f"/agents/{me['id']}", json={"scopes": ["admin"]})).is_success


async def test_bootstrap_admin_token_survives_deletion_of_the_admin_agent(fresh_db: str):
    async with running_app(fresh_db) as app, client_for(app, ADMIN_TOKEN) as admin:
        me = (await admin.get("/agents/me")).json()
        other = (await admin.post("/agents", json={"name": "ops", "scopes": ["admin"]})).json()
        async with client_for(app, other["token"]) as ops:
            assert (await ops.delete(f"/agents/{me['id']}")).status_code == 204
        assert (await admin.get("/agents/me")).status_code == 401
    # The next start ensures the configured token again, on a new live "admin" agent.
    async with running_app(fresh_db) as app, client_for(app, ADMIN_TOKEN) as admin:
        again = await admin.get("/agents/me")
        assert again.status_code == 200
        assert again.json()["name"] == "admin"
        assert again.json()["id"] != me["id"]


async def test_me_works_with_any_valid_token(make_agent):
    bot = await make_agent()
    response = await bot.client.get("/agents/me")
    assert response.status_code == 200
    assert response.json()["scopes"] == []
    assert (await bot.client.get("/tasks")).status_code == 403


async def test_webhook_settings_of_an_agent(client: httpx.AsyncClient, make_agent: Any, fresh_db):
    agent = await make_agent("runs:read")
    for bad in ("ftp://hooks.example/x", "hooks.example/x", "https://", "https://a b", ""):
        refused = await agent.client.patch("/agents/me", json={"webhook_url": bad})
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["details"][0]["path"] == "$.webhook_url"
    assert (await agent.client.patch("/agents/me", json={})).status_code == 422
    set_up = await agent.client.patch(
        "/agents/me", json={"webhook_url": "https://hooks.example/ordinaut?team=7"}
    )
    assert set_up.status_code == 200, set_up.text
    assert set_up.json()["webhook_url"] == "https://hooks.example/ordinaut?team=7"
    assert set_up.json()["webhook_secret_created_at"] is None

    first = (await agent.client.post("/agents/me/webhook-secret")).json()
    second = (await agent.client.post("/agents/me/webhook-secret")).json()
    assert first["secret"] != second["secret"] and second["agent_id"] == agent.id
    assert all(s["secret"].startswith("whsec_") for s in (first, second))
    me = (await agent.client.get("/agents/me")).json()
    assert me["webhook_secret_created_at"] == second["created_at"]
    assert "secret" not in me
    conn = await connect(fresh_db)
    async with conn:
        cursor = await conn.execute(
            "SELECT * FROM webhook_secrets WHERE agent_id = %s", (agent.id,)
        )
        (row,) = await cursor.fetchall()
    assert base64.b64encode(row["secret"]).decode() == second["secret"].removeprefix("whsec_")
    assert row["previous_secret"] is None and second["previous_valid_until"] is None

    # Keeping the previous secret: it is stored beside the new one, for 24 hours.
    third = (await agent.client.post("/agents/me/webhook-secret?keep_previous=true")).json()
    conn = await connect(fresh_db)
    async with conn:
        cursor = await conn.execute(
            "SELECT previous_secret, previous_until - created_at AS window"
            " FROM webhook_secrets WHERE agent_id = %s",
            (agent.id,),
        )
        (kept,) = await cursor.fetchall()
    previous = base64.b64encode(kept["previous_secret"]).decode()
    assert previous == second["secret"].removeprefix("whsec_")
    assert kept["window"] == timedelta(hours=24) and third["previous_valid_until"] is not None

    # Admins set any agent's; null stops the webhooks.
    cleared = await client.patch(f"/agents/{agent.id}", json={"webhook_url": None})
    assert cleared.status_code == 200 and cleared.json()["webhook_url"] is None
    renamed = await client.patch(f"/agents/{agent.id}", json={"name": "renamed"})
    assert renamed.json()["webhook_url"] is None and renamed.json()["name"] == "renamed"
    made = await client.post(f"/agents/{agent.id}/webhook-secret")
    assert made.status_code == 201 and made.json()["agent_id"] == agent.id
    missing = await client.post("/agents/00000000-0000-4000-8000-000000000000/webhook-secret")
    assert missing.status_code == 404


async def test_a_task_may_send_its_webhooks_elsewhere(client: httpx.AsyncClient):
    created = await client.post("/tasks", json=quick_task(webhook_url="https://hooks.example/task"))
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["webhook_url"] == "https://hooks.example/task"
    refused = await client.patch(f"/tasks/{task['id']}", json={"webhook_url": "file:///etc"})
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["path"] == "$.webhook_url"
    cleared = await client.patch(f"/tasks/{task['id']}", json={"webhook_url": None})
    assert cleared.status_code == 200 and cleared.json()["webhook_url"] is None
