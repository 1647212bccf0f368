"""Reading JSON bodies that the engine validates (so every problem gets its JSON path)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from engine.errors import Problem, ValidationFailed


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON; a 422 naming ``$`` when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed([Problem("$", "a JSON body is required", "missing")])
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationFailed([Problem("$", f"body is not valid JSON: {exc}", "json")]) from None


def json_body_openapi(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON request body by its JSON Schema."""
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": media}}}
