"""Browser tests: Debian's ``chromium`` driven by Playwright for Python against real
``ordinaut api``, ``scheduler`` and ``worker`` processes.

Never ``playwright install`` (it downloads a browser): the system's Chromium is launched by
path. Without it the tests skip and say why, except under ``CI=true`` (``.ci/run`` installs
it with apt-get), where they fail.

Every browser context records each request its pages make; the test fails if one goes
anywhere but the test's API server (no CDN, no font service, nothing). Each page a test
visits can be saved with :meth:`Console.screenshot` under ``tests/ui/screenshots/``
(git-ignored), the artefact to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import clone_database, drop_database
from tests.support import ADMIN_TOKEN, Cluster, cluster

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium")
    if path:
        return path
    message = (
        "`chromium` not found: install Debian's chromium package "
        "(apt-get install --no-install-recommends chromium; .ci/run does)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # the dev extras pin it; a missing package is a broken venv
        pytest.fail("playwright is not installed: `make venv` installs the dev extras")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Stack:
    """The processes under test and a REST client for setting things up."""

    running: Cluster
    base_url: str
    admin: httpx.Client

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def agent(self, name: str, *scopes: str) -> tuple[str, str]:
        """A new agent with ``scopes``: ``(id, token)``."""
        created = self.admin.post("/agents", json={"name": name, "scopes": list(scopes)})
        assert created.status_code == 201, created.text
        return created.json()["id"], created.json()["token"]


@pytest.fixture(scope="module")
def stack(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    database = clone_database(server_url, template_url)
    workdir = Path(tmp_path_factory.mktemp("console"))
    try:
        with cluster(database, workdir, ORDINAUT_RETRY_BASE_SECONDS="0.05") as running:
            api = running.api(ORDINAUT_RATE_LIMIT_PER_MINUTE="0")
            running.scheduler()
            running.worker(concurrency=4)
            base = f"http://127.0.0.1:{api.port}"
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
            ) as admin:
                yield Stack(running, base, admin)
    finally:
        drop_database(server_url, database)


@dataclass
class Console:
    """One browser context (its own cookies) on the console, with what it recorded."""

    page: Any
    base_url: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base_url + path)
        # A page that follows a running run keeps its event stream open: never "idle".
        if self.page.query_selector("[data-run-stream]") is None:
            self.page.wait_for_load_state("networkidle")
        return response

    def sign_in(self, token: str) -> None:
        self.open("/ui/login")
        self.page.fill("input[name=token]", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(re.compile(r".*/ui(/.*)?$"))

    def csrf(self) -> str:
        value = self.page.get_attribute("input[name=csrf_token]", "value")
        assert value, "no CSRF token on the page"
        return str(value)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def flash(self) -> str:
        return str(self.page.inner_text(".flash"))

    def post_form(self, action: str, fields: dict[str, str]) -> Any:
        """Submit a form built in the page (as a forged request from this origin would);
        returns the response of the navigation."""
        with self.page.expect_navigation() as navigation:
            self.page.evaluate(
                """([action, fields]) => {
                    const form = document.createElement("form");
                    form.method = "post";
                    form.action = action;
                    for (const [name, value] of Object.entries(fields)) {
                        const input = document.createElement("input");
                        input.type = "hidden"; input.name = name; input.value = value;
                        form.appendChild(input);
                    }
                    document.body.appendChild(form);
                    form.submit();
                }""",
                [action, fields],
            )
        return navigation.value


@pytest.fixture
def console(browser: Any, stack: Stack) -> Iterator[Any]:
    """``console(javascript=True)``: a fresh browser context on the stack's console. At the
    end, every request any of its pages made must have gone to the test server."""
    contexts: list[tuple[Any, Console]] = []

    def open_console(javascript: bool = True) -> Console:
        context = browser.new_context(
            viewport={"width": 1360, "height": 900}, java_script_enabled=javascript
        )
        page = context.new_page()
        view = Console(page, stack.base_url)
        context.on("request", lambda request: view.requests.append(request.url))
        page.on("pageerror", lambda error: view.problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                view.problems.append(f"console {message.type}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on("dialog", lambda dialog: dialog.accept())
        contexts.append((context, view))
        return view

    yield open_console
    for context, view in contexts:
        context.close()
        elsewhere = [url for url in view.requests if not url.startswith(stack.base_url + "/")]
        assert not elsewhere, f"requests left the test server: {elsewhere}"
