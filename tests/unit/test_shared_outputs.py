"""Outputs that share substructure cost linear work, not exponential (issue 17, defect 2).

A step whose arguments reference the previous output twice doubles the output's JSON size
while adding only one small object: 24 such steps are 2.5 KB of task but 2^24 copies as
JSON. Depth, size and finiteness are measured per distinct object (memoised by identity),
never by walking every path or encoding the whole value; a value over the size limit fails
its run alone, as dead, with the reason.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from engine.catalog import file_catalog
from engine.document import parse_pipeline
from engine.pipeline import Executor, RunInfo, truncate_output
from workers.tools.builtin import BuiltinTransport
from workers.tools.router import ToolRouter

RUN = RunInfo("run-1", "task-1", 1, datetime(2026, 3, 29, tzinfo=UTC), agent_id="agent-1")


def doubling_pipeline(steps: int) -> list[dict[str, Any]]:
    """Step n echoes the output of step n-1 twice."""
    pipeline = [{"id": "s0", "uses": "debug.echo", "with": {"x": "seed"}, "save_as": "s0"}]
    for n in range(1, steps):
        previous = f"${{steps.s{n - 1}}}"
        pipeline.append(
            {
                "id": f"s{n}",
                "uses": "debug.echo",
                "with": {"a": previous, "b": previous},
                "save_as": f"s{n}",
            }
        )
    return pipeline


def doubled(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": "seed"}
    for _ in range(levels):
        value = {"a": value, "b": value}
    return value


def test_truncating_a_shared_value_does_not_encode_it_whole():
    value = doubled(50)
    started = time.perf_counter()
    marker = truncate_output(value, 65536)
    assert time.perf_counter() - started < 0.5  # 2^50 copies as text: never encoded
    assert marker["_truncated"] is True
    assert marker["original_bytes"] > 2**50
    assert marker["preview"].startswith('{"a":{"a":{"a":')
    assert len(marker["preview"].encode()) <= 65536


async def test_a_doubling_pipeline_fails_alone_quickly_without_stalling_the_loop():
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)

    ticking = asyncio.create_task(ticker())
    executor = Executor(
        catalog=file_catalog(), call_tool=ToolRouter({"builtin": BuiltinTransport()})
    )
    started = time.perf_counter()
    outcome = await executor.run(parse_pipeline(doubling_pipeline(24)), params={}, run=RUN)
    elapsed = time.perf_counter() - started
    ticking.cancel()
    assert elapsed < 2, elapsed
    assert max(lags, default=0) < 0.2, max(lags)
    assert outcome.error is not None
    assert outcome.error.retryable is False
    assert "over the limit" in outcome.error.message
    assert outcome.error.step_id is not None and outcome.error.step_id != "s23"
