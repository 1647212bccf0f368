"""Submit-time validation of pipelines: every problem, each with its JSON path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.catalog import ToolSpec, file_catalog
from engine.errors import Problem, ValidationFailed
from engine.examples import quick_start_pipeline
from engine.validation import pipeline_problems, task_problems, validate_task

NOW = datetime(2026, 3, 29, 6, 30, tzinfo=UTC)
CATALOG = file_catalog()


def paths(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.path, p.type) for p in problems]


def task(pipeline: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "title": "t",
        "schedule_kind": "once",
        "schedule_expr": "2030-01-01T00:00:00Z",
        "payload": {"params": {"city": "Chisinau"}, "pipeline": pipeline},
    }
    document.update(overrides)
    return document


def test_the_quick_start_pipeline_is_valid():
    assert pipeline_problems(quick_start_pipeline(), CATALOG) == []


def test_a_bad_pipeline_lists_every_problem_with_its_path():
    pipeline = [
        {"id": "a", "uses": "no.such_tool", "with": {"x": 1}},
        {"id": "b", "uses": "debug.echo", "with": {"x": "${params..x}"}},
        {"id": "a", "uses": "debug.echo", "with": {"x": "${steps.later.value}"}},
        {
            "id": "fetch",
            "uses": "http.request",
            "with": {"method": "GET", "url": "ftp://example.com/file"},
        },
        {"id": "log", "uses": "debug.log", "with": {"level": "loud"}},
        {"id": "nap", "uses": "debug.sleep", "with": {"seconds": "a while"}},
        {"id": "cond", "uses": "debug.echo", "if": "steps.a ==", "save_as": "later"},
        {"id": "fn", "uses": "debug.echo", "with": {"d": "${format_date(now)}"}},
        {"id": "neg", "uses": "debug.echo", "if": "!steps.later.ok"},
        {"id": "tpl", "uses": "debug.echo", "with": {"t": "${unclosed"}},
    ]
    assert paths(pipeline_problems(pipeline, CATALOG)) == [
        ("$.payload.pipeline[0].uses", "unknown_tool"),
        ("$.payload.pipeline[1].with.x", "jmespath"),
        ("$.payload.pipeline[2].id", "duplicate_id"),
        ("$.payload.pipeline[2].with.x", "unknown_step_reference"),
        ("$.payload.pipeline[3].with.url", "schema"),
        ("$.payload.pipeline[4].with", "schema"),
        ("$.payload.pipeline[4].with.level", "schema"),
        ("$.payload.pipeline[5].with.seconds", "schema"),
        ("$.payload.pipeline[6].if", "jmespath"),
        ("$.payload.pipeline[7].with.d", "jmespath"),
        ("$.payload.pipeline[8].if", "jmespath"),
        ("$.payload.pipeline[9].with.t", "template"),
    ]


def test_messages_say_what_is_wrong():
    pipeline = [
        {"id": "a", "uses": "debug.echo", "with": {"x": "${steps.nope.y}"}},
        {"id": "b", "uses": "debug.echo", "with": {"x": "${add_seconds(now)}"}},
    ]
    messages = [p.message for p in pipeline_problems(pipeline, CATALOG)]
    assert messages == [
        "'steps.nope.y' reads steps.nope, but no earlier step has save_as 'nope'",
        "'add_seconds(now)': add_seconds() takes 2 arguments, not 1",
    ]


def test_templated_arguments_are_checked_at_run_time_not_at_submit():
    pipeline = [
        {"id": "nap", "uses": "debug.sleep", "with": {"seconds": "${params.delay}"}},
        {
            "id": "fetch",
            "uses": "http.request",
            "with": {"method": "GET", "url": "${params.url}", "headers": "${params.h}"},
        },
    ]
    assert pipeline_problems(pipeline, CATALOG) == []


def test_a_step_can_read_only_what_earlier_steps_saved():
    pipeline = [
        {"id": "one", "uses": "debug.echo", "with": {"x": "${steps.two}"}, "if": "steps.one"},
        {"id": "two", "uses": "debug.echo", "save_as": "two"},
        {"id": "three", "uses": "debug.echo", "with": {"x": "${steps.two.x}"}, "save_as": "one"},
    ]
    assert paths(pipeline_problems(pipeline, CATALOG)) == [
        ("$.payload.pipeline[0].if", "unknown_step_reference"),
        ("$.payload.pipeline[0].with.x", "unknown_step_reference"),
    ]


def test_runtime_tools_are_known_tools():
    runtime = ToolSpec(
        "weather.current",
        "mcp",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        server="python -m weather",
        tool="current",
    )
    pipeline = [{"id": "w", "uses": "weather.current", "with": {"city": 5}}]
    assert paths(pipeline_problems(pipeline, CATALOG)) == [
        ("$.payload.pipeline[0].uses", "unknown_tool")
    ]
    assert paths(pipeline_problems(pipeline, CATALOG.with_tools([runtime]))) == [
        ("$.payload.pipeline[0].with.city", "schema")
    ]


def test_structural_and_pipeline_problems_come_together():
    document = task(
        [
            {"id": "x", "uses": "debug.echo", "on_error": "ignore", "extra": 1},
            {"uses": "nope.tool"},
        ],
        schedule_kind="sometimes",
    )
    problems = task_problems(document, CATALOG, default_timezone="UTC", now=NOW, owner_scopes=None)
    assert {p.path for p in problems} >= {
        "$.schedule_kind",
        "$.payload.pipeline[0]",
        "$.payload.pipeline[0].on_error",
        "$.payload.pipeline[1]",
        "$.payload.pipeline[1].uses",
    }


def test_validate_task_raises_with_every_problem():
    document = task(
        [
            {"id": "a", "uses": "debug.log", "with": {}},
            {"id": "a", "uses": "missing.tool"},
        ]
    )
    with pytest.raises(ValidationFailed) as caught:
        validate_task(document, CATALOG, default_timezone="UTC", now=NOW, owner_scopes=None)
    assert paths(caught.value.problems) == [
        ("$.payload.pipeline[0].with", "schema"),
        ("$.payload.pipeline[1].id", "duplicate_id"),
        ("$.payload.pipeline[1].uses", "unknown_tool"),
    ]


def test_expressions_nested_too_deeply_to_parse_are_problems_not_crashes():
    deep = "[" * 500 + "]" * 500
    problems = task_problems(
        task(
            [
                {"id": "a", "uses": "debug.echo", "if": deep},
                {"id": "b", "uses": "debug.echo", "with": {"x": "${" + "!" * 1500 + "a}"}},
            ]
        ),
        CATALOG,
        default_timezone="UTC",
        now=NOW,
        owner_scopes=None,
    )
    assert ("$.payload.pipeline[0].if", "jmespath") in paths(problems)
    assert ("$.payload.pipeline[1].with.x", "jmespath") in paths(problems)
    assert any("nested too deeply" in p.message for p in problems)
