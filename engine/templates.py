"""``${...}`` templates: JMESPath over the run context ``{now, params, steps, event, run}``.

A string that is exactly one template keeps the JSON type of its value (an object stays an
object, ``5`` stays a number, ``null`` stays null); templates inside longer text are
interpolated, objects and arrays as compact JSON, ``null`` as an empty string. ``$${`` is a
literal ``${``. A path that does not exist evaluates to ``null`` (JMESPath semantics).

Rendering is on the worker's hot path, so both the split of a template string and the
compiled JMESPath expressions are cached by their text.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.parser

from engine.errors import TemplateError, first_line
from engine.jsonshape import json_text
from engine.timefuncs import TimeFunctions

FUNCTIONS = TimeFunctions()
_OPTIONS = jmespath.Options(custom_functions=FUNCTIONS)
_CLOSERS = {"{": "}", "[": "]", "(": ")"}
_QUOTES = ("'", '"', "`")
# What a failing evaluation may raise: jmespath's own errors, and the custom functions'
# ValueError/TypeError/OverflowError (OSError: from_epoch out of range) on bad input, and
# RecursionError from a deeply nested expression or value.
EVALUATION_ERRORS = (
    jmespath.exceptions.JMESPathError,
    ValueError,
    TypeError,
    OverflowError,
    OSError,
    RecursionError,
)


@dataclass(frozen=True)
class Segment:
    """A piece of a template string: literal text, or an expression to evaluate."""

    text: str
    is_expression: bool


class ExpressionTooDeep(jmespath.exceptions.JMESPathError):
    """An expression nested too deeply for the parser (e.g. ``[[[[…]]]]``)."""

    def __init__(self, expression: str) -> None:
        super().__init__(f"nested too deeply to parse ({len(expression)} characters)")


class TemplateSyntaxError(ValueError):
    """A ``${`` without its closing ``}``, or an empty expression."""


@functools.lru_cache(maxsize=8192)
def split_template(text: str) -> tuple[Segment, ...]:
    """Split ``text`` into literal and expression segments (cached by text)."""
    segments: list[Segment] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("$${", index):
            literal.append("${")
            index += 3
        elif text.startswith("${", index):
            end = _expression_end(text, index + 2)
            expression = text[index + 2 : end].strip()
            if not expression:
                raise TemplateSyntaxError(f"empty expression at offset {index}")
            if literal:
                segments.append(Segment("".join(literal), False))
                literal = []
            segments.append(Segment(expression, True))
            index = end + 1
        else:
            literal.append(text[index])
            index += 1
    if literal:
        segments.append(Segment("".join(literal), False))
    return tuple(segments)


def _expression_end(text: str, start: int) -> int:
    """Index of the ``}`` that closes the expression starting at ``start``.

    Braces inside JMESPath (multiselect hashes) and inside quoted literals do not count.
    """
    stack: list[str] = []
    index = start
    while index < len(text):
        char = text[index]
        if char in _QUOTES:
            index = _skip_quoted(text, index)
            continue
        if char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif char == "}" and not stack:
            return index
        elif stack and char == stack[-1]:
            stack.pop()
        index += 1
    raise TemplateSyntaxError(f"unclosed '${{' at offset {start - 2}")


def _skip_quoted(text: str, index: int) -> int:
    quote = text[index]
    index += 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index + 1
        index += 1
    raise TemplateSyntaxError("unclosed quote inside an expression")


@functools.lru_cache(maxsize=8192)
def compile_expression(expression: str) -> jmespath.parser.ParsedResult:
    """Compile (and cache) a JMESPath expression; raises ``jmespath`` parse errors."""
    try:
        return jmespath.compile(expression)
    except RecursionError:  # jmespath's parser recurses once per nesting level
        raise ExpressionTooDeep(expression) from None


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """Evaluate one JMESPath expression against the context."""
    return _evaluator(expression)(context)


# ``params.city``, ``steps.greeting.message``: plain field paths are most templates. Their
# JMESPath meaning is simple (each field of an object, else null), so they skip the
# interpreter, which costs several microseconds per call on the worker's hot path.
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@functools.lru_cache(maxsize=8192)
def _evaluator(expression: str) -> Callable[[dict[str, Any]], Any]:
    if _FIELD_PATH.fullmatch(expression):
        return functools.partial(_field_path, tuple(expression.split(".")))
    parsed = compile_expression(expression)
    return functools.partial(parsed.search, options=_OPTIONS)


def _field_path(fields: tuple[str, ...], value: Any) -> Any:
    for field in fields:
        if not isinstance(value, dict):
            return None
        value = value.get(field)
    return value


def strip_wrapper(condition: str) -> str:
    """``if`` conditions may be raw JMESPath or wrapped in ``${...}``; return the raw form."""
    stripped = condition.strip()
    if stripped.startswith("${") and stripped.endswith("}"):
        try:
            segments = split_template(stripped)
        except TemplateSyntaxError:
            return stripped
        if len(segments) == 1 and segments[0].is_expression:
            return segments[0].text
    return stripped


def render(value: Any, context: dict[str, Any]) -> Any:
    """Render every template inside ``value`` (dicts and lists recursively).

    Raises :class:`TemplateError` naming the failing expression.
    """
    if isinstance(value, str):
        return _render_string(value, context) if "${" in value else value
    if isinstance(value, dict):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context) for item in value]
    return value


def _render_string(text: str, context: dict[str, Any]) -> Any:
    try:
        segments = split_template(text)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"bad template {text!r}: {exc}") from None
    if len(segments) == 1 and segments[0].is_expression:
        value = _evaluate_segment(segments[0].text, context)
        if isinstance(value, float) and not math.isfinite(value):
            # A duration or a timeout must never be NaN or infinite; JSON has no such numbers.
            raise TemplateError(
                f"expression ${{{segments[0].text}}} gave {value}, which is not a finite number"
            )
        return value
    parts = [
        _to_text(seg.text, _evaluate_segment(seg.text, context)) if seg.is_expression else seg.text
        for seg in segments
    ]
    return "".join(parts)


def _evaluate_segment(expression: str, context: dict[str, Any]) -> Any:
    try:
        return evaluate(expression, context)
    except EVALUATION_ERRORS as exc:
        raise TemplateError(f"expression ${{{expression}}} failed: {first_line(exc)}") from None


def _to_text(expression: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json_text(value)
    except ValueError as exc:
        raise TemplateError(f"expression ${{{expression}}} cannot be text: {exc}") from None
