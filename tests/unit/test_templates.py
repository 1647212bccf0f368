"""Templates: typed values, interpolation, missing paths, escapes, errors."""

from __future__ import annotations

import functools

import jmespath
import pytest

from engine.errors import TemplateError
from engine.templates import (
    TemplateSyntaxError,
    _evaluator,
    evaluate,
    render,
    split_template,
    strip_wrapper,
)

CONTEXT = {
    "now": "2026-03-29T06:30:00+00:00",
    "params": {"city": "Chisinau", "n": 5, "ratio": 0.5, "on": True, "tags": ["a", "b"]},
    "steps": {"greeting": {"message": "Hello", "meta": {"lang": "en"}}, "empty": {}},
    "event": {"topic": "orders.created", "payload": {"id": 7, "items": [{"sku": "x"}]}},
    "run": {"id": "r1", "task_id": "t1", "attempt": 2, "scheduled_for": "2026-03-29T06:30:00"},
}

TYPED = [
    ("${params.n}", 5),
    ("${params.ratio}", 0.5),
    ("${params.on}", True),
    ("${params.tags}", ["a", "b"]),
    ("${steps.greeting}", {"message": "Hello", "meta": {"lang": "en"}}),
    ("${steps.nope}", None),
    ("${steps.nope.deeper.still}", None),
    ("${ params.n }", 5),
    ("${event.payload.items[0].sku}", "x"),
    ("${run.attempt}", 2),
    ("${length(params.tags)}", 2),
    ("${{city: params.city, n: params.n}}", {"city": "Chisinau", "n": 5}),
    ('${`{"a": 1}`}', {"a": 1}),
    ("${params.n > `3`}", True),
]


@pytest.mark.parametrize(("template", "expected"), TYPED)
def test_a_lone_template_keeps_its_json_type(template, expected):
    assert render(template, CONTEXT) == expected


INTERPOLATED = [
    ("Hello ${params.city}", "Hello Chisinau"),
    ("n=${params.n}, on=${params.on}", "n=5, on=true"),
    ("tags: ${params.tags}", 'tags: ["a","b"]'),
    ("meta ${steps.greeting.meta}!", 'meta {"lang":"en"}!'),
    ("missing: [${steps.nope.x}]", "missing: []"),
    ("${params.city}${params.n}", "Chisinau5"),
    (" ${params.n}", " 5"),
    ("cost $${params.n}", "cost ${params.n}"),
    ("no templates at all", "no templates at all"),
    ("unicode ${'ăîș'}", "unicode ăîș"),
]


@pytest.mark.parametrize(("template", "expected"), INTERPOLATED)
def test_templates_inside_text_are_interpolated(template, expected):
    assert render(template, CONTEXT) == expected


def test_render_walks_objects_and_arrays_and_leaves_other_values_alone():
    value = {
        "a": ["${params.n}", {"b": "x ${params.city}"}],
        "n": 3,
        "f": False,
        "nil": None,
    }
    assert render(value, CONTEXT) == {
        "a": [5, {"b": "x Chisinau"}],
        "n": 3,
        "f": False,
        "nil": None,
    }


def test_braces_and_quotes_inside_expressions_do_not_end_them():
    assert render("${{k: '}'}}", CONTEXT) == {"k": "}"}
    assert render('${join(`"}"`, params.tags)}', CONTEXT) == "a}b"


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("${params.n | foo(@)}", "${params.n | foo(@)}"),
        ("${unknown_function(now)}", "unknown_function"),
        ("${add_seconds(params.city, `1`)}", "not an ISO 8601 timestamp"),
        ("${to_timezone(now, 'Mars/Olympus')}", "Mars/Olympus"),
        ("${length(params.n)}", "length"),
        ("x ${params.", "unclosed"),
        ("${}", "empty expression"),
    ],
)
def test_errors_name_the_expression(template, fragment):
    with pytest.raises(TemplateError) as caught:
        render({"arg": template}, CONTEXT)
    assert fragment in caught.value.message
    assert not caught.value.retryable


def test_split_is_cached_and_reports_segments():
    first = split_template("a ${b} c")
    assert first is split_template("a ${b} c")
    assert [(s.text, s.is_expression) for s in first] == [("a ", False), ("b", True), (" c", False)]
    with pytest.raises(TemplateSyntaxError):
        split_template("${'unclosed}")


@pytest.mark.parametrize(
    ("condition", "raw"),
    [
        ("steps.greeting != null", "steps.greeting != null"),
        ("${steps.greeting != null}", "steps.greeting != null"),
        ("  ${ params.on }  ", "params.on"),
        ("${a} && ${b}", "${a} && ${b}"),
    ],
)
def test_if_accepts_raw_jmespath_or_one_wrapper(condition, raw):
    assert strip_wrapper(condition) == raw


@pytest.mark.parametrize(
    "expression", ["params", "params.city", "steps.a.b.c", "run.attempt", "null", "a_1.B2"]
)
@pytest.mark.parametrize(
    "context",
    [
        {},
        {"params": {"city": "Chisinau"}, "run": {"attempt": 2}},
        {"params": [1, 2], "steps": {"a": {"b": "text"}}},
        {"steps": {"a": {"b": {"c": [1, {"x": None}]}}}, "null": 0, "a_1": {"B2": False}},
        {"params": None, "steps": {"a": 5}},
    ],
)
def test_plain_field_paths_take_the_fast_path_with_jmespath_semantics(expression, context):
    assert isinstance(_evaluator(expression), functools.partial)
    assert evaluate(expression, context) == jmespath.search(expression, context)
