"""Reading JSON bodies: the one body reader of every route, so one set of rules holds
everywhere (each problem a 422 with its JSON path).

- The body is JSON whatever its ``Content-Type`` says (``curl -d`` sends
  ``application/x-www-form-urlencoded``): no route answers differently for the header.
- No number may be ``NaN``, ``Infinity`` or overflow to one (``1e400``): Python's ``json``
  accepts them, JSON does not, and a non-finite duration or timeout must never exist.
- No string or key may hold U+0000 or a lone UTF-16 surrogate: PostgreSQL text and
  ``jsonb`` cannot store them (a surrogate cannot even be encoded as UTF-8).
- Nothing may nest deeper than :data:`~engine.jsonshape.MAX_JSON_DEPTH` levels (deeper
  documents would exhaust the recursion of the validators and serialisers further on).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

import pydantic
from fastapi import Request

from engine.errors import Problem, ValidationFailed
from engine.jsonshape import MAX_JSON_DEPTH, nests_deeper_than

Model = TypeVar("Model", bound=pydantic.BaseModel)

_SURROGATE = re.compile("[\ud800-\udfff]")
# Bytes a body needs for a string with U+0000 or a lone surrogate: an escape (\u0000,
# \ud800) or a surrogate encoded as UTF-8-like bytes (Python's json decodes those with
# "surrogatepass"). Bodies without any are not walked.
_SUSPECT_BYTES = (b"\\u", b"\xed")


class _NonFinite:
    """Stands in for a non-finite number while parsing, so its path can be reported."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


class _Parser:
    """``json.loads`` hooks that turn non-finite numbers into :class:`_NonFinite`."""

    def __init__(self) -> None:
        self.saw_non_finite = False

    def constant(self, literal: str) -> _NonFinite:  # NaN, Infinity, -Infinity
        self.saw_non_finite = True
        return _NonFinite(literal)

    def number(self, literal: str) -> float | _NonFinite:
        value = float(literal)
        if math.isfinite(value):
            return value
        self.saw_non_finite = True  # 1e400 overflows to infinity
        return _NonFinite(literal)


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON under the module's rules; a 422 naming ``$`` when it
    is missing, not JSON or too deep, or naming the path of a refused value."""
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed([Problem("$", "a JSON body is required", "missing")])
    parser = _Parser()
    try:
        document = json.loads(raw, parse_constant=parser.constant, parse_float=parser.number)
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed([Problem("$", f"body is not valid JSON: {exc}", "json")]) from None
    if nests_deeper_than(document, MAX_JSON_DEPTH):
        message = f"nested deeper than {MAX_JSON_DEPTH} levels"
        raise ValidationFailed([Problem("$", message, "depth")])
    if parser.saw_non_finite or any(marker in raw for marker in _SUSPECT_BYTES):
        problem = _refused_value(document, "$")
        if problem is not None:
            raise ValidationFailed([problem])
    return document


async def model_body(request: Request, model: type[Model]) -> Model:
    """The body read by :func:`json_body`, then validated by a pydantic ``model`` (its
    errors as problems with JSON paths)."""
    document = await json_body(request)
    try:
        return model.model_validate(document)
    except pydantic.ValidationError as exc:
        problems = [
            Problem(_model_path(error["loc"]), error["msg"], error["type"])
            for error in exc.errors()
        ]
        raise ValidationFailed(problems) from None


def _model_path(location: tuple[int | str, ...]) -> str:
    path = "$"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _refused_value(value: Any, path: str) -> Problem | None:
    """The first value the rules refuse, in document order (the document was checked for
    depth first, so recursion is bounded)."""
    if isinstance(value, _NonFinite):
        message = f"{value.literal} is not a finite number (JSON has no NaN or infinities)"
        return Problem(path, message, "non_finite")
    if isinstance(value, str):
        return _refused_text(value, path)
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{_printable(key)}"
            found = _refused_text(key, child) or _refused_value(item, child)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _refused_value(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _refused_text(text: str, path: str) -> Problem | None:
    if "\x00" in text:
        # PostgreSQL stores no U+0000 in text or jsonb: say where it is, before anything runs.
        return Problem(path, "contains a NUL character (\\u0000)", "nul")
    match = _SURROGATE.search(text)
    if match is not None:
        code = f"\\u{ord(match.group()):04x}"
        return Problem(
            path, f"contains a lone UTF-16 surrogate ({code}), which is not text", "surrogate"
        )
    return None


def _printable(key: str) -> str:
    """A key fit for a path in an answer: lone surrogates written as escapes (an answer is
    UTF-8 and cannot carry them)."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


# Request bodies declared by their JSON Schema under a component name (filled as routers
# are imported; :func:`api.openapi.build_openapi` adds them to the document).
BODY_COMPONENTS: dict[str, dict[str, Any]] = {}


def json_body_openapi(
    schema: dict[str, Any], example: Any = None, *, name: str | None = None
) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON request body by its JSON Schema; with ``name``,
    the schema becomes the component ``name`` and the body refers to it (generated clients
    then get a model of that name)."""
    if name is not None:
        BODY_COMPONENTS[name] = schema
        schema = {"$ref": f"#/components/schemas/{name}"}
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": media}}}
