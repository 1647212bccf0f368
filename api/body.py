"""Reading JSON bodies that the engine validates (so every problem gets its JSON path)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from engine.errors import Problem, ValidationFailed
from engine.jsondepth import MAX_JSON_DEPTH, nests_deeper_than


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON; a 422 naming ``$`` when it is not JSON or nests
    deeper than :data:`~engine.jsondepth.MAX_JSON_DEPTH` (deeper documents would exhaust the
    recursion of the validators and serialisers further on), or naming the path of a NUL."""
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed([Problem("$", "a JSON body is required", "missing")])
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed([Problem("$", f"body is not valid JSON: {exc}", "json")]) from None
    if nests_deeper_than(document, MAX_JSON_DEPTH):
        message = f"nested deeper than {MAX_JSON_DEPTH} levels"
        raise ValidationFailed([Problem("$", message, "depth")])
    if b"\\u0000" in raw and (path := _nul_path(document)) is not None:
        # PostgreSQL stores no U+0000 in text or jsonb: say where it is, before anything runs.
        raise ValidationFailed([Problem(path, "contains a NUL character (\\u0000)", "nul")])
    return document


def _nul_path(value: Any, path: str = "$") -> str | None:
    """The JSON path of the first string or key holding U+0000, or None (the document was
    checked for depth first, so recursion is bounded)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}"
            if "\x00" in key:
                return child
            if (found := _nul_path(item, child)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _nul_path(item, f"{path}[{index}]")) is not None:
                return found
    return None


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
