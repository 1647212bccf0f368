"""Reading JSON bodies that the engine validates (so every problem gets its JSON path)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from engine.errors import Problem, ValidationFailed

MAX_DEPTH = 64


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON; a 422 naming ``$`` when it is not JSON or nests
    deeper than :data:`MAX_DEPTH` (deeper documents would exhaust the recursion of the
    validators and serialisers further on)."""
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed([Problem("$", "a JSON body is required", "missing")])
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed([Problem("$", f"body is not valid JSON: {exc}", "json")]) from None
    if _too_deep(document, MAX_DEPTH):
        raise ValidationFailed([Problem("$", f"nested deeper than {MAX_DEPTH} levels", "depth")])
    return document


def _too_deep(value: Any, budget: int) -> bool:
    """Whether ``value`` nests more than ``budget`` containers deep (iterative)."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= budget:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def json_body_openapi(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON request body by its JSON Schema."""
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": media}}}
