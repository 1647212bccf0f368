"""Completion webhooks with real processes and a real receiver process: signed and
verifiable with the ``standardwebhooks`` library, retried with the same ``webhook-id``
after the receiver was killed and came back, sent to the task's or the agent's URL and to
nobody else, and never slowing the runs down (a receiver that takes 30 s to answer)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import clone_database, drop_database
from tests.e2e.workload import create_task, pipeline_task, query, queue_runs
from tests.support import REPO, Cluster, api_client, cluster, eventually, free_port

pytestmark = pytest.mark.e2e

AGENT_SCOPES = ["tasks:read", "tasks:write", "runs:read", "runs:write"]


@dataclass
class Receiver:
    """``tests.servers.webhook_receiver`` as a process that can be killed and restarted on
    the same port."""

    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.webhook_receiver", str(self.port), str(self.log)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("the webhook receiver did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        lines = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [r for r in lines if path is None or r["path"] == path]


@pytest.fixture(scope="module")
def running(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    database = clone_database(server_url, template_url)
    workdir = Path(tmp_path_factory.mktemp("webhooks"))
    try:
        with cluster(
            database,
            workdir,
            ORDINAUT_HTTP_ALLOW="127.0.0.1",
            ORDINAUT_WEBHOOK_RETRY_BASE_SECONDS="0.3",
            ORDINAUT_RATE_LIMIT_PER_MINUTE="0",
        ) as processes:
            processes.api()
            processes.worker(concurrency=50)
            yield processes
    finally:
        drop_database(server_url, database)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    started = Receiver(tmp_path / "received.jsonl")
    started.start()
    try:
        yield started
    finally:
        started.kill()


@pytest.fixture
async def admin(running: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(running.processes[0]) as http:
        yield http


async def new_agent(running: Cluster, admin: httpx.AsyncClient) -> tuple[httpx.AsyncClient, str]:
    name = f"hooked-{time.time_ns()}"
    created = await admin.post("/agents", json={"name": name, "scopes": AGENT_SCOPES})
    assert created.status_code == 201, created.text
    agent = created.json()
    return api_client(running.processes[0], agent["token"]), agent["id"]


async def hook_up(agent: httpx.AsyncClient, url: str) -> str:
    """Point the agent's webhooks at ``url``; its new signing secret (shown this once)."""
    patched = await agent.patch("/agents/me", json={"webhook_url": url})
    assert patched.status_code == 200 and patched.json()["webhook_url"] == url, patched.text
    made = await agent.post("/agents/me/webhook-secret")
    assert made.status_code == 201, made.text
    secret: str = made.json()["secret"]
    assert secret.startswith("whsec_")
    me = (await agent.get("/agents/me")).json()
    assert me["webhook_secret_created_at"] is not None and secret not in json.dumps(me)
    return secret


def verified(request: dict[str, Any], secret: str) -> Any:
    headers = {k.lower(): v for k, v in request["headers"].items()}
    return Webhook(secret).verify(request["body"], headers)


ECHO = {"id": "echo", "uses": "debug.echo", "with": {"answer": 42}}


async def test_a_webhook_arrives_signed_and_is_retried_after_an_outage(running, admin, receiver):
    agent, _ = await new_agent(running, admin)
    async with agent:
        secret = await hook_up(agent, f"{receiver.url}/hook")
        task = await create_task(agent, pipeline_task(ECHO))
        receiver.kill()  # the receiver is down when the run ends
        run = (await agent.post(f"/tasks/{task['id']}/run_now", params={"wait": 10})).json()
        assert run["status"] == "succeeded"
        pending = await eventually(
            lambda: _deliveries(agent),
            until=lambda items: bool(items) and items[0]["attempts"] >= 2,
            message="failed tries while the receiver is down",
        )
        (delivery,) = pending
        assert delivery["status"] == "pending" and delivery["run_id"] == run["id"]
        assert delivery["last_status"] is None and delivery["last_error"]
        receiver.start()  # back, on the same address
        (request,) = await eventually(
            lambda: _value(receiver.requests("/hook")), message="the delivery after the outage"
        )
        after = await eventually(
            lambda: _run(agent, run["id"]),
            until=lambda r: r["webhook_deliveries"][0]["status"] == "delivered",
        )
        assert await _deliveries(agent) == []  # neither pending nor failed any more
        delivered = (await agent.get("/webhook-deliveries", params={"status": "delivered"})).json()
    message = verified(request, secret)
    assert request["headers"]["webhook-id"] == delivery["id"]  # the same id on every try
    shown = after.pop("webhook_deliveries")
    assert message == {"type": "run.finished", "data": after}
    assert message["data"]["steps"][0]["output"] == {"answer": 42}
    (record,) = shown
    assert record["attempts"] >= 3 and record["last_status"] == 204
    assert [d["id"] for d in delivered["items"]] == [delivery["id"]]


async def test_webhooks_go_to_the_tasks_url_or_the_owners_and_to_nobody_else(
    running, admin, receiver
):
    first, _ = await new_agent(running, admin)
    second, second_id = await new_agent(running, admin)
    async with first, second:
        first_secret = await hook_up(first, f"{receiver.url}/first")
        # An admin sets up the second agent.
        patched = await admin.patch(
            f"/agents/{second_id}", json={"webhook_url": f"{receiver.url}/second"}
        )
        assert patched.status_code == 200, patched.text
        made = await admin.post(f"/agents/{second_id}/webhook-secret")
        assert made.status_code == 201
        second_secret = made.json()["secret"]
        own = await create_task(first, pipeline_task(ECHO))
        overridden = await create_task(
            first, pipeline_task(ECHO, webhook_url=f"{receiver.url}/task")
        )
        theirs = await create_task(second, pipeline_task(ECHO))
        runs = {}
        for client, task in ((first, own), (first, overridden), (second, theirs)):
            response = await client.post(f"/tasks/{task['id']}/run_now", params={"wait": 10})
            runs[task["id"]] = response.json()["id"]
        await eventually(lambda: _value(receiver.requests()), until=lambda r: len(r) >= 3)
        await eventually(lambda: _deliveries(first), until=lambda items: items == [])
        listed = (await second.get("/webhook-deliveries", params={"status": "delivered"})).json()
    by_path = {r["path"]: r for r in receiver.requests()}
    assert sorted(by_path) == ["/first", "/second", "/task"] and len(receiver.requests()) == 3
    assert verified(by_path["/first"], first_secret)["data"]["id"] == runs[own["id"]]
    assert verified(by_path["/task"], first_secret)["data"]["id"] == runs[overridden["id"]]
    assert verified(by_path["/second"], second_secret)["data"]["id"] == runs[theirs["id"]]
    with pytest.raises(WebhookVerificationError):
        verified(by_path["/second"], first_secret)
    assert [d["run_id"] for d in listed["items"]] == [runs[theirs["id"]]]


async def test_a_rotation_that_keeps_the_previous_secret_signs_with_both_for_a_day(
    running, admin, receiver
):
    agent, agent_id = await new_agent(running, admin)
    async with agent:
        old = await hook_up(agent, f"{receiver.url}/hook")
        task = await create_task(agent, pipeline_task(ECHO))
        rotated = await agent.post("/agents/me/webhook-secret", params={"keep_previous": True})
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()["secret"]
        until = datetime.fromisoformat(rotated.json()["previous_valid_until"])
        made = datetime.fromisoformat(rotated.json()["created_at"])
        assert until - made == timedelta(hours=24)

        async def delivered_request(count: int) -> dict[str, Any]:
            await agent.post(f"/tasks/{task['id']}/run_now", params={"wait": 10})
            requests = await eventually(
                lambda: _value(receiver.requests("/hook")), until=lambda r: len(r) >= count
            )
            return requests[count - 1]

        # In the window: two signatures, and a receiver holding either secret accepts it.
        during = await delivered_request(1)
        assert len(during["headers"]["webhook-signature"].split(" ")) == 2
        assert verified(during, old) and verified(during, new)
        # The window over (moved into the past here), only the new secret signs.
        query(
            running.database_url,
            "UPDATE webhook_secrets SET previous_until = now() - interval '1 second'"
            " WHERE agent_id = %s RETURNING agent_id",
            agent_id,
        )
        after = await delivered_request(2)
        assert len(after["headers"]["webhook-signature"].split(" ")) == 1
        assert verified(after, new)
        with pytest.raises(WebhookVerificationError):
            verified(after, old)
        # A plain rotation drops the previous secret at once, even inside its window.
        await agent.post("/agents/me/webhook-secret", params={"keep_previous": True})
        plain = await agent.post("/agents/me/webhook-secret")
        assert plain.json()["previous_valid_until"] is None
        last = await delivered_request(3)
    assert len(last["headers"]["webhook-signature"].split(" ")) == 1
    assert verified(last, plain.json()["secret"])
    bad = await admin.post(f"/agents/{agent_id}/webhook-secret", params={"keep_previous": "x"})
    assert bad.status_code == 422 and "keep_previous" in bad.text


async def test_the_signing_secret_is_shown_once_and_never_again(running, admin, receiver):
    agent, agent_id = await new_agent(running, admin)
    async with agent:
        secret = await hook_up(agent, f"{receiver.url}/hook")
        seen = [
            (await agent.get("/agents/me")).text,
            (await admin.get(f"/agents/{agent_id}")).text,
            (await admin.get("/agents", params={"limit": 500})).text,
            (await admin.get("/audit", params={"limit": 500})).text,
        ]
        audited = (await admin.get("/audit", params={"action": "agents.webhook_secret.*"})).json()
    key = secret.removeprefix("whsec_")
    assert not [text for text in seen if key in text]
    (entry,) = [e for e in audited["items"] if e["subject_id"] == agent_id]
    assert entry["action"] == "agents.webhook_secret.create"
    logs = "".join(process.output() for process in running.processes)
    assert key not in logs


async def test_a_receiver_that_takes_30_seconds_does_not_slow_the_runs(running, admin, receiver):
    """The same 2 000 runs drained with no webhook, then with every run's webhook going to a
    receiver that answers after 30 s: completion never waits for it."""
    plain, _ = await new_agent(running, admin)
    hooked, _ = await new_agent(running, admin)
    async with plain, hooked:
        await hook_up(hooked, f"{receiver.url}/slow?delay=30")
        seconds = {}
        for name, agent in (("plain", plain), ("hooked", hooked)):
            task = await create_task(agent, pipeline_task(ECHO))
            seconds[name] = await _drain(running, task["id"], 2000)
        slow_answers = [r for r in receiver.requests() if r["path"] == "/slow"]
        delivered = (await hooked.get("/webhook-deliveries", params={"status": "delivered"})).json()
    assert slow_answers, "deliveries were under way during the drain"
    assert delivered["items"] == [], "none answered yet: the receiver takes 30 s"
    # Were completion to wait for the receiver, 2 000 runs would take many times 30 s.
    assert seconds["hooked"] <= seconds["plain"] * 1.5 + 0.5 and seconds["hooked"] < 10, seconds


async def _drain(running: Cluster, task_id: str, count: int) -> float:
    """Queue ``count`` runs at once; seconds from the first start to the last finish."""
    queue_runs(running.database_url, task_id, count)

    async def finished() -> int:
        rows = query(
            running.database_url, "SELECT count(*) AS n FROM runs WHERE task_id = %s", task_id
        )
        return int(rows[0]["n"])

    await eventually(finished, until=lambda n: n == count, timeout=120, interval=0.2)
    (span,) = query(
        running.database_url,
        "SELECT extract(epoch FROM max(finished_at) - min(started_at)) AS s"
        " FROM runs WHERE task_id = %s",
        task_id,
    )
    return float(span["s"])


async def _deliveries(agent: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await agent.get("/webhook-deliveries")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _run(agent: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = (await agent.get(f"/runs/{run_id}")).json()
    return run


async def _value(value: Any) -> Any:
    return value
