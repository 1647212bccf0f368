"""No NaN or Infinity reaches a duration, a deadline or a timeout (issue 17, defect 1).

JSON Schema bounds are false for NaN (``NaN > 86400`` and ``NaN < 0`` are both false), so a
``seconds: NaN`` passed ``debug.sleep``'s schema and ``asyncio.sleep(nan)`` corrupted the
event loop's timer heap. Finiteness is checked where arguments are validated (literal at
submit, rendered at run time), templates that produce a non-finite number fail, and the
executor cannot build a deadline from one.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.catalog import ToolSpec, file_catalog
from engine.document import Step, parse_pipeline
from engine.errors import TemplateError
from engine.pipeline import CallContext, Executor, RunInfo
from engine.templates import render
from engine.validation import pipeline_problems
from workers.tools.builtin import BuiltinTransport, debug_sleep
from workers.tools.router import ToolRouter

RUN = RunInfo("run-1", "task-1", 1, datetime(2026, 3, 29, tzinfo=UTC), agent_id="agent-1")
NON_FINITE = [math.nan, math.inf, -math.inf]


def executor() -> Executor:
    return Executor(catalog=file_catalog(), call_tool=ToolRouter({"builtin": BuiltinTransport()}))


async def one_step(uses: str, arguments: dict[str, Any], **step: Any):
    steps = parse_pipeline([{"id": "s", "uses": uses, "with": arguments, **step}])
    return await executor().run(steps, params={}, run=RUN)


@pytest.mark.parametrize("expression", ["to_number('nan')", "to_number('1e400')"])
async def test_a_template_that_yields_a_non_finite_number_fails_the_step_at_once(expression):
    started = time.monotonic()
    outcome = await one_step("debug.sleep", {"seconds": "${" + expression + "}"})
    assert time.monotonic() - started < 1
    assert outcome.error is not None
    assert outcome.error.retryable is False
    assert outcome.error.type == "template_error"
    assert "finite" in outcome.error.message


@pytest.mark.parametrize("value", NON_FINITE)
async def test_a_rendered_non_finite_number_inside_an_object_is_invalid_input(value):
    steps = parse_pipeline([{"id": "s", "uses": "debug.echo", "with": {"deep": "${params.box}"}}])
    outcome = await executor().run(steps, params={"box": {"x": [1, value]}}, run=RUN)
    assert outcome.error is not None and outcome.error.type == "invalid_input"
    assert outcome.error.retryable is False
    assert "$.with.deep.x[1]" in outcome.error.message


@pytest.mark.parametrize("value", NON_FINITE)
def test_the_input_check_refuses_non_finite_numbers_that_json_schema_lets_through(value):
    sleep = file_catalog()["debug.sleep"]
    problems = sleep.input_problems({"seconds": value})
    assert [p.path for p in problems] == ["$.with.seconds"]
    assert problems[0].type == "non_finite"
    anything = ToolSpec("x.any", "builtin", {"type": "object"})
    assert [p.path for p in anything.input_problems({"a": {"b": [value]}})] == ["$.with.a.b[0]"]


def test_submit_time_validation_names_a_literal_non_finite_argument():
    pipeline = [{"id": "z", "uses": "debug.sleep", "with": {"seconds": math.nan}}]
    problems = pipeline_problems(pipeline, file_catalog())
    assert [(p.path, p.type) for p in problems] == [
        ("$.payload.pipeline[0].with.seconds", "non_finite")
    ]


@pytest.mark.parametrize("text", ["${params.x} seconds", "${to_string(params.x)}"])
def test_interpolating_a_non_finite_number_is_a_template_error(text):
    with pytest.raises(TemplateError, match="finite"):
        render({"m": text}, {"params": {"x": math.inf}})


@pytest.mark.parametrize("value", NON_FINITE)
def test_a_step_cannot_carry_a_non_finite_timeout(value):
    with pytest.raises(ValueError, match="finite"):
        Step.parse({"id": "s", "uses": "debug.echo", "timeout_seconds": value})
    with pytest.raises(ValueError, match="finite"):
        ToolSpec.from_dict(
            {"address": "a.b", "transport": "builtin", "input_schema": {}, "timeout_seconds": value}
        )


@pytest.mark.parametrize("value", NON_FINITE)
async def test_a_call_context_cannot_hold_a_non_finite_deadline(value):
    with pytest.raises(ValueError, match="finite"):
        CallContext("r", "t", "s", 1, 1, timeout_seconds=value)
    with pytest.raises(ValueError, match="finite"):
        CallContext("r", "t", "s", 1, 1, timeout_seconds=1.0, deadline=value)


@pytest.mark.parametrize("value", NON_FINITE)
async def test_debug_sleep_refuses_a_non_finite_duration_itself(value):
    context = CallContext("r", "t", "s", 1, 1, timeout_seconds=1.0)
    with pytest.raises(Exception, match="finite"):
        await debug_sleep({"seconds": value}, context)
    # The loop's timers still work: a short sleep ends on time.
    started = time.monotonic()
    await asyncio.sleep(0.01)
    assert time.monotonic() - started < 0.5
