"""How deeply a value nests: levels counted as arrays/objects, any depth safe to ask about."""

from __future__ import annotations

from typing import Any

import pytest

from engine.jsonshape import nests_deeper_than


def nested(depth: int) -> Any:
    value: Any = 1
    for index in range(depth):
        value = [value] if index % 2 else {"k": value}
    return value


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 63, 64, 65])
def test_levels_are_counted_exactly(depth: int) -> None:
    value = nested(depth)
    assert not nests_deeper_than(value, depth)
    assert nests_deeper_than(value, depth - 1) == (depth > 0)


def test_flat_objects_and_scalars() -> None:
    assert not nests_deeper_than({"a": 1, "b": "x", "c": None}, 1)
    assert nests_deeper_than({"a": 1}, 0)
    assert not nests_deeper_than("text", 0)
    assert nests_deeper_than({"a": 1, "b": {"c": [2]}}, 2)


def test_any_depth_is_safe_to_ask_about() -> None:
    assert nests_deeper_than(nested(100_000))
