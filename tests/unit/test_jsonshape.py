"""Measuring JSON values: depth, size and finiteness per distinct object (issue 17)."""

from __future__ import annotations

import json
import time
from typing import Any

from engine.jsonshape import MAX_JSON_DEPTH, nests_deeper_than, non_finite_path, shape_of


def doubled(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": "seed"}
    for _ in range(levels):
        value = {"a": value, "b": value}
    return value


def test_size_and_depth_of_a_shared_value_are_computed_without_walking_every_path():
    value = doubled(60)  # 2^60 paths; 61 distinct objects
    started = time.perf_counter()
    shape = shape_of(value)
    assert time.perf_counter() - started < 0.05
    assert shape is not None
    assert shape.depth == 61
    # {"x":"seed"} is 12 bytes; each level adds {"a":…,"b":…} = 2 + 4 + 4 + 1 bytes.
    expected = 12
    for _ in range(60):
        expected = 2 * expected + 11
    assert shape.size == expected
    assert not shape.non_finite
    assert not nests_deeper_than(value, MAX_JSON_DEPTH)
    assert nests_deeper_than(doubled(70), MAX_JSON_DEPTH)


def test_the_size_matches_compact_utf8_json():
    value = {"ü": ['a"b\\c\n', 1.5, -3, True, None, {"é": "\u2603"}], "n": 10**20}
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    shape = shape_of(value)
    assert shape is not None and shape.size == len(text.encode("utf-8"))


def test_a_budget_stops_the_measure_early():
    assert shape_of({"items": list(range(10_000))}, budget=100) is None
    assert shape_of({"items": list(range(10))}, budget=100) is not None


def test_the_first_non_finite_number_is_found_by_path_in_linear_time():
    shared = doubled(60)
    value = {"ok": shared, "list": [shared, {"bad": float("nan")}]}
    assert non_finite_path(value) == "$.list[1].bad"
    assert non_finite_path(shared) is None
    assert non_finite_path(float("inf"), "$.with.n") == "$.with.n"
    shape = shape_of(value)
    assert shape is not None and shape.non_finite


def test_deep_values_stop_the_walk_at_the_limit():
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    shape = shape_of(value)
    assert shape is not None and shape.depth > MAX_JSON_DEPTH
    assert nests_deeper_than(value, MAX_JSON_DEPTH)
    assert not nests_deeper_than([[[]]], 3)
    assert nests_deeper_than([[[[]]]], 3)
