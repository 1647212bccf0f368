"""The web console in-process: sessions, CSRF and origin checks, isolation, scopes, the
audit trail under the REST action names, bulk actions. The browser tests (tests/ui/) drive
the same pages through Chromium against real processes."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from api.openapi import api_routes
from store import console_sessions as sessions_store
from store.db import connect
from tests.api.conftest import client_for, quick_task
from tests.factories import insert_dead_run
from tests.support import ADMIN_TOKEN

ORIGIN = {"origin": "http://api"}
EVERY_PAGE = ("/ui", "/ui/tasks", "/ui/runs", "/ui/tools", "/ui/tools/debug.echo")
ADMIN_PAGES = ("/ui/agents", "/ui/audit", "/ui/workers")


class Browser:
    """A signed-in console user: cookies kept, CSRF token read from the pages."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.csrf = ""

    async def sign_in(self, token: str) -> httpx.Response:
        response = await self.http.post("/ui/login", data={"token": token}, headers=ORIGIN)
        page = await self.http.get("/ui")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        self.csrf = found.group(1) if found else ""
        return response

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None, **kw: Any
    ) -> httpx.Response:
        form = {"csrf_token": self.csrf if csrf is None else csrf, **(data or {})}
        headers = kw.pop("headers", ORIGIN)
        return await self.http.post(path, data=form, headers=headers, **kw)


@pytest.fixture
async def browser_for(app: FastAPI) -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    async def open_browser(token: str, base_url: str = "http://api") -> Browser:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
        clients.append(http)
        browser = Browser(http)
        await browser.sign_in(token)
        return browser

    yield open_browser
    for http in clients:
        await http.aclose()


async def audit_actions(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/audit", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def shown_token(page: str) -> str:
    found = re.search(r'<span id="token">(ord_[^<]+)</span>', page)
    assert found, page
    return found.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def flash_of(response: httpx.Response) -> str:
    """The one-time message a redirect leaves (cookie ``ordinaut_flash``)."""
    from urllib.parse import unquote

    raw = response.cookies.get("ordinaut_flash") or ""
    return unquote(raw)


async def test_console_routes_are_outside_the_api_and_its_document(app: FastAPI, client):
    assert not [path for path, _ in api_routes(app) if path.startswith("/ui")]
    document = (await client.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/ui")]


async def test_sign_in_sets_a_strict_http_only_cookie_and_keeps_only_its_hash(
    app: FastAPI, fresh_db: str
):
    async with client_for(app) as http:
        response = await http.post("/ui/login", data={"token": ADMIN_TOKEN}, headers=ORIGIN)
    assert response.status_code == 303 and response.headers["location"] == "/ui"
    cookie = response.headers["set-cookie"]
    assert "ordinaut_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the HTTPS test below
    session_id = response.cookies["ordinaut_session"]
    conn = await connect(fresh_db)
    async with conn:
        cursor = await conn.execute("SELECT id_hash, token_id FROM console_sessions")
        rows = await cursor.fetchall()
    assert [bytes(r["id_hash"]) for r in rows] == [hashlib.sha256(session_id.encode()).digest()]
    assert session_id.encode() not in bytes(rows[0]["id_hash"])


async def test_a_stream_recheck_does_not_count_as_a_use_of_the_token(app: FastAPI, fresh_db: str):
    async with client_for(app) as http:
        response = await http.post("/ui/login", data={"token": ADMIN_TOKEN}, headers=ORIGIN)
    id_hash = hashlib.sha256(response.cookies["ordinaut_session"].encode()).digest()
    conn = await connect(fresh_db)
    async with conn:
        stale = "UPDATE agent_tokens SET last_used_at = now() - interval '1 hour'"
        await conn.execute(stale)
        used = "SELECT last_used_at > now() - interval '1 minute' AS recent FROM agent_tokens"
        assert await sessions_store.session_principal(conn, id_hash, touch=False) is not None
        assert not any(row["recent"] for row in await (await conn.execute(used)).fetchall())
        assert await sessions_store.session_principal(conn, id_hash) is not None  # a page
        assert any(row["recent"] for row in await (await conn.execute(used)).fetchall())


async def test_the_cookie_is_secure_over_https(app: FastAPI):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://api"
    ) as http:
        response = await http.post(
            "/ui/login", data={"token": ADMIN_TOKEN}, headers={"origin": "https://api"}
        )
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


async def test_a_bad_token_is_refused_and_pages_need_a_session(app: FastAPI):
    async with client_for(app) as http:
        refused = await http.post("/ui/login", data={"token": "ord_nope"}, headers=ORIGIN)
        assert refused.status_code == 401 and "not valid" in refused.text
        assert "ordinaut_session" not in refused.headers.get("set-cookie", "")
        page = await http.get("/ui/tasks?status=paused")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login?next=%2Fui%2Ftasks%3Fstatus%3Dpaused"
        # a POST without a session goes to sign-in too, and changes nothing
        assert (await http.post("/ui/logout", data={}, headers=ORIGIN)).status_code == 303


async def test_sign_in_goes_back_only_to_console_paths(app: FastAPI):
    async with client_for(app) as http:
        for target, expected in (
            ("/ui/runs?status=dead", "/ui/runs?status=dead"),
            ("//evil.example/ui", "/ui"),
            ("https://evil.example/", "/ui"),
            ("/ui//evil.example", "/ui"),
        ):
            response = await http.post(
                "/ui/login", data={"token": ADMIN_TOKEN, "next": target}, headers=ORIGIN
            )
            assert response.headers["location"] == expected, target


async def test_every_page_answers_for_an_admin_and_for_an_agent(
    browser_for, make_agent, client: httpx.AsyncClient
):
    agent = await make_agent("tasks:read", "tasks:write", "runs:read", "runs:write", "tools:read")
    task = (await agent.client.post("/tasks", json=quick_task())).json()
    run = (await agent.client.post(f"/tasks/{task['id']}/run_now")).json()
    pages = (*EVERY_PAGE, f"/ui/tasks/{task['id']}", f"/ui/runs/{run['id']}", "/ui/overview")
    admin = await browser_for(ADMIN_TOKEN)
    bot = await browser_for(agent.token)
    for path in (*pages, *ADMIN_PAGES, f"/ui/agents/{agent.id}"):
        response = await admin.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in response.headers["content-security-policy"]
    for path in pages:
        response = await bot.get(path)
        assert response.status_code == 200, (path, response.text[:500])
    for path in (*ADMIN_PAGES, f"/ui/agents/{agent.id}"):
        assert (await bot.get(path)).status_code == 403, path
    nav = (await bot.get("/ui")).text
    assert 'href="/ui/agents"' not in nav and 'href="/ui/audit"' not in nav
    assert 'href="/ui/workers"' not in nav  # the registry is admin's, as GET /workers
    assert (await bot.get("/ui/no/such/page")).status_code == 404
    assert (await bot.get("/ui/tasks/not-a-uuid")).status_code == 404


async def test_an_action_needs_the_session_csrf_token_and_this_origin(browser_for, make_agent):
    agent = await make_agent("tasks:read", "tasks:write")
    task = (await agent.client.post("/tasks", json=quick_task())).json()
    bot = await browser_for(agent.token)
    pause = f"/ui/tasks/{task['id']}/pause"
    assert (await bot.post(pause, csrf="forged")).status_code == 403
    assert (await bot.post(pause, csrf="")).status_code == 403
    assert (await bot.post(pause, headers={})).status_code == 403  # no Origin, no Referer
    foreign = {"origin": "https://evil.example"}
    assert (await bot.post(pause, headers=foreign)).status_code == 403
    referer = {"referer": "https://evil.example/ui/tasks"}
    assert (await bot.post(pause, headers=referer)).status_code == 403
    assert (await agent.client.get(f"/tasks/{task['id']}")).json()["status"] == "active"

    other = await browser_for(agent.token)  # another session of the same agent
    assert (await bot.post(pause, csrf=other.csrf)).status_code == 403
    same_site = {"referer": f"http://api/ui/tasks/{task['id']}"}
    done = await bot.post(pause, headers=same_site)
    assert done.status_code == 303 and done.headers["location"] == f"/ui/tasks/{task['id']}"
    assert "Task paused" in flash_of(done)
    assert (await agent.client.get(f"/tasks/{task['id']}")).json()["status"] == "paused"


async def test_agent_b_neither_sees_nor_touches_agent_a_objects(browser_for, make_agent):
    scopes = ("tasks:read", "tasks:write", "runs:read", "runs:write")
    alice, bob = await make_agent(*scopes), await make_agent(*scopes)
    task = (await alice.client.post("/tasks", json=quick_task(title="alice-secret"))).json()
    run = (await alice.client.post(f"/tasks/{task['id']}/run_now")).json()
    b = await browser_for(bob.token)
    assert "alice-secret" not in (await b.get("/ui/tasks")).text
    assert "alice-secret" not in (await b.get(f"/ui/tasks?q={task['id']}")).text
    assert run["id"] not in (await b.get("/ui/runs")).text
    assert (await b.get(f"/ui/tasks/{task['id']}")).status_code == 404
    assert (await b.get(f"/ui/runs/{run['id']}")).status_code == 404
    for action in ("pause", "cancel", "run_now", "snooze"):
        forged = await b.post(f"/ui/tasks/{task['id']}/{action}", {"delay_seconds": "60"})
        assert forged.status_code == 404, action
    assert (await b.post(f"/ui/runs/{run['id']}/cancel")).status_code == 404
    # a bulk action naming her run finds nothing to act on
    confirm = await b.post("/ui/runs/bulk", {"action": "cancel", "run_id": run["id"]})
    assert confirm.status_code == 200 and "Nothing to cancel" in confirm.text
    applied = await b.post("/ui/runs/bulk/confirm", {"action": "cancel", "run_id": run["id"]})
    assert "skipped" in flash_of(applied)
    assert (await alice.client.get(f"/tasks/{task['id']}")).json()["status"] == "active"
    assert (await alice.client.get(f"/runs/{run['id']}")).json()["status"] == "queued"


async def test_console_actions_are_audited_under_the_rest_action_names(
    browser_for, make_agent, client: httpx.AsyncClient, fresh_db: str
):
    agent = await make_agent("tasks:read", "tasks:write", "runs:read", "runs:write")
    rest_task = (await agent.client.post("/tasks", json=quick_task(title="rest"))).json()
    ui_task = (await agent.client.post("/tasks", json=quick_task(title="ui"))).json()
    dead = await insert_dead_run(fresh_db, rest_task["id"], agent.id)
    dead_ui = await insert_dead_run(fresh_db, ui_task["id"], agent.id)
    rest = agent.client
    rest_calls = [
        rest.post(f"/tasks/{rest_task['id']}/snooze", json={"delay_seconds": 60}),
        rest.post(f"/tasks/{rest_task['id']}/run_now"),
        rest.post(f"/tasks/{rest_task['id']}/pause"),
        rest.post(f"/tasks/{rest_task['id']}/resume"),
        rest.post(f"/runs/{dead}/retry"),
    ]
    for call in rest_calls:
        assert (await call).status_code < 300
    queued = await rest.get("/runs", params={"task_id": rest_task["id"], "status": "queued"})
    assert (await rest.post(f"/runs/{queued.json()['items'][0]['id']}/cancel")).status_code == 200
    assert (await rest.post(f"/tasks/{rest_task['id']}/cancel")).status_code == 200

    ui = await browser_for(agent.token)
    base = f"/ui/tasks/{ui_task['id']}"
    for path, data in (
        (f"{base}/snooze", {"delay_seconds": "60"}),
        (f"{base}/run_now", {}),
        (f"{base}/pause", {}),
        (f"{base}/resume", {}),
        (f"/ui/runs/{dead_ui}/retry", {}),
    ):
        response = await ui.post(path, data)
        assert response.status_code == 303 and "error" not in flash_of(response), path
    queued = await rest.get("/runs", params={"task_id": ui_task["id"], "status": "queued"})
    run_id = queued.json()["items"][0]["id"]
    assert (await ui.post(f"/ui/runs/{run_id}/cancel")).status_code == 303
    assert (await ui.post(f"{base}/cancel")).status_code == 303

    def trail(entries: list[dict[str, Any]], subjects: set[str]) -> list[tuple[str, str]]:
        return [(e["action"], e["subject_type"]) for e in entries if e["subject_id"] in subjects]

    entries = await audit_actions(client, actor=agent.id)
    via_rest = trail([e for e in entries if "via" not in e["details"]], {rest_task["id"], dead})
    via_ui = [e for e in entries if e["details"].get("via") == "console"]
    assert [(e["action"], e["subject_type"]) for e in via_ui if e["subject_id"] != run_id] == [
        pair for pair in via_rest if pair != ("tasks.create", "task")
    ]
    assert sorted({e["action"] for e in via_ui}) == sorted(
        {
            "tasks.snooze",
            "tasks.run_now",
            "tasks.pause",
            "tasks.resume",
            "runs.retry",
            "runs.cancel",
            "tasks.cancel",
        }
    )
    retried = next(e for e in via_ui if e["action"] == "runs.retry")
    assert retried["subject_id"] == dead_ui and retried["details"]["result_id"] != dead_ui
    assert all(e["actor_name"] == agent.name and e["request_id"] for e in via_ui)


async def test_admin_agent_actions_show_a_new_token_once_and_are_audited(
    browser_for, client: httpx.AsyncClient
):
    admin = await browser_for(ADMIN_TOKEN)
    created = await admin.post("/ui/agents", {"name": "ui-made", "scope": ["tasks:read"]})
    assert created.status_code == 200
    token = shown_token(created.text)
    me = await client.get("/agents/me", headers=bearer(token))
    assert me.json()["name"] == "ui-made" and me.json()["scopes"] == ["tasks:read"]
    agent_id = me.json()["id"]
    rotated = await admin.post(f"/ui/agents/{agent_id}/rotate")
    new_token = shown_token(rotated.text)
    assert (await client.get("/agents/me", headers=bearer(token))).status_code == 401
    assert (await client.get("/agents/me", headers=bearer(new_token))).status_code == 200
    page = await admin.get(f"/ui/agents/{agent_id}")
    assert new_token not in page.text and token not in page.text  # shown once, never again
    revoked = await admin.post(f"/ui/agents/{agent_id}/revoke")
    assert revoked.status_code == 303 and "deleted" in flash_of(revoked)
    bad = await admin.post("/ui/agents", {"name": " ", "scope": ["nope"]})
    assert bad.status_code == 303 and "error" in flash_of(bad)
    entries = await audit_actions(client, subject_id=agent_id)
    actions = [e["action"] for e in entries]
    assert actions == ["agents.delete", "agents.tokens.create", "agents.create"]
    assert all(e["details"]["via"] == "console" for e in entries)


async def test_revoking_the_token_or_deleting_the_agent_ends_its_sessions(
    browser_for, make_agent, client: httpx.AsyncClient
):
    agent = await make_agent("tasks:read")
    ui = await browser_for(agent.token)
    assert (await ui.get("/ui/tasks")).status_code == 200
    assert (await client.post(f"/agents/{agent.id}/tokens")).status_code == 201  # rotation
    assert (await ui.get("/ui/tasks")).status_code == 303

    other = await make_agent("tasks:read")
    ui = await browser_for(other.token)
    assert (await ui.get("/ui/tasks")).status_code == 200
    assert (await client.delete(f"/agents/{other.id}")).status_code == 204
    assert (await ui.get("/ui/tasks")).status_code == 303


async def test_sign_out_deletes_the_session(browser_for, fresh_db: str):
    ui = await browser_for(ADMIN_TOKEN)
    cookie = ui.http.cookies["ordinaut_session"]
    assert (await ui.post("/ui/logout", csrf="forged")).status_code == 403
    out = await ui.post("/ui/logout")
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    conn = await connect(fresh_db)
    async with conn:
        cursor = await conn.execute("SELECT count(*) AS n FROM console_sessions")
        left = await cursor.fetchone()
    assert left is not None and left["n"] == 0
    ui.http.cookies.set("ordinaut_session", cookie, domain="api", path="/ui")
    assert (await ui.get("/ui")).status_code == 303  # the old cookie opens nothing


async def test_a_token_sees_and_does_what_its_scopes_allow(browser_for, make_agent, client):
    reader = await make_agent("tasks:read")
    task = (await reader.client.post("/tasks", json=quick_task())).status_code
    assert task == 403
    owner = await make_agent("tasks:read", "tasks:write")
    task = (await owner.client.post("/tasks", json=quick_task())).json()
    ui = await browser_for(owner.token)
    page = (await ui.get(f"/ui/tasks/{task['id']}")).text
    assert "/pause" in page and "Recent runs" not in page  # no runs:read: no runs shown
    assert (await ui.get("/ui/runs")).status_code == 403
    assert (await ui.get("/ui/tools")).status_code == 403
    read_only = await make_agent("tasks:read", "runs:read")
    ui = await browser_for(read_only.token)
    assert (await ui.get("/ui/tasks")).status_code == 200
    assert (await ui.post(f"/ui/tasks/{task['id']}/pause")).status_code == 403


async def test_bulk_cancel_names_the_count_and_acts_on_exactly_those_runs(browser_for, make_agent):
    agent = await make_agent("tasks:read", "tasks:write", "runs:read", "runs:write")
    keep = (await agent.client.post("/tasks", json=quick_task(title="keep"))).json()
    drop = (await agent.client.post("/tasks", json=quick_task(title="drop"))).json()
    for task in (keep, drop, drop, drop):
        assert (await agent.client.post(f"/tasks/{task['id']}/run_now")).status_code == 202
    ui = await browser_for(agent.token)
    filters = {"task": drop["id"], "status": "queued"}
    confirm = await ui.post("/ui/runs/bulk", {"action": "cancel", "all_matching": "1", **filters})
    assert confirm.status_code == 200
    assert "Cancel 3 runs?" in confirm.text
    ids = re.findall(r'name="run_id" value="([^"]+)"', confirm.text)
    assert len(ids) == 3
    back = "/ui/runs?task=" + drop["id"]
    form = {"action": "cancel", "run_id": ids, "back": back}
    applied = await ui.post("/ui/runs/bulk/confirm", form)
    assert applied.status_code == 303 and applied.headers["location"] == back
    assert "Canceled 3 runs." in flash_of(applied)
    runs = (await agent.client.get("/runs", params={"limit": 50})).json()["items"]
    by_task = {(r["task_id"], r["status"]) for r in runs}
    assert (keep["id"], "queued") in by_task and (drop["id"], "queued") not in by_task

    selected = await ui.post("/ui/runs/bulk", {"action": "retry", "run_id": ids[:2]})
    assert "Retry 0 runs?" in selected.text and "cannot be retried" in selected.text
    nothing = await ui.post("/ui/runs/bulk", {"action": "cancel", "back": "/ui/runs"})
    assert nothing.status_code == 303 and "Select one or more runs" in flash_of(nothing)


async def test_bulk_retry_of_dead_runs(browser_for, make_agent, fresh_db: str):
    agent = await make_agent("tasks:read", "tasks:write", "runs:read", "runs:write")
    task = (await agent.client.post("/tasks", json=quick_task())).json()
    dead = [await insert_dead_run(fresh_db, task["id"], agent.id) for _ in range(4)]
    ui = await browser_for(agent.token)
    confirm = await ui.post("/ui/runs/bulk", {"action": "retry", "run_id": dead[:3]})
    assert "Retry 3 runs?" in confirm.text
    ids = re.findall(r'name="run_id" value="([^"]+)"', confirm.text)
    assert sorted(ids) == sorted(dead[:3])
    applied = await ui.post("/ui/runs/bulk/confirm", {"action": "retry", "run_id": ids})
    assert "Retried 3 runs." in flash_of(applied)
    retries = (await agent.client.get("/runs", params={"task_id": task["id"]})).json()["items"]
    assert sorted(r["retry_of"] for r in retries if r["trigger"] == "retry") == sorted(dead[:3])


async def test_overview_reports_the_fleet_and_the_tokens_own_numbers(
    browser_for, make_agent, fresh_db: str
):
    agent = await make_agent("tasks:read", "runs:read")
    other = await make_agent("tasks:read", "tasks:write", "runs:read")
    task = (await other.client.post("/tasks", json=quick_task())).json()
    await insert_dead_run(fresh_db, task["id"], other.id)
    mine = await browser_for(agent.token)
    theirs = await browser_for(other.token)
    admin = await browser_for(ADMIN_TOKEN)
    assert "No run died in the last 24 hours" in (await mine.get("/ui")).text
    for ui in (theirs, admin):
        page = (await ui.get("/ui")).text
        assert "signal-bad" in page and "boom" in page  # the dead run is red
    fragment = await admin.get("/ui/overview")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'hx-trigger="every 5s"' in fragment.text


async def test_a_title_search_reads_a_bounded_number_of_tasks_then_searches_on(
    browser_for, make_agent, monkeypatch
):
    from api.console.pages import tasks as tasks_page

    monkeypatch.setattr(tasks_page, "SEARCH_BUDGET", 3)
    agent = await make_agent("tasks:read", "tasks:write")
    for title in ("needle-old", "hay-1", "hay-2", "hay-3", "hay-4"):
        assert (await agent.client.post("/tasks", json=quick_task(title=title))).status_code == 201
    ui = await browser_for(agent.token)
    first = await ui.get("/ui/tasks?q=needle")
    assert "needle-old" not in first.text and "No match among these tasks" in first.text
    older = re.search(r'<a class="btn" href="([^"]+)">Search older tasks', first.text)
    assert older
    second = await ui.get(older.group(1).replace("&amp;", "&"))
    assert "needle-old" in second.text
    assert "hay-4" in (await ui.get("/ui/tasks?q=HAY")).text  # case-insensitive
    assert "hay-4" not in (await ui.get("/ui/tasks?q=%25")).text  # % is a character


async def test_behind_a_proxy_the_public_url_names_the_site_and_makes_the_cookie_secure(
    app_factory,
):
    proxied = await app_factory(public_url="https://ordinaut.example.com")
    async with client_for(proxied) as http:  # the proxy talks plain HTTP to us, Host "api"
        outside = {"origin": "https://ordinaut.example.com"}
        response = await http.post("/ui/login", data={"token": ADMIN_TOKEN}, headers=outside)
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"]
        foreign = {"origin": "https://evil.example"}
        refused = await http.post("/ui/login", data={"token": ADMIN_TOKEN}, headers=foreign)
        assert refused.status_code == 403


async def test_every_console_route_needs_a_session(app: FastAPI):
    """Enumerated, so pages added later are covered: without a session every page and
    action leads to the sign-in page and does nothing."""
    from fastapi.routing import APIRoute

    from api.console.routing import router

    checked = 0
    async with client_for(app) as anonymous:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            if route.path in ("/ui/login", "/ui/{rest:path}"):
                continue
            path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)
            for method in route.methods or ():
                response = await anonymous.request(method, path, headers=ORIGIN)
                assert response.status_code == 303, (method, route.path, response.text[:200])
                assert response.headers["location"].startswith("/ui/login"), route.path
                checked += 1
    assert checked >= 20


async def test_the_run_page_shows_tries_skip_reasons_attempts_timing_and_deliveries(
    browser_for, make_agent, fresh_db: str
):
    """The run page reads the run as GET /runs/{id} presents it: a step's failed tries with
    the backoff after each, why a step was skipped, the failed attempts before this one, the
    timing breakdown and the webhook deliveries."""
    agent = await make_agent("tasks:read", "tasks:write", "runs:read")
    task = (await agent.client.post("/tasks", json=quick_task())).json()
    run_id = await insert_run_with_history(fresh_db, task["id"], agent.id)
    rest = (await agent.client.get(f"/runs/{run_id}")).json()
    ui = await browser_for(agent.token)
    page = (await ui.get(f"/ui/runs/{run_id}")).text
    assert "Try 1" in page and "HTTP 503 from the upstream" in page
    assert "then waited 1.2 s before try 2" in page and "2 tries" in page
    assert (
        "if: steps.fetch.output.changed" in page and 'gave <span class="mono">false</span>' in page
    )
    assert "Earlier attempts" in page and "worker-old" in page and "lease lost" in page
    assert 'id="timing"' in page and "backoff between tries" in page
    assert rest["timing"]["step_backoff_ms"] == 1200
    assert "Webhook deliveries" in page and "https://hooks.example/done" in page
    assert "HTTP 500" in page
    assert "data-run-stream" not in page  # ended: nothing to follow
    fragment = await ui.get(f"/ui/runs/{run_id}/body")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'id="run-body"' in fragment.text and "Try 1" in fragment.text


async def test_the_run_stream_of_the_console_is_the_sessions_own(browser_for, make_agent):
    """The console's run stream follows one run the session may read: another agent's run
    is a 404 (its events never reach that session); a run that has ended says so at once."""
    scopes = ("tasks:read", "tasks:write", "runs:read", "runs:write")
    alice, bob = await make_agent(*scopes), await make_agent(*scopes)
    task = (await alice.client.post("/tasks", json=quick_task())).json()
    run = (await alice.client.post(f"/tasks/{task['id']}/run_now")).json()
    mine, theirs = await browser_for(alice.token), await browser_for(bob.token)
    page = (await mine.get(f"/ui/runs/{run['id']}")).text
    assert f'data-run-stream="/ui/runs/{run["id"]}/stream"' in page  # queued: followed
    assert (await theirs.get(f"/ui/runs/{run['id']}/stream")).status_code == 404
    assert (await theirs.get(f"/ui/runs/{run['id']}/body")).status_code == 404
    await alice.client.post(f"/runs/{run['id']}/cancel")
    ended = await mine.get(f"/ui/runs/{run['id']}/stream")
    assert ended.status_code == 200
    assert ended.headers["content-type"].startswith("text/event-stream")
    assert ended.text == "event: ended\ndata: {}\n\n"


async def insert_run_with_history(database_url: str, task_id: str, agent_id: str) -> str:
    """A succeeded second attempt whose first step was retried once and whose second step
    was skipped, after a first attempt that failed; its webhook delivery failed once."""
    run_id = str(uuid.uuid4())
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    at = lambda ms: (t0 + timedelta(milliseconds=ms)).isoformat()  # noqa: E731
    failure = {
        "step_id": "fetch",
        "type": "http_error",
        "message": "HTTP 503 from the upstream",
        "retryable": True,
    }
    steps = [
        {
            "id": "fetch",
            "uses": "http.request",
            "status": "succeeded",
            "started_at": at(3300),
            "duration_ms": 40,
            "attempt": 2,
            "output": {"changed": False},
            "tries": [
                {
                    "try": 1,
                    "started_at": at(2050),
                    "duration_ms": 50,
                    "error": failure,
                    "backoff_ms": 1200,
                }
            ],
        },
        {
            "id": "notify",
            "uses": "debug.echo",
            "status": "skipped",
            "started_at": None,
            "duration_ms": 0,
            "skip_reason": {"if": "steps.fetch.output.changed", "value": False},
        },
    ]
    attempts = [
        {
            "number": 1,
            "worker_id": "worker-old",
            "started_at": at(100),
            "finished_at": at(900),
            "duration_ms": 800,
            "error": {
                "step_id": None,
                "type": "lease_lost",
                "message": "lease lost",
                "retryable": True,
            },
        }
    ]
    conn = await connect(database_url)
    async with conn:
        await conn.execute(
            """
            INSERT INTO runs (id, task_id, agent_id, trigger, status, scheduled_for, queued_at,
                              attempt, started_at, finished_at, duration_ms, steps, attempts)
            VALUES (%s, %s, %s, 'manual', 'succeeded', %s, %s, 2, %s, %s, 1400, %s, %s)
            """,
            (
                run_id,
                task_id,
                agent_id,
                t0,
                t0,
                t0 + timedelta(milliseconds=2000),
                t0 + timedelta(milliseconds=3450),
                Jsonb(steps),
                Jsonb(attempts),
            ),
        )
        await conn.execute(
            """
            INSERT INTO webhook_deliveries (run_id, task_id, agent_id, url, attempts,
                                            last_attempt_at, last_status, last_error)
            VALUES (%s, %s, %s, 'https://hooks.example/done', 1, now(), 500, 'HTTP 500')
            """,
            (run_id, task_id, agent_id),
        )
    return run_id
