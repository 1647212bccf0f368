"""Measuring JSON values: how deeply they nest, how large their JSON is, whether they hold a
non-finite number — in time linear in the objects that exist.

Python's ``json``, jsonschema and the API's serialisers recurse once per level, so a value
nested a thousand deep would exhaust the interpreter's recursion somewhere far from where it
came in; Ordinaut refuses such values where they enter (request bodies, a step's rendered
arguments, a tool's output).

Values in a run share substructure: ``{"a": "${steps.x}", "b": "${steps.x}"}`` puts one
object in two places, and a chain of such steps doubles the JSON at every step while adding
one small object (24 steps: 2^24 copies). So nothing here walks every path or encodes a value
to learn its size: each distinct array or object is visited once (memoised by identity) and
its size is the sum of its parts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

MAX_JSON_DEPTH = 64
# The largest value a step may take as arguments or give as output (the default of
# ORDINAUT_MAX_VALUE_BYTES), and the longest text a template may build.
DEFAULT_MAX_VALUE_BYTES = 8 * 1024 * 1024
_CONTAINERS = (dict, list, tuple)


@dataclass(frozen=True, slots=True)
class Shape:
    """What :func:`shape_of` found.

    ``depth`` counts nested arrays and objects (a scalar 0, a flat object 1); a value deeper
    than the limit asked about reports ``limit + 1`` and its ``size`` is not measured (0).
    ``size`` is the length in bytes of the value as compact UTF-8 JSON — or, for a flat
    object at most ``exact_above`` bytes long, an upper bound of it (see :func:`shape_of`).
    """

    depth: int
    size: int
    non_finite: bool


def shape_of(
    value: Any,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    budget: int | None = None,
    exact_above: int = 0,
) -> Shape | None:
    """Depth, JSON size and finiteness of ``value``; None when measuring it would visit more
    than ``budget`` items (the caller can then measure it off the event loop).

    ``exact_above``: a flat object whose size is surely at most this many bytes reports a
    cheap upper bound instead of its exact size (the worker's hot path: most outputs are
    small flat objects, and only sizes above its limits matter).
    """
    if not isinstance(value, _CONTAINERS):
        size, non_finite = _scalar(value)
        return Shape(0, size, non_finite)
    if max_depth < 1:
        return Shape(max_depth + 1, 0, False)
    if exact_above and isinstance(value, dict):
        bound = _flat_bound(value)
        if bound is not None and bound[0] <= exact_above:
            return Shape(1, *bound)
    flat = _flat(value)
    if flat is not None:
        return flat
    return _walk(value, max_depth, budget)


def nests_deeper_than(value: Any, levels: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` has more than ``levels`` nested arrays/objects (any depth is safe to
    ask about)."""
    if not isinstance(value, _CONTAINERS):
        return False
    shape = shape_of(value, max_depth=levels)
    assert shape is not None  # no budget
    return shape.depth > levels


def non_finite_path(value: Any, path: str = "$") -> str | None:
    """The JSON path of the first NaN or infinity in ``value``, or None (each distinct
    container is searched once)."""
    if not isinstance(value, _CONTAINERS):
        return path if _is_non_finite(value) else None
    if isinstance(value, dict):  # fast path: an object of strings, integers … (most values)
        for item in value.values():
            if type(item) is float or isinstance(item, _CONTAINERS):
                break
        else:
            return None
    clean: set[int] = set()  # containers already searched
    stack: list[tuple[Any, str, Iterator[tuple[Any, Any]]]] = [(value, path, _items(value))]
    while stack:
        container, where, children = stack[-1]
        for key, item in children:
            if isinstance(item, _CONTAINERS):
                if id(item) not in clean:
                    stack.append((item, _child_path(where, key), _items(item)))
                    break
            elif _is_non_finite(item):
                return _child_path(where, key)
        else:
            clean.add(id(container))
            stack.pop()
    return None


class _Frame:
    """A container being measured: what its children added up to so far."""

    __slots__ = (
        "children",
        "container",
        "count",
        "depth",
        "is_object",
        "key",
        "non_finite",
        "size",
    )

    def __init__(self, container: Any, key: Any = None) -> None:
        self.container = container
        self.key = key  # under which the parent holds it (its key, or its index)
        self.is_object = isinstance(container, dict)
        self.children = _items(container)
        self.count = 0
        self.size = 2  # the brackets
        self.depth = 0  # of the deepest child
        self.non_finite = False

    def add(self, key: Any, size: int, depth: int, non_finite: bool) -> None:
        if self.is_object:
            self.size += _key_size(key) + 1  # "key":
        self.size += size
        self.count += 1
        self.depth = max(self.depth, depth)
        self.non_finite = self.non_finite or non_finite

    def finish(self) -> Shape:
        commas = max(0, self.count - 1)
        return Shape(self.depth + 1, self.size + commas, self.non_finite)


def _walk(
    value: Any, max_depth: int, budget: int | None, memo: dict[int, Shape] | None = None
) -> Shape | None:
    """The general walk: each container measured once, after its children (iteratively)."""
    too_deep = Shape(max_depth + 1, 0, False)
    memo = {} if memo is None else memo
    stack = [_Frame(value)]
    visited = 0
    while True:
        frame = stack[-1]
        for key, item in frame.children:
            visited += 1
            if budget is not None and visited > budget:
                return None
            if not isinstance(item, _CONTAINERS):
                size, non_finite = _scalar(item)
                frame.add(key, size, 0, non_finite)
                continue
            known = memo.get(id(item))
            if known is not None:
                if len(stack) + known.depth > max_depth:
                    return too_deep
                frame.add(key, known.size, known.depth, known.non_finite)
                continue
            if len(stack) >= max_depth:
                return too_deep
            stack.append(_Frame(item, key))
            break
        else:
            stack.pop()
            shape = frame.finish()
            memo[id(frame.container)] = shape
            if not stack:
                return shape
            stack[-1].add(frame.key, shape.size, shape.depth, shape.non_finite)


def _flat_bound(value: dict[Any, Any]) -> tuple[int, bool] | None:
    """An upper bound of a flat object's JSON size, and whether it holds a non-finite number
    (None when it is not flat). A character takes at most 6 bytes (``\\u001f``), a float
    or a small integer at most 32."""
    bound = 2 + len(value)
    non_finite = False
    for key, item in value.items():
        kind = type(item)
        if kind is str:
            bound += 6 * len(item) + 2
        elif kind is float:
            non_finite = non_finite or item - item != 0  # NaN and ±inf give NaN
            bound += 32
        elif item is None or kind is bool or (kind is int and -(10**30) < item < 10**30):
            bound += 32
        elif isinstance(item, _CONTAINERS):
            return None
        else:
            size, item_non_finite = _scalar(item)
            bound += size
            non_finite = non_finite or item_non_finite
        bound += 6 * len(key) + 3 if type(key) is str else _key_size(key) + 1
    return bound, non_finite


def _flat(value: Any) -> Shape | None:
    """The shape of an array or object of scalars (most values) without the general walk."""
    size = 2 + max(0, len(value) - 1)
    non_finite = False
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, _CONTAINERS):
                return None
            item_size, item_non_finite = _scalar(item)
            size += _key_size(key) + 1 + item_size
            non_finite = non_finite or item_non_finite
    else:
        for item in value:
            if isinstance(item, _CONTAINERS):
                return None
            item_size, item_non_finite = _scalar(item)
            size += item_size
            non_finite = non_finite or item_non_finite
    return Shape(1, size, non_finite)


def _items(container: Any) -> Iterator[tuple[Any, Any]]:
    """``(key, item)`` pairs: an object's keys, an array's indexes."""
    if isinstance(container, dict):
        return iter(container.items())
    return enumerate(container)


def _scalar(value: Any) -> tuple[int, bool]:
    """Size as JSON and whether it is non-finite (others are written as ``str()``, like
    ``json.dumps(default=str)``)."""
    if isinstance(value, str):
        return _string_size(value), False
    if value is None or value is True:
        return 4, False
    if value is False:
        return 5, False
    if isinstance(value, int):
        return _int_size(value), False
    if isinstance(value, float):
        if math.isfinite(value):
            return len(repr(value)), False
        return (3 if math.isnan(value) else 8 + (value < 0)), True  # NaN, Infinity, -Infinity
    return _string_size(str(value)), False


def _is_non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _string_size(text: str) -> int:
    encoded: str = encode_basestring(text)  # quoted and escaped, as json.dumps writes it
    if encoded.isascii():
        return len(encoded)
    return len(encoded.encode("utf-8", "surrogatepass"))


def _key_size(key: Any) -> int:
    if isinstance(key, str):
        return _string_size(key)
    return _scalar(key)[0] + 2  # json writes other keys as quoted text


def _int_size(value: int) -> int:
    try:
        return len(repr(value))
    except ValueError:  # more digits than int→str conversion allows
        return int(value.bit_length() * 0.30103) + 2


def _child_path(path: str, key: Any) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def json_prefix(value: Any, limit: int) -> str:
    """The first ``limit`` bytes (UTF-8) of ``value`` as compact JSON, encoded lazily: a part
    that fits in what is left is encoded whole (by the C encoder), a larger one is opened,
    so only about as much as the prefix needs is built, whatever the whole value's size."""
    sizes: dict[int, Shape] = {}
    if isinstance(value, _CONTAINERS):
        _walk(value, max_depth=1_000_000, budget=None, memo=sizes)
    parts: list[str] = []
    _prefix_parts(value, limit, sizes, parts)
    return "".join(parts).encode("utf-8", "surrogatepass")[:limit].decode("utf-8", "ignore")


def _prefix_parts(value: Any, room: int, sizes: dict[int, Shape], parts: list[str]) -> int:
    """Append the JSON of ``value`` to ``parts`` until ``room`` bytes are used; returns the
    room left (0: the prefix is complete)."""
    known = sizes.get(id(value)) if isinstance(value, _CONTAINERS) else None
    size = known.size if known is not None else _scalar(value)[0]
    if size <= room or not isinstance(value, _CONTAINERS):
        text = _dumps(value) if not isinstance(value, _CONTAINERS) else _compact(value)
        parts.append(text)
        return max(0, room - size)
    is_object = isinstance(value, dict)
    parts.append("{" if is_object else "[")
    room -= 1
    for index, (key, item) in enumerate(_items(value)):
        head = ("," if index else "") + (_dumps(str(key)) + ":" if is_object else "")
        parts.append(head)
        room -= len(head.encode("utf-8", "surrogatepass"))
        if room <= 0:
            return 0
        room = _prefix_parts(item, room, sizes, parts)
        if room <= 0:
            return 0
    parts.append("}" if is_object else "]")
    return max(0, room - 1)


def _compact(value: Any) -> str:
    # No cycle check: a cycle would have been refused as too deep before any of this runs,
    # and the check costs the C encoder a dictionary entry per object.
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), default=str, check_circular=False
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def json_text(
    value: Any, limit: int = DEFAULT_MAX_VALUE_BYTES, *, ensure_ascii: bool = False
) -> str:
    """``value`` as compact JSON text; ``ValueError`` when it holds a non-finite number or
    would be longer than ``limit`` bytes (measured first: a value sharing substructure can be
    exponentially larger as text than in memory)."""
    shape = shape_of(value)
    assert shape is not None  # no budget
    if shape.non_finite:
        raise ValueError("it holds a number that is not finite (NaN or infinity)")
    if shape.size > limit:
        raise ValueError(f"it would be {shape.size} bytes of text, over the limit of {limit}")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii, default=str)
