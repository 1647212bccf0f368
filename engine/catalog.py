"""The tool catalog: what each tool address means and which JSON schemas guard it.

Entries come from ``catalogs/*.json`` (the builtin tools ship in ``catalogs/tools.json``)
and from tools registered at runtime (``POST /tools``, persisted by the store). Each file is
validated against :data:`CATALOG_FILE_SCHEMA` when it is loaded.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import jsonschema.validators
from referencing.exceptions import Unresolvable

from engine.errors import Problem, ValidationFailed
from engine.jsonshape import non_finite_path

CATALOG_DIR = Path(__file__).resolve().parents[1] / "catalogs"
TRANSPORTS = ("builtin", "http", "mcp")
# Tools that act with the task owner's authority: the owner needs this scope to use them
# (checked when a pipeline is submitted and again when the step runs).
TOOL_SCOPES = {"events.publish": "events:publish"}
ANY_OBJECT: dict[str, Any] = {"type": "object"}

TOOL_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "address": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$",
            "maxLength": 200,
        },
        "transport": {"enum": list(TRANSPORTS)},
        "endpoint": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
        "server": {"type": "string", "minLength": 1, "maxLength": 2000},
        "tool": {"type": "string", "minLength": 1, "maxLength": 200},
        "input_schema": {"type": "object"},
        "output_schema": {"type": "object"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
        "description": {"type": "string", "maxLength": 2000},
    },
    "required": ["address", "transport", "input_schema"],
    "additionalProperties": False,
    "allOf": [
        {
            "if": {"properties": {"transport": {"const": "http"}}},
            "then": {"required": ["endpoint"]},
        },
        {
            "if": {"properties": {"transport": {"const": "mcp"}}},
            "then": {"required": ["server", "tool"]},
        },
    ],
}

CATALOG_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"tools": {"type": "array", "items": TOOL_ENTRY_SCHEMA}},
    "required": ["tools"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class ToolSpec:
    """One catalog entry."""

    address: str
    transport: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] = field(default_factory=lambda: dict(ANY_OBJECT))
    endpoint: str | None = None
    server: str | None = None
    tool: str | None = None
    timeout_seconds: float = 30.0
    description: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout_seconds) and self.timeout_seconds > 0):
            raise ValueError(
                f"tool {self.address!r}: timeout_seconds must be a finite number > 0, "
                f"not {self.timeout_seconds!r}"
            )

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> ToolSpec:
        return cls(
            address=entry["address"],
            transport=entry["transport"],
            input_schema=entry["input_schema"],
            output_schema=entry.get("output_schema") or dict(ANY_OBJECT),
            endpoint=entry.get("endpoint"),
            server=entry.get("server"),
            tool=entry.get("tool"),
            timeout_seconds=float(entry.get("timeout_seconds", 30.0)),
            description=entry.get("description", ""),
        )

    @functools.cached_property
    def _input_validator(self) -> jsonschema.protocols.Validator:
        return validator_for_schema(self.input_schema)

    @functools.cached_property
    def _output_validator(self) -> jsonschema.protocols.Validator:
        return validator_for_schema(self.output_schema)

    def input_problems(self, arguments: Any, path: str = "$.with") -> list[Problem]:
        """How ``arguments`` violate the input schema (the validator is built once per tool)."""
        if self.input_schema == ANY_OBJECT:
            if not isinstance(arguments, dict):
                return _not_an_object(arguments, path)
            where = non_finite_path(arguments, path)
            return [] if where is None else [_non_finite(where)]
        return _problems(self._input_validator, arguments, path)

    def output_problems(self, output: Any, path: str = "$.output") -> list[Problem]:
        """How ``output`` violates the output schema."""
        if self.output_schema == ANY_OBJECT:
            # The default schema: skip the validator on the hot path.
            return [] if isinstance(output, dict) else _not_an_object(output, path)
        # Outputs may hold NaN (a tool's JSON): it is stored as null, see store/jsonb.py.
        return _problems(self._output_validator, output, path, finite=False)

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "address": self.address,
            "transport": self.transport,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "timeout_seconds": self.timeout_seconds,
        }
        for key in ("endpoint", "server", "tool"):
            if getattr(self, key) is not None:
                entry[key] = getattr(self, key)
        return entry


def schema_problems(schema: Mapping[str, Any], value: Any, path: str = "$") -> list[Problem]:
    """Every way ``value`` violates ``schema``, as problems with JSON paths under ``path``."""
    return _problems(validator_for_schema(schema), value, path)


def validator_for_schema(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    """A validator for ``schema`` (of the draft its ``$schema`` names; default the newest)."""
    return _validator(json.dumps(schema, sort_keys=True))


def _problems(
    validator: jsonschema.protocols.Validator, value: Any, path: str, *, finite: bool = True
) -> list[Problem]:
    # JSON Schema's bounds are false for NaN (NaN > 86400 and NaN < 0 both are), so a NaN
    # would pass any "minimum"/"maximum": no non-finite number is valid input anywhere.
    where = non_finite_path(value, path) if finite else None
    if where is not None:
        return [_non_finite(where)]
    try:
        if validator.is_valid(value):  # the common case, and cheaper than collecting errors
            return []
        errors = sorted(
            validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]
        )
    except Unresolvable as exc:  # registration refuses these; a schema from before must not 500
        return [
            Problem(path, f"the schema has a reference that resolves to nothing: {exc}", "schema")
        ]
    return [
        Problem(_json_path(path, error.absolute_path), error.message, "schema") for error in errors
    ]


def _non_finite(path: str) -> Problem:
    return Problem(path, "is not a finite number (NaN and infinities are not JSON)", "non_finite")


def _not_an_object(value: Any, path: str) -> list[Problem]:
    return [Problem(path, f"{_short(value)} is not of type 'object'", "schema")]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_entry(entry: Mapping[str, Any], path: str = "$") -> ToolSpec:
    """Validate one catalog entry (also its schemas) and build the :class:`ToolSpec`."""
    problems = schema_problems(TOOL_ENTRY_SCHEMA, entry, path)
    for key in ("input_schema", "output_schema"):
        if not problems and key in entry:
            problems += _meta_schema_problems(entry[key], f"{path}.{key}")
    if problems:
        raise ValidationFailed(problems)
    return ToolSpec.from_dict(entry)


def _meta_schema_problems(schema: Any, path: str) -> list[Problem]:
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return [Problem(path, f"not a valid JSON Schema: {exc.message}", "schema")]
    return [Problem(path, reason, "schema") for reason in _reference_problems(schema)]


# Keywords whose values are instances, not schemas: a "$ref" inside them is data.
_DATA_KEYWORDS = frozenset({"enum", "const", "examples", "default"})


def _reference_problems(schema: Any) -> list[str]:
    """Each ``$ref`` must point inside the schema (``#``, a ``#/json/pointer`` or a
    ``#name`` that a ``$anchor`` declares): nothing is fetched from elsewhere, and a dangling
    reference would otherwise surface only when a task is validated against the schema."""
    nodes = list(_subschemas(schema))
    anchors = {node["$anchor"] for node in nodes if isinstance(node.get("$anchor"), str)}
    refs = [node["$ref"] for node in nodes if isinstance(node.get("$ref"), str)]
    return [
        f"$ref {ref!r} must point inside the schema (#/... or #anchor) at something that exists"
        for ref in refs
        if not _resolves_locally(schema, ref, anchors)
    ]


def _subschemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in the schema that is a schema (data keywords' values skipped)."""
    if isinstance(node, dict):
        yield node
        for key, child in node.items():
            if key not in _DATA_KEYWORDS:
                yield from _subschemas(child)
    elif isinstance(node, list):
        for child in node:
            yield from _subschemas(child)


def _resolves_locally(schema: Any, ref: str, anchors: set[str]) -> bool:
    if ref == "#":
        return True
    if not ref.startswith("#/"):
        return ref.startswith("#") and ref[1:] in anchors
    node = schema
    for token in ref[2:].split("/"):
        key = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False
    return True


def _json_path(prefix: str, parts: Iterable[Any]) -> str:
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


@functools.lru_cache(maxsize=1024)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


class Catalog(Mapping[str, ToolSpec]):
    """An immutable mapping from tool address to :class:`ToolSpec`."""

    def __init__(self, tools: Iterable[ToolSpec] = ()) -> None:
        self._tools = {tool.address: tool for tool in tools}

    def __getitem__(self, address: str) -> ToolSpec:
        return self._tools[address]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def with_tools(self, tools: Iterable[ToolSpec]) -> Catalog:
        """A new catalog with ``tools`` added (a runtime tool never shadows a file's tool)."""
        merged = dict(self._tools)
        for tool in tools:
            merged.setdefault(tool.address, tool)
        return Catalog(merged.values())


def load_catalog_file(path: Path) -> list[ToolSpec]:
    """Read and validate one catalog file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationFailed([Problem("$", f"{path.name}: not JSON ({exc})")]) from None
    problems = schema_problems(CATALOG_FILE_SCHEMA, document)
    if problems:
        raise ValidationFailed(problems, f"{path}: invalid catalog")
    return [validate_entry(entry, f"$.tools[{i}]") for i, entry in enumerate(document["tools"])]


@functools.cache
def file_catalog(directory: Path = CATALOG_DIR) -> Catalog:
    """Every tool defined in ``directory/*.json`` (loaded once per process)."""
    tools: list[ToolSpec] = []
    for path in sorted(directory.glob("*.json")):
        tools.extend(load_catalog_file(path))
    return Catalog(tools)
