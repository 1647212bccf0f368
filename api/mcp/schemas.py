"""The JSON Schemas of the MCP tools, derived from what the REST API declares.

A tool answers exactly what its REST call answers, so its output schema is that route's
response schema: the task document's components of :mod:`api.components` (derived from
:mod:`engine.document`) and the pydantic response models of the routers. Inputs reuse the
same declarations (the task document, the PATCH document, the schedule-preview and event
bodies). Every schema is self-contained: references point into its own ``$defs``, as MCP
clients resolve nothing outside the schema.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from api.components import COMPONENTS

_COMPONENT_REF = "#/components/schemas/"
_DEFS_REF = "#/$defs/"


def component(name: str, **extra: Any) -> dict[str, Any]:
    """The OpenAPI component ``name`` with the components it references in ``$defs``."""
    schema = _rewrite(copy.deepcopy(COMPONENTS[name]))
    defs: dict[str, Any] = {}
    pending = _references(schema)
    while pending:
        ref = pending.pop()
        if ref not in defs:
            defs[ref] = _rewrite(copy.deepcopy(COMPONENTS[ref]))
            pending |= _references(defs[ref])
    if defs:
        schema["$defs"] = defs
    return {**schema, **extra}


def model(cls: type[BaseModel], **extra: Any) -> dict[str, Any]:
    """A response model's schema as the API serialises it."""
    schema = cls.model_json_schema(mode="serialization", ref_template=_DEFS_REF + "{model}")
    return {**schema, **extra}


def page_of(item: dict[str, Any], what: str) -> dict[str, Any]:
    """A list answer ``{items, next_cursor}`` whose items follow ``item``."""
    item = copy.deepcopy(item)
    defs = item.pop("$defs", {})
    schema: dict[str, Any] = {
        "type": "object",
        "description": f"One page of {what}, newest first. `next_cursor` is null on the last "
        "page; otherwise pass it as `cursor` to get the next one.",
        "properties": {
            "items": {"type": "array", "items": item},
            "next_cursor": {"type": ["string", "null"]},
        },
        "required": ["items", "next_cursor"],
    }
    if defs:
        schema["$defs"] = defs
    return schema


def arguments(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """A tool's input schema: an object of ``properties``; the ``$defs`` of nested schemas
    are hoisted to the top, where their references point."""
    defs: dict[str, Any] = {}
    hoisted = {}
    for name, schema in properties.items():
        schema = copy.deepcopy(schema)
        defs.update(schema.pop("$defs", {}))
        hoisted[name] = schema
    schema = {
        "type": "object",
        "properties": hoisted,
        "required": list(required),
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def _rewrite(node: Any) -> Any:
    """``node`` with OpenAPI component references turned into ``$defs`` references."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_COMPONENT_REF):
            node["$ref"] = _DEFS_REF + ref.removeprefix(_COMPONENT_REF)
        for value in node.values():
            _rewrite(value)
    elif isinstance(node, list):
        for value in node:
            _rewrite(value)
    return node


def _references(node: Any) -> set[str]:
    """The ``$defs`` names that ``node`` refers to."""
    if isinstance(node, dict):
        found = set()
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_REF):
            found.add(ref.removeprefix(_DEFS_REF))
        for value in node.values():
            found |= _references(value)
        return found
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node)) if node else set()
    return set()
