"""The pipeline executor with the real builtin tools and an injected tool caller."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.catalog import Catalog, ToolSpec, file_catalog
from engine.document import parse_pipeline
from engine.errors import ToolFailed
from engine.examples import QUICK_START_PARAMS, quick_start_pipeline
from engine.pipeline import CallContext, Executor, PipelineOutcome, RunInfo, truncate_output
from workers.tools.builtin import BuiltinTransport
from workers.tools.router import ToolRouter

NOW = datetime(2026, 3, 29, 6, 30, tzinfo=UTC)
RUN = RunInfo("run-1", "task-1", 1, datetime(2026, 3, 29, 6, 30, tzinfo=UTC), agent_id="agent-1")


class Sleeps:
    """Records the executor's backoff sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def executor(catalog: Catalog | None = None, call_tool: Any = None, **kwargs: Any) -> Executor:
    return Executor(
        catalog=catalog or file_catalog(),
        call_tool=call_tool or ToolRouter({"builtin": BuiltinTransport()}),
        clock=lambda: NOW,
        **kwargs,
    )


async def run(pipeline: list[dict[str, Any]], ex: Executor | None = None, **kwargs: Any):
    kwargs.setdefault("params", {})
    return await (ex or executor()).run(parse_pipeline(pipeline), run=RUN, **kwargs)


async def test_the_quick_start_pipeline():
    outcome = await run(quick_start_pipeline(), params=QUICK_START_PARAMS)
    assert outcome.succeeded
    assert [s.status for s in outcome.steps] == ["succeeded", "succeeded"]
    assert outcome.steps[1].output == {"message": "Hello Chisinau", "level": "info"}
    first = outcome.steps[0].as_dict()
    assert first["started_at"] == NOW.isoformat()
    assert first["attempt"] == 1
    assert isinstance(first["duration_ms"], int)


async def test_typed_values_flow_between_steps_and_context_has_now_run_event():
    outcome = await run(
        [
            {
                "id": "a",
                "uses": "debug.echo",
                "with": {"n": "${params.n}", "list": "${params.list}", "flag": "${params.flag}"},
                "save_as": "a",
            },
            {
                "id": "b",
                "uses": "debug.echo",
                "with": {
                    "sum": "${sum(steps.a.list)}",
                    "obj": "${steps.a}",
                    "when": "${now}",
                    "run": "${run}",
                    "event": "${event.payload.id}",
                },
            },
        ],
        params={"n": 3, "list": [1, 2.5], "flag": False},
        event={"topic": "t", "payload": {"id": 9}},
    )
    assert outcome.steps[1].output == {
        "sum": 3.5,
        "obj": {"n": 3, "list": [1, 2.5], "flag": False},
        "when": "2026-03-29T06:30:00+00:00",
        "run": {
            "id": "run-1",
            "task_id": "task-1",
            "attempt": 1,
            "scheduled_for": "2026-03-29T06:30:00+00:00",
        },
        "event": 9,
    }


@pytest.mark.parametrize("condition", ["steps.check.ok", "${steps.check.ok}"])
async def test_if_skips_a_step_and_later_steps_see_it_missing(condition):
    outcome = await run(
        [
            {"id": "check", "uses": "debug.echo", "with": {"ok": False}, "save_as": "check"},
            {"id": "maybe", "uses": "debug.echo", "with": {}, "if": condition, "save_as": "m"},
            {
                "id": "after",
                "uses": "debug.echo",
                "with": {"skipped": "${steps.m == null}"},
                "if": "!(steps.check.ok)",
            },
        ]
    )
    assert [s.status for s in outcome.steps] == ["succeeded", "skipped", "succeeded"]
    assert outcome.steps[1].as_dict() == {
        "id": "maybe",
        "uses": "debug.echo",
        "status": "skipped",
        "started_at": None,
        "duration_ms": None,
        "attempt": 0,
        "output": None,
        "error": None,
        "skip_reason": {"if": "steps.check.ok", "value": False},
    }
    assert outcome.steps[2].output == {"skipped": True}
    assert outcome.steps[2].skip_reason is None and "skip_reason" not in outcome.steps[2].as_dict()


async def test_a_skipped_step_says_which_falsy_value_its_condition_gave():
    outcome = await run(
        [
            {"id": "s", "uses": "debug.echo", "with": {"items": ["a", "b"]}, "save_as": "s"},
            {"id": "t", "uses": "debug.echo", "if": "steps.s.items[?@ == 'none']"},
            {"id": "u", "uses": "debug.echo", "if": "${steps.s.missing}"},
            {"id": "v", "uses": "debug.echo", "if": "length(steps.s.items) > `1` && steps.s"},
        ]
    )
    assert outcome.steps[1].skip_reason == {"if": "steps.s.items[?@ == 'none']", "value": []}
    assert outcome.steps[2].skip_reason == {"if": "steps.s.missing", "value": None}
    assert outcome.steps[3].status == "succeeded" and outcome.steps[3].skip_reason is None


async def test_a_failing_condition_is_a_template_error_naming_the_step():
    outcome = await run([{"id": "s", "uses": "debug.echo", "if": "to_number(`[1]`) > bogus()"}])
    assert outcome.error is not None
    assert outcome.error.step_id == "s"
    assert outcome.error.type == "template_error"
    assert "step 's'" in outcome.error.message
    assert not outcome.error.retryable


async def test_on_error_continue_runs_the_next_steps_and_the_run_succeeds():
    outcome = await run(
        [
            {
                "id": "broken",
                "uses": "debug.fail",
                "with": {"times": 5, "message": "boom"},
                "on_error": "continue",
                "save_as": "b",
            },
            {"id": "next", "uses": "debug.echo", "with": {"b": "${steps.b}"}},
        ]
    )
    assert outcome.succeeded
    assert outcome.steps[0].status == "failed"
    assert outcome.steps[0].error == {"type": "tool_error", "message": "boom", "retryable": True}
    assert outcome.steps[1].output == {"b": None}


async def test_on_error_fail_stops_the_run_with_a_structured_error():
    outcome = await run(
        [
            {"id": "broken", "uses": "debug.fail", "with": {"times": 1, "message": "boom"}},
            {"id": "never", "uses": "debug.echo"},
        ]
    )
    assert [s.id for s in outcome.steps] == ["broken"]
    assert outcome.error is not None
    assert outcome.error.as_dict() == {
        "step_id": "broken",
        "type": "tool_error",
        "message": "boom",
        "retryable": True,
    }


async def test_step_retries_happen_inside_the_run_with_backoff():
    sleeps = Sleeps()
    outcome = await run(
        [{"id": "flaky", "uses": "debug.fail", "with": {"times": 2}, "max_retries": 3}],
        executor(sleep=sleeps, retry_base_seconds=0.5),
    )
    assert outcome.succeeded
    step = outcome.steps[0]
    assert step.attempt == 3
    assert step.output == {"attempt": 3}
    assert sleeps.delays == [0.5, 1.0]
    # The two failed tries are kept, each with its error and the pause that followed it.
    assert step.tries is not None
    assert [t["try"] for t in step.tries] == [1, 2]
    assert [t["error"]["type"] for t in step.tries] == ["tool_error", "tool_error"]
    assert all(t["error"]["retryable"] for t in step.tries)
    assert all(t["started_at"] and t["duration_ms"] >= 0 for t in step.tries)
    assert all(t["backoff_ms"] >= 0 for t in step.tries)
    assert step.as_dict()["tries"] == step.tries


async def test_step_retries_give_up_after_max_retries():
    sleeps = Sleeps()
    outcome = await run(
        [{"id": "flaky", "uses": "debug.fail", "with": {"times": 9}, "max_retries": 2}],
        executor(sleep=sleeps),
    )
    assert outcome.error is not None and outcome.error.retryable
    assert outcome.steps[0].attempt == 3
    assert len(sleeps.delays) == 2
    # The last try is the step itself; the two before it are its tries.
    assert [t["try"] for t in outcome.steps[0].tries or []] == [1, 2]
    assert outcome.steps[0].error is not None


async def test_non_retryable_errors_are_not_retried_within_the_run():
    calls: list[int] = []

    async def caller(tool: ToolSpec, arguments: dict[str, Any], context: CallContext):
        calls.append(context.step_attempt)
        raise ToolFailed("bad request", retryable=False)

    outcome = await run(
        [{"id": "s", "uses": "debug.echo", "max_retries": 5}], executor(call_tool=caller)
    )
    assert calls == [1]
    assert outcome.error is not None and not outcome.error.retryable


async def test_a_step_timeout_is_a_retryable_timeout_error():
    outcome = await run(
        [{"id": "nap", "uses": "debug.sleep", "with": {"seconds": 5}, "timeout_seconds": 0.05}]
    )
    assert outcome.error is not None
    assert outcome.error.type == "timeout"
    assert outcome.error.retryable
    assert outcome.error.message == "step 'nap' timed out after 0.05s"


async def test_the_tool_timeout_applies_when_the_step_sets_none():
    catalog = Catalog([ToolSpec("slow.tool", "builtin", {"type": "object"}, timeout_seconds=0.05)])

    async def caller(tool: ToolSpec, arguments: dict[str, Any], context: CallContext):
        assert context.timeout_seconds == 0.05
        assert context.deadline is not None
        await asyncio.sleep(5)
        return {}

    outcome = await run([{"id": "s", "uses": "slow.tool"}], executor(catalog, caller))
    assert outcome.error is not None and outcome.error.type == "timeout"


async def test_template_errors_name_step_and_expression():
    outcome = await run([{"id": "greet", "uses": "debug.echo", "with": {"x": "${nope(@)}"}}])
    assert outcome.error is not None
    assert outcome.error.type == "template_error"
    assert outcome.error.message.startswith("step 'greet': expression ${nope(@)} failed")


async def test_rendered_arguments_are_checked_against_the_input_schema():
    outcome = await run(
        [{"id": "log", "uses": "debug.log", "with": {"message": "${params.n}"}}], params={"n": 5}
    )
    assert outcome.error is not None
    assert outcome.error.type == "invalid_input"
    assert not outcome.error.retryable
    assert outcome.steps[0].error is not None
    assert outcome.steps[0].error["details"][0]["path"] == "$.with.message"


async def test_outputs_are_checked_against_the_output_schema():
    catalog = Catalog(
        [
            ToolSpec(
                "strict.tool",
                "builtin",
                {"type": "object"},
                output_schema={"type": "object", "required": ["answer"]},
            ),
            ToolSpec("loose.tool", "builtin", {"type": "object"}),
        ]
    )

    async def caller(tool: ToolSpec, arguments: dict[str, Any], context: CallContext) -> Any:
        return {"other": 1} if tool.address == "strict.tool" else [1, 2]

    for address in ("strict.tool", "loose.tool"):
        outcome = await run(
            [{"id": "s", "uses": address, "max_retries": 3}], executor(catalog, caller)
        )
        assert outcome.error is not None
        assert outcome.error.type == "invalid_output"
        assert not outcome.error.retryable
        assert outcome.steps[0].attempt == 1


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


async def test_values_nested_deeper_than_the_limit_are_refused_not_crashed_on():
    """A JMESPath literal or a tool's response can nest a thousand deep; serialising such a
    value later would exhaust the recursion limit (in the worker, or in the API reading it)."""
    deep_literal = "${`" + json.dumps(nested(900)) + "`}"
    outcome = await run([{"id": "s", "uses": "debug.echo", "with": {"x": deep_literal}}])
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.retryable) == ("invalid_input", False)
    assert "deeper than 64 levels" in outcome.error.message

    async def deep_tool(tool: ToolSpec, arguments: dict[str, Any], context: CallContext) -> Any:
        return {"x": nested(arguments["depth"])}

    catalog = Catalog([ToolSpec("deep.tool", "builtin", {"type": "object"})])
    for depth, status in ((62, "succeeded"), (5000, "failed")):
        outcome = await run(
            [{"id": "s", "uses": "deep.tool", "with": {"depth": depth}}],
            executor(catalog, deep_tool),
        )
        assert outcome.steps[0].status == status
    assert outcome.error is not None and outcome.error.type == "invalid_output"


async def test_an_unknown_tool_at_run_time_is_not_retryable():
    outcome = await run([{"id": "s", "uses": "gone.tool"}])
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.retryable) == ("unknown_tool", False)


async def test_large_outputs_are_truncated_with_a_marker_but_later_steps_see_everything():
    big = "x" * 5000
    outcome = await run(
        [
            {"id": "big", "uses": "debug.echo", "with": {"data": big}, "save_as": "big"},
            {"id": "len", "uses": "debug.echo", "with": {"n": "${length(steps.big.data)}"}},
        ],
        executor(max_output_bytes=1000),
    )
    recorded = outcome.steps[0].output
    assert recorded["_truncated"] is True
    assert recorded["original_bytes"] == len(json.dumps({"data": big}, separators=(",", ":")))
    assert recorded["limit_bytes"] == 1000
    assert recorded["preview"].startswith('{"data":"xxx')
    assert len(json.dumps(recorded).encode()) <= 1000
    assert outcome.steps[1].output == {"n": 5000}


def test_truncation_keeps_small_outputs_and_cuts_at_a_character_boundary():
    small = {"a": 1}
    assert truncate_output(small, 100) is small
    assert truncate_output(small, None) is small
    marker = truncate_output({"t": "ă" * 400}, 300)
    assert marker["_truncated"] is True
    assert marker["original_bytes"] == len('{"t":""}') + 800
    marker["preview"].encode("utf-8")  # valid UTF-8: no split character


async def test_cancellation_stops_before_the_next_step():
    state = {"cancel": False}

    async def caller(tool: ToolSpec, arguments: dict[str, Any], context: CallContext):
        state["cancel"] = True
        return {}

    outcome = await run(
        [{"id": "one", "uses": "debug.echo"}, {"id": "two", "uses": "debug.echo"}],
        executor(call_tool=caller),
        cancelled=lambda: state["cancel"],
    )
    assert [s.id for s in outcome.steps] == ["one"]
    assert outcome.error is not None and outcome.error.type == "canceled"


async def test_tools_get_the_call_context_and_observers_see_every_step():
    seen: list[CallContext] = []
    observed: list[str] = []

    async def caller(tool: ToolSpec, arguments: dict[str, Any], context: CallContext):
        seen.append(context)
        return {}

    outcome = PipelineOutcome()
    await run(
        [{"id": "one", "uses": "debug.echo"}, {"id": "two", "uses": "debug.echo", "if": "`false`"}],
        executor(call_tool=caller, observe_step=lambda r: observed.append(f"{r.id}:{r.status}")),
        outcome=outcome,
    )
    assert observed == ["one:succeeded", "two:skipped"]
    assert len(outcome.steps) == 2
    (context,) = seen
    assert context.idempotency_key == "run-1:one"
    assert (context.agent_id, context.run_attempt, context.step_attempt) == ("agent-1", 1, 1)
    assert context.timeout_seconds == 5.0  # debug.echo's catalog timeout
