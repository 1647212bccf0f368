"""A client generated from the live OpenAPI document with ``openapi-python-client`` (the
pinned dev dependency) type-checks under ``mypy --strict`` and drives the core flow against a
real API and worker: create → run_now → get the run until it is final → list with a cursor.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ADMIN_TOKEN, cluster

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
PACKAGE = "ordinaut_generated"

# The generator's own client.py template (not derived from our document) calls httpx's
# __exit__ with ``*args: object``, which mypy 2 refuses; everything generated from the
# document (models, api/) is checked strictly.
MYPY_CONFIG = f"""
[mypy]
strict = True

[mypy-{PACKAGE}.client]
ignore_errors = True
"""


def generate(url: str, into: Path) -> Path:
    document = into / "openapi.json"
    document.write_bytes(httpx.get(f"{url}/openapi.json", timeout=10).content)
    output = into / PACKAGE
    generated = subprocess.run(
        [
            BIN / "openapi-python-client",
            "generate",
            "--meta=none",
            f"--path={document}",
            f"--output-path={output}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=into,
        env={"PATH": f"{BIN}:/usr/bin:/bin"},
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout, generated.stdout
    return output


def strict_mypy(package: Path) -> subprocess.CompletedProcess[str]:
    config = package.parent / "mypy.ini"
    config.write_text(MYPY_CONFIG)
    return subprocess.run(
        [BIN / "mypy", "--config-file", config, "--no-incremental", package.name],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=package.parent,
        check=False,
    )


def test_the_generated_client_type_checks_and_drives_the_core_flow(
    fresh_db: str, tmp_path: Path
) -> None:
    with cluster(fresh_db, tmp_path, ORDINAUT_RATE_LIMIT_PER_MINUTE="0") as running:
        api = running.api()
        running.worker(concurrency=4)
        url = f"http://127.0.0.1:{api.port}"
        package = generate(url, tmp_path)
        names = sorted(p.stem for p in (package / "api" / "runs").glob("runs_*.py"))
        assert names == ["runs_cancel", "runs_get", "runs_list", "runs_retry"]
        checked = strict_mypy(package)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        sys.path.insert(0, str(tmp_path))
        try:
            drive(importlib.import_module(PACKAGE), url)
        finally:
            sys.path.remove(str(tmp_path))
            for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
                del sys.modules[name]


def drive(generated: Any, url: str) -> None:
    api = importlib.import_module(f"{PACKAGE}.api.tasks")
    runs_api = importlib.import_module(f"{PACKAGE}.api.runs")
    models = importlib.import_module(f"{PACKAGE}.models")
    client = generated.AuthenticatedClient(base_url=url, token=ADMIN_TOKEN)
    document = {
        "title": "generated",
        "schedule_kind": "event",
        "schedule_expr": "generated.client",
        "payload": {"pipeline": [{"id": "echo", "uses": "debug.echo", "with": {"n": 1}}]},
    }
    create = importlib.import_module(f"{api.__name__}.tasks_create")
    task = create.sync(client=client, body=models.TaskCreate.from_dict(document))
    assert isinstance(task, models.Task), task
    assert task.schedule_kind == models.ScheduleKind.EVENT
    run_now = importlib.import_module(f"{api.__name__}.tasks_run_now")
    get_run = importlib.import_module(f"{runs_api.__name__}.runs_get")
    list_runs = importlib.import_module(f"{runs_api.__name__}.runs_list")
    queued = [run_now.sync(task.id, client=client) for _ in range(3)]
    assert all(isinstance(run, models.Run) for run in queued), queued
    deadline = time.monotonic() + 30
    run = queued[-1]
    while run.status != models.RunStatus.SUCCEEDED:
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
        run = get_run.sync(run.id, client=client)
    assert run.steps[0].status.value == "succeeded" and run.finished_at.tzinfo is not None
    missing = get_run.sync("00000000-0000-4000-8000-000000000000", client=client)
    assert isinstance(missing, models.ErrorResponse) and missing.error.code == "not_found"
    seen: list[Any] = []
    cursor: Any = generated.types.UNSET
    for _ in range(5):
        page = list_runs.sync(
            client=client,
            task_id=task.id,
            trigger=[models.RunTrigger.MANUAL],
            limit=2,
            cursor=cursor,
        )
        assert isinstance(page, models.RunPage), page
        seen += [item.id for item in page.items]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(run.id for run in queued)
