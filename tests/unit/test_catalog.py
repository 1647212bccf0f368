"""The tool catalog: the shipped file, validation at load, examples, merging."""

from __future__ import annotations

import json

import pytest

from engine.catalog import (
    CATALOG_DIR,
    Catalog,
    ToolSpec,
    file_catalog,
    load_catalog_file,
    validate_entry,
)
from engine.errors import ValidationFailed


def test_the_shipped_catalog_has_every_builtin_of_the_design():
    catalog = file_catalog()
    assert set(catalog) == {
        "debug.echo",
        "debug.log",
        "debug.sleep",
        "debug.fail",
        "http.request",
        "events.publish",
    }
    assert all(tool.transport == "builtin" for tool in catalog.values())


def test_examples_are_valid_but_not_loaded():
    examples = sorted((CATALOG_DIR / "examples").glob("*.json"))
    assert examples
    for path in examples:
        for tool in load_catalog_file(path):
            assert tool.address not in file_catalog()
            assert tool.transport in ("http", "mcp")


def test_a_bad_catalog_file_is_refused_with_paths(tmp_path):
    path = tmp_path / "tools.json"
    path.write_text(
        json.dumps(
            {
                "tools": [
                    {"address": "nodot", "transport": "builtin", "input_schema": {}},
                    {"address": "a.b", "transport": "http", "input_schema": {}},
                    {"address": "c.d", "transport": "mcp", "input_schema": {}, "server": "x"},
                    {"address": "e.f", "transport": "smoke", "input_schema": "nope"},
                ]
            }
        )
    )
    with pytest.raises(ValidationFailed) as caught:
        load_catalog_file(path)
    paths = {p.path for p in caught.value.problems}
    assert {
        "$.tools[0].address",
        "$.tools[1]",
        "$.tools[2]",
        "$.tools[3].transport",
        "$.tools[3].input_schema",
    } <= paths
    path.write_text("{not json")
    with pytest.raises(ValidationFailed):
        load_catalog_file(path)


def test_an_entry_with_an_invalid_json_schema_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        validate_entry(
            {"address": "a.b", "transport": "builtin", "input_schema": {"type": "objekt"}}
        )
    assert caught.value.problems[0].path == "$.input_schema"


@pytest.mark.parametrize(
    "ref",
    ["#/$defs/nope", "http://169.254.169.254/schema.json", "other.json#/a", "#nowhere", "#/0"],
)
def test_references_must_resolve_inside_the_schema(ref):
    entry = {
        "address": "a.b",
        "transport": "builtin",
        "input_schema": {"$defs": {"city": {"type": "string"}}, "properties": {"x": {"$ref": ref}}},
    }
    with pytest.raises(ValidationFailed) as caught:
        validate_entry(entry)
    assert caught.value.problems[0].path == "$.input_schema"
    assert repr(ref) in caught.value.problems[0].message


def test_local_references_are_followed():
    schema = {
        "$defs": {"city": {"type": "string"}, "a/b": {"$anchor": "count", "type": "integer"}},
        "properties": {
            "x": {"$ref": "#/$defs/city"},
            "y": {"$ref": "#count"},
            "z": {"const": {"$ref": "not a reference, a value"}},
        },
    }
    tool = validate_entry({"address": "a.b", "transport": "builtin", "input_schema": schema})
    assert tool.input_problems({"x": "Chisinau", "y": 1}) == []
    assert [p.path for p in tool.input_problems({"x": 1, "y": "z"})] == ["$.with.x", "$.with.y"]


def test_a_dangling_reference_that_got_in_earlier_is_a_problem_not_a_crash():
    tool = ToolSpec("a.b", "builtin", {"properties": {"x": {"$ref": "#/$defs/nope"}}})
    (problem,) = tool.input_problems({"x": 1})
    assert problem.path == "$.with" and "resolves to nothing" in problem.message


def test_runtime_tools_never_shadow_catalog_tools():
    mine = ToolSpec("debug.echo", "http", {"type": "object"}, endpoint="http://x")
    extra = ToolSpec("x.y", "http", {"type": "object"}, endpoint="http://x")
    merged = file_catalog().with_tools([mine, extra])
    assert merged["debug.echo"].transport == "builtin"
    assert merged["x.y"] is extra
    assert len(merged) == len(file_catalog()) + 1


def test_schema_checks_use_json_paths_and_the_default_output_schema_wants_an_object():
    tool = file_catalog()["debug.log"]
    assert tool.input_problems({"message": "hi"}) == []
    problems = tool.input_problems({"message": 5, "extra": True})
    assert [p.path for p in problems] == ["$.with", "$.with.message"]
    loose = ToolSpec("a.b", "builtin", {"type": "object"})
    assert loose.output_problems({"anything": [1]}) == []
    assert loose.output_problems([1])[0].path == "$.output"
    assert Catalog([loose]).get("a.b") is loose
