"""Outputs PostgreSQL refuses: made storable before writing, and if the database still
refuses a batch, its runs are written one by one and only the refused one loses its outputs."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.pipeline import PipelineOutcome, StepResult
from engine.settings import Settings
from store import due_work as q
from store.db import connect, create_pool
from store.jsonb import storable_json
from tests.integration.test_queue import owner_and_task, queue, stored_run
from workers.completion import Completer, Outcome

ODD = {
    "nul": "a\x00b",
    "lone": "\udc80x",
    "pair": "\U0001f600",
    "nan": math.nan,
    "inf": [-math.inf, 1.5],
    "key\x00": True,
    "nested": [{"deep": "\x00"}],
}
STORED = {
    "nul": "a\ufffdb",
    "lone": "\ufffdx",
    "pair": "\U0001f600",
    "nan": None,
    "inf": [None, 1.5],
    "key\ufffd": True,
    "nested": [{"deep": "\ufffd"}],
}


async def test_storable_json_is_accepted_by_jsonb_as_the_replaced_value(conn):
    row = await (await conn.execute("SELECT %s::jsonb AS v", (storable_json(ODD),))).fetchone()
    assert row["v"] == STORED


@pytest.mark.parametrize(
    "value", [{"a": [1, "two", None, True, 3.5]}, "plain \\u0000 text", {"é": "ü"}, []]
)
def test_ordinary_values_are_plain_compact_json(value: Any) -> None:
    assert storable_json(value) == json.dumps(value, separators=(",", ":"))


async def test_a_refused_batch_is_written_run_by_run(fresh_db, monkeypatch):
    setup = await connect(fresh_db)
    _, task = await owner_and_task(setup)
    await queue(setup, task, n=2)
    rows = await q.lease_batch(setup, worker_id="w1", limit=2, lease_seconds=30)
    # A value the storable encoding does not know about: the database refuses it.
    monkeypatch.setattr(q, "_json", lambda value: json.dumps(value, default=str))
    pool = create_pool(fresh_db, max_size=2)
    await pool.open()
    completer = Completer(
        settings=Settings(), pool=pool, worker_id="w1", clock=lambda: datetime.now(UTC)
    )
    try:
        outputs = [{"text": "a\x00b"}, {"text": "fine"}]
        steps = [
            StepResult("echo", "debug.echo", "succeeded", attempt=1, output=output)
            for output in outputs
        ]
        batch = [
            Outcome(row, PipelineOutcome([step]), 0.01)
            for row, step in zip(rows, steps, strict=True)
        ]
        flushed = await completer.write(batch, lease_limit=1)
        refused, accepted = [await stored_run(setup, row["id"]) for row in rows]
    finally:
        await pool.close()
        await setup.close()
    assert flushed.outcomes == batch and flushed.leased == []
    assert accepted["status"] == "succeeded"
    assert accepted["steps"][0]["output"] == {"text": "fine"}
    assert refused["status"] == "dead"
    assert refused["error"]["type"] == "output_unstorable"
    assert not refused["error"]["retryable"]
    assert refused["steps"][0]["status"] == "succeeded"
    assert refused["steps"][0]["output"] is None
