"""The web console in a real browser (Chromium) against real API, scheduler and worker
processes: what a person does with it, end to end."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.support import ADMIN_TOKEN
from tests.ui.conftest import Stack

pytestmark = pytest.mark.e2e

AGENT_SCOPES = ("tasks:read", "tasks:write", "runs:read", "runs:write", "tools:read")


def wait_for(probe: Any, *, timeout: float = 20.0, message: str = "condition") -> Any:
    """Poll ``probe()`` until it returns something true (sync: the browser API is sync)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.1)


def final_run(client: httpx.Client, run_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        run = client.get(f"/runs/{run_id}").json()
        return run if run["status"] in ("succeeded", "dead", "canceled") else None

    return wait_for(probe, message=f"run {run_id} to end")


def named(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def pipeline(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "title": named("task"),
        "schedule_kind": "cron",
        "schedule_expr": "0 9 * * 1-5",
        "timezone": "Europe/Chisinau",
        "payload": {"params": {"city": "Chisinau"}, "pipeline": list(steps)},
        **fields,
    }


GREET = {"id": "greet", "uses": "debug.echo", "with": {"message": "Hello ${params.city}"}}


def test_sign_in_find_a_task_run_it_and_read_its_steps(stack: Stack, console: Any):
    _, token = stack.agent(named("reader"), *AGENT_SCOPES)
    with stack.client(token) as api:
        wanted = api.post("/tasks", json=pipeline(GREET, title=named("Morning briefing"))).json()
        other = api.post("/tasks", json=pipeline(GREET, title=named("Evening digest"))).json()
    ui = console()
    ui.sign_in(token)
    ui.open("/ui/tasks")
    assert other["title"] in ui.page.inner_text("#results")
    ui.page.fill("input[name=q]", wanted["title"])  # htmx filters as one types
    ui.page.wait_for_function(
        "title => !document.querySelector('#results').innerText.includes(title)",
        arg=other["title"],
    )
    assert wanted["title"] in ui.page.inner_text("#results")
    assert "at 09:00 on Monday to Friday" in ui.page.inner_text("#results")
    ui.page.click(f"text={wanted['title']}")
    ui.page.wait_for_url(f"**/ui/tasks/{wanted['id']}")
    assert "Europe/Chisinau" in ui.page.inner_text("main")
    ui.page.click("button:has-text('Run now')")
    ui.page.wait_for_load_state("networkidle")
    assert "Run queued" in ui.flash()
    with stack.client(token) as api:
        (run,) = api.get("/runs", params={"task_id": wanted["id"]}).json()["items"]
        final_run(api, run["id"])
    ui.open(f"/ui/runs?task={wanted['id']}")
    ui.page.click(f"a[href='/ui/runs/{run['id']}']")
    ui.page.wait_for_url(f"**/ui/runs/{run['id']}")
    steps = ui.page.inner_text("#steps")
    assert "greet" in steps and "debug.echo" in steps and "succeeded" in steps
    ui.page.click("#steps summary:has-text('output')")
    assert "Hello Chisinau" in ui.page.inner_text("#steps pre")
    ui.screenshot("agent-run-succeeded")


def test_retry_a_dead_run_from_its_page(stack: Stack, console: Any):
    _, token = stack.agent(named("fixer"), *AGENT_SCOPES)
    broken = {"id": "sync", "uses": "debug.fail", "with": {"times": 5, "message": "upstream 503"}}
    with stack.client(token) as api:
        task = api.post("/tasks", json=pipeline(GREET, broken, max_retries=0)).json()
        dead = final_run(api, api.post(f"/tasks/{task['id']}/run_now").json()["id"])
        assert dead["status"] == "dead"
        fixed = {"payload": {"params": {"city": "Chisinau"}, "pipeline": [GREET]}}
        assert api.patch(f"/tasks/{task['id']}", json=fixed).status_code == 200
    ui = console()
    ui.sign_in(token)
    ui.open(f"/ui/runs/{dead['id']}")
    assert "upstream 503" in ui.page.inner_text(".errorbox")
    ui.screenshot("agent-run-dead")
    ui.page.click("button:has-text('Retry')")
    ui.page.wait_for_url(lambda url: "/ui/runs/" in url and dead["id"] not in url)
    assert "Retry queued" in ui.flash()
    new_id = ui.page.url.rsplit("/", 1)[1]
    with stack.client(token) as api:
        retried = final_run(api, new_id)
    assert retried["status"] == "succeeded"
    assert retried["trigger"] == "retry" and retried["retry_of"] == dead["id"]
    ui.open(f"/ui/runs/{new_id}")
    assert "succeeded" in ui.page.inner_text("header")


def test_bulk_cancel_a_filtered_set_after_a_confirmation_naming_the_count(
    stack: Stack, console: Any
):
    _, token = stack.agent(named("bulk"), *AGENT_SCOPES)
    sleepy = {"id": "wait", "uses": "debug.sleep", "with": {"seconds": 30}}
    with stack.client(token) as api:
        # One concurrency key: one run runs, the other four wait behind it.
        task = api.post("/tasks", json=pipeline(sleepy, concurrency_key="one-at-a-time")).json()
        ids = [api.post(f"/tasks/{task['id']}/run_now").json()["id"] for _ in range(5)]
        wait_for(
            lambda: api.get("/runs", params={"task_id": task["id"], "status": "running"}).json()[
                "items"
            ],
            message="the first run to start",
        )
    ui = console()
    ui.sign_in(token)
    ui.open(f"/ui/runs?task={task['id']}&status=queued")
    assert len(ui.page.query_selector_all("input[name=run_id]")) == 4
    ui.page.check("input[name=all_matching]")
    ui.page.click("button:has-text('Cancel…')")
    ui.page.wait_for_load_state("networkidle")
    assert "Cancel 4 runs?" in ui.page.inner_text("h1")
    ui.screenshot("agent-bulk-confirm")
    ui.page.click("button:has-text('Cancel 4 runs')")
    ui.page.wait_for_load_state("networkidle")
    assert "Canceled 4 runs." in ui.flash()
    with stack.client(token) as api:
        statuses = {
            run["id"]: run["status"]
            for run in api.get("/runs", params={"task_id": task["id"]}).json()["items"]
        }
        assert sorted(statuses.values()) == ["canceled"] * 4 + ["running"]
        running = next(i for i in ids if statuses[i] == "running")
        assert api.post(f"/runs/{running}/cancel").status_code == 200
        assert final_run(api, running)["status"] == "canceled"


def test_agent_b_sees_nothing_of_agent_a_and_forged_actions_are_refused(stack: Stack, console: Any):
    _, alice_token = stack.agent(named("alice"), *AGENT_SCOPES)
    _, bob_token = stack.agent(named("bob"), *AGENT_SCOPES)
    with stack.client(alice_token) as alice:
        secret = alice.post("/tasks", json=pipeline(GREET, title=named("alice-only"))).json()
    bob = console()
    bob.sign_in(bob_token)
    bob.open("/ui/tasks")
    assert secret["title"] not in bob.page.inner_text("main")
    response = bob.open(f"/ui/tasks/{secret['id']}")
    assert response.status == 404 and "Not found" in bob.page.inner_text("main")
    bob.open("/ui/tasks")
    token = bob.csrf()
    forged = bob.post_form(f"/ui/tasks/{secret['id']}/pause", {"csrf_token": token})
    assert forged.status == 404  # her task: as over REST, it does not exist for him
    assert "Not found" in bob.page.inner_text("body")
    own = stack.client(bob_token).post("/tasks", json=pipeline(GREET)).json()
    bob.open("/ui/tasks")
    forged = bob.post_form(f"/ui/tasks/{own['id']}/pause", {"csrf_token": "forged-" + token})
    assert forged.status == 403 and "CSRF" in bob.page.inner_text("body")
    with stack.client(alice_token) as alice:
        assert alice.get(f"/tasks/{secret['id']}").json()["status"] == "active"
    assert stack.admin.get(f"/tasks/{own['id']}").json()["status"] == "active"


def test_sign_out_ends_the_session(stack: Stack, console: Any):
    ui = console()
    ui.sign_in(ADMIN_TOKEN)
    ui.page.click("button:has-text('Sign out')")
    ui.page.wait_for_url("**/ui/login")
    assert "Signed out" in ui.flash()
    ui.open("/ui/runs")
    assert "/ui/login?next=" in ui.page.url


def test_pages_read_without_javascript(stack: Stack, console: Any):
    _, token = stack.agent(named("nojs"), *AGENT_SCOPES)
    with stack.client(token) as api:
        task = api.post("/tasks", json=pipeline(GREET, title=named("Plain HTML"))).json()
        run = final_run(api, api.post(f"/tasks/{task['id']}/run_now").json()["id"])
    ui = console(javascript=False)
    ui.sign_in(token)
    ui.open("/ui/tasks?q=Plain")
    assert task["title"] in ui.page.inner_text("main")
    ui.open(f"/ui/runs/{run['id']}")
    assert "greet" in ui.page.inner_text("#steps")
    ui.open(f"/ui/tasks/{task['id']}")
    ui.page.click("button:has-text('Pause')")  # a plain form POST, then the redirect
    ui.page.wait_for_load_state("networkidle")
    assert "Task paused" in ui.flash()


PAGES = {
    "overview": "/ui",
    "tasks": "/ui/tasks",
    "runs": "/ui/runs",
    "tools": "/ui/tools",
    "tool": "/ui/tools/http.request",
}


def test_every_page_for_an_agent_and_an_admin(stack: Stack, console: Any):
    agent_id, token = stack.agent(named("pages"), *AGENT_SCOPES)
    with stack.client(token) as api:
        task = api.post(
            "/tasks",
            json=pipeline(
                GREET,
                {"id": "nap", "uses": "debug.sleep", "with": {"seconds": 0.2}, "save_as": "nap"},
                {"id": "log", "uses": "debug.log", "with": {"message": "x"}, "if": "`false`"},
                {"id": "flaky", "uses": "debug.fail", "with": {"times": 1}, "max_retries": 2},
                title=named("Weekday briefing"),
            ),
        ).json()
        dst = api.post(
            "/tasks",
            json=pipeline(
                GREET,
                title=named("Monthly close"),
                schedule_expr="30 2 14 * *",
                timezone="America/New_York",
            ),
        ).json()
        run = final_run(api, api.post(f"/tasks/{task['id']}/run_now").json()["id"])
    own = {
        **PAGES,
        "task": f"/ui/tasks/{task['id']}",
        "task-dst": f"/ui/tasks/{dst['id']}",
        "run": f"/ui/runs/{run['id']}",
    }
    admin_only = {
        "agents": "/ui/agents",
        "agent": f"/ui/agents/{agent_id}",
        "audit": "/ui/audit",
        "workers": "/ui/workers",
    }
    for role, credential in (("agent", token), ("admin", ADMIN_TOKEN)):
        ui = console()
        ui.sign_in(credential)
        for name, path in own.items():
            response = ui.open(path)
            assert response.status == 200, (role, path)
            ui.screenshot(f"{role}-{name}")
            if name == "run":  # a step retried inside the run, and a skipped one
                steps = ui.page.inner_text("#steps")
                assert "Try 1" in steps and "before try 2" in steps, steps
                assert "Skipped: if: `false` gave false" in steps, steps
        for name, path in admin_only.items():
            response = ui.open(path)
            assert response.status == (200 if role == "admin" else 403), (role, path)
            if role == "admin":
                ui.screenshot(f"{role}-{name}")
        unexpected = [p for p in ui.problems if "403" not in p]
        assert not unexpected, unexpected  # no CSP violation, no script error
    ui = console()
    ui.open("/ui/login")
    ui.screenshot("sign-in")
    ui.open("/ui/tasks/" + task["id"])
    assert "/ui/login" in ui.page.url


def test_the_dst_occurrence_is_marked(stack: Stack, console: Any):
    _, token = stack.agent(named("dst"), *AGENT_SCOPES)
    with stack.client(token) as api:
        task = api.post(
            "/tasks",
            json=pipeline(GREET, schedule_expr="30 2 14 * *", timezone="America/New_York"),
        ).json()
    ui = console()
    ui.sign_in(token)
    ui.open(f"/ui/tasks/{task['id']}")
    marks = ui.page.inner_text(".occurrences")
    assert "DST" in marks and "02:30 does not exist on 14 March" in marks
    assert "runs at 03:00" in marks


def test_a_running_runs_steps_appear_without_reloading(stack: Stack, console: Any):
    """The run page follows its run through the console's run stream: the steps of a 5-step
    run appear one by one while it runs, then it reads succeeded, with no navigation."""
    _, token = stack.agent(named("watcher"), *AGENT_SCOPES)
    naps = [{"id": f"nap{i}", "uses": "debug.sleep", "with": {"seconds": 1.5}} for i in range(5)]
    with stack.client(token) as api:
        task = api.post("/tasks", json=pipeline(*naps, title=named("Slow report"))).json()
        run = api.post(f"/tasks/{task['id']}/run_now").json()
    ui = console()
    ui.sign_in(token)
    navigations: list[str] = []
    ui.page.on("framenavigated", lambda frame: navigations.append(frame.url))
    ui.page.goto(f"{stack.base_url}/ui/runs/{run['id']}")
    navigations.clear()
    assert ui.page.query_selector("[data-run-stream]") is not None  # it follows the run
    seen: list[int] = []
    for count in range(1, 6):
        ui.page.wait_for_function(
            "n => document.querySelectorAll('#steps tr[data-step]').length >= n",
            arg=count,
            timeout=20_000,
        )
        shown = len(ui.page.query_selector_all("#steps tr[data-step]"))
        seen.append(shown)
        if count == 2:
            assert "running" in ui.page.inner_text("header")
            ui.screenshot("agent-run-live")
    ui.page.wait_for_function(
        "() => document.querySelector('#run-body header').innerText.includes('succeeded')",
        timeout=20_000,
    )
    assert navigations == [], navigations  # no reload, no navigation
    assert seen[0] < 5, seen  # the first steps showed while later ones still ran
    assert len(set(seen)) >= 3, seen  # they came in several updates, not all at the end
    steps = ui.page.inner_text("#steps")
    assert all(f"nap{i}" in steps for i in range(5))
    assert ui.page.query_selector("[data-run-stream]") is None  # ended: no longer followed
    ui.screenshot("agent-run-live-ended")


def test_the_console_stream_of_a_run_is_the_sessions_own(stack: Stack):
    """Agent B, signed in, cannot follow agent A's run through the console stream (404), and
    A's stream of her running run carries its events."""
    _, alice = stack.agent(named("alice"), *AGENT_SCOPES)
    _, bob = stack.agent(named("bob"), *AGENT_SCOPES)
    nap = {"id": "nap", "uses": "debug.sleep", "with": {"seconds": 1.0}}
    with stack.client(alice) as api:
        task = api.post("/tasks", json=pipeline(nap, nap | {"id": "nap2"})).json()
        run = api.post(f"/tasks/{task['id']}/run_now").json()
    origin = {"origin": stack.base_url}
    with (
        httpx.Client(base_url=stack.base_url, timeout=30) as a,
        httpx.Client(base_url=stack.base_url, timeout=30) as b,
    ):
        for http, token in ((a, alice), (b, bob)):
            signed = http.post("/ui/login", data={"token": token}, headers=origin)
            assert signed.status_code == 303, signed.text
        assert b.get(f"/ui/runs/{run['id']}/stream").status_code == 404
        assert b.get(f"/ui/runs/{run['id']}/body").status_code == 404
        with a.stream("GET", f"/ui/runs/{run['id']}/stream") as stream:
            assert stream.status_code == 200
            names = [line[7:] for line in stream.iter_lines() if line.startswith("event: ")]
    assert names[0] == "changed" and names[-1] == "ended" and len(names) >= 3, names
