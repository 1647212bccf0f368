"""Validation of task documents: structure (JSON Schema), schedule, and pipeline.

Every problem is collected, each with the JSON path of the offending value, so an agent can
fix its document in one round trip. :func:`validate_task` returns a normalised
:class:`~engine.document.TaskSpec` (its steps parsed) or raises
:class:`~engine.errors.ValidationFailed`. The document's fields and schemas are declared in
:mod:`engine.document`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from typing import Any

import jmespath.exceptions

from engine.catalog import TOOL_SCOPES, Catalog, ToolSpec, schema_problems
from engine.document import DEFAULTS, TASK_SCHEMA, TaskSpec, parse_pipeline
from engine.errors import Problem, ValidationFailed, first_line
from engine.schedules import SCHEDULE_KINDS, parse_schedule
from engine.templates import (
    FUNCTIONS,
    TemplateSyntaxError,
    compile_expression,
    split_template,
    strip_wrapper,
)
from engine.tokens import holds_scope


def validate_task(
    document: Any,
    catalog: Catalog,
    *,
    default_timezone: str,
    now: datetime,
    owner_scopes: Collection[str] | None,
    anchor: datetime | None = None,
) -> TaskSpec:
    """Validate a whole task document; raise :class:`ValidationFailed` listing every problem.

    ``now`` decides whether a schedule can still fire; ``anchor`` (default ``now``) is the
    task's creation time, the DTSTART of an RRULE without one. ``owner_scopes``: the scopes
    of the agent that will own the task, which tools such as ``events.publish`` need (None:
    not checked, for documents that no agent submits).
    """
    problems = task_problems(
        document, catalog, default_timezone=default_timezone, now=now, owner_scopes=owner_scopes
    )
    if problems:
        raise ValidationFailed(problems)
    merged = {**DEFAULTS, "timezone": default_timezone, **document}
    payload = {"params": {}, **merged["payload"]}
    schedule = parse_schedule(
        merged["schedule_kind"], merged["schedule_expr"], merged["timezone"], anchor=anchor or now
    )
    steps = parse_pipeline(payload["pipeline"])
    return TaskSpec(**{**merged, "payload": payload}, schedule=schedule, steps=steps)


def task_problems(
    document: Any,
    catalog: Catalog,
    *,
    default_timezone: str,
    now: datetime,
    owner_scopes: Collection[str] | None,
    anchor: datetime | None = None,
) -> list[Problem]:
    """Every problem with ``document`` (empty when it is valid); see :func:`validate_task`."""
    problems = schema_problems(TASK_SCHEMA, document)
    if not isinstance(document, Mapping):
        return problems
    problems += schedule_problems(document, default_timezone, now, anchor or now)
    payload = document.get("payload")
    if isinstance(payload, Mapping) and isinstance(payload.get("pipeline"), list):
        problems += pipeline_problems(payload["pipeline"], catalog, owner_scopes=owner_scopes)
    return _unique(problems)


def schedule_problems(
    document: Mapping[str, Any], default_timezone: str, now: datetime, anchor: datetime
) -> list[Problem]:
    """Problems with the schedule fields, including a schedule that can never fire."""
    kind, expr = document.get("schedule_kind"), document.get("schedule_expr")
    timezone = document.get("timezone") or default_timezone
    if not (isinstance(kind, str) and isinstance(expr, str) and isinstance(timezone, str)):
        return []
    if kind not in SCHEDULE_KINDS:
        return []  # the schema already reported it
    try:
        schedule = parse_schedule(kind, expr, timezone, anchor=anchor)
    except ValidationFailed as exc:
        return exc.problems
    if schedule is not None and kind != "once" and schedule.next_after(now) is None:
        return [Problem("$.schedule_expr", "the schedule never fires after now", "never_fires")]
    return []


def pipeline_problems(
    pipeline: list[Any], catalog: Catalog, *, owner_scopes: Collection[str] | None = None
) -> list[Problem]:
    """Unknown tools, duplicate ids, bad templates, unsaved ``steps.X`` references, literal
    arguments that violate a tool's input schema, and tools the owner may not use (when
    ``owner_scopes`` is given)."""
    problems: list[Problem] = []
    seen_ids: set[str] = set()
    saved: set[str] = set()
    for position, step in enumerate(pipeline):
        if not isinstance(step, Mapping):
            continue
        path = f"$.payload.pipeline[{position}]"
        problems += _step_problems(step, path, catalog, seen_ids, saved)
        problems += _scope_problems(step, path, owner_scopes)
        if isinstance(step.get("id"), str):
            seen_ids.add(step["id"])
        if isinstance(step.get("save_as"), str):
            saved.add(step["save_as"])
    return problems


def _step_problems(
    step: Mapping[str, Any],
    path: str,
    catalog: Catalog,
    seen_ids: set[str],
    saved: set[str],
) -> list[Problem]:
    problems: list[Problem] = []
    step_id = step.get("id")
    if isinstance(step_id, str) and step_id in seen_ids:
        problems.append(Problem(f"{path}.id", f"duplicate step id {step_id!r}", "duplicate_id"))
    uses = step.get("uses")
    if isinstance(uses, str) and uses not in catalog:
        problems.append(Problem(f"{path}.uses", f"unknown tool {uses!r}", "unknown_tool"))
    condition = step.get("if")
    if isinstance(condition, str):
        problems += _expression_problems(strip_wrapper(condition), f"{path}.if", saved)
    arguments = step.get("with", {})
    if isinstance(arguments, Mapping):
        for arg_path, expression in _templates(arguments, f"{path}.with", problems):
            problems += _expression_problems(expression, arg_path, saved)
        if isinstance(uses, str) and uses in catalog:
            problems += literal_argument_problems(arguments, catalog[uses], f"{path}.with")
    return problems


def _scope_problems(
    step: Mapping[str, Any], path: str, owner_scopes: Collection[str] | None
) -> list[Problem]:
    uses = step.get("uses")
    needed = TOOL_SCOPES.get(uses) if isinstance(uses, str) else None
    if needed is None or owner_scopes is None or holds_scope(owner_scopes, needed):
        return []
    message = f"{uses} acts as the task's owner, who lacks the {needed!r} scope"
    return [Problem(f"{path}.uses", message, "forbidden")]


def _templates(value: Any, path: str, problems: list[Problem]) -> Iterator[tuple[str, str]]:
    """Yield ``(path, expression)`` for each template; record malformed ones as problems."""
    if isinstance(value, str) and "${" in value:
        try:
            segments = split_template(value)
        except TemplateSyntaxError as exc:
            problems.append(Problem(path, f"bad template: {exc}", "template"))
            return
        for segment in segments:
            if segment.is_expression:
                yield path, segment.text
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _templates(item, f"{path}.{key}", problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _templates(item, f"{path}[{index}]", problems)


def _expression_problems(expression: str, path: str, saved: set[str]) -> list[Problem]:
    try:
        parsed = compile_expression(expression)
    except jmespath.exceptions.JMESPathError as exc:
        reason = first_line(exc)
        return [Problem(path, f"invalid JMESPath {expression!r}: {reason}", "jmespath")]
    problems = [
        Problem(path, f"{expression!r}: {reason}", "jmespath")
        for reason in ast_problems(parsed.parsed)
    ]
    problems += [
        Problem(
            path,
            f"{expression!r} reads steps.{name}, but no earlier step has save_as {name!r}",
            "unknown_step_reference",
        )
        for name in sorted(step_references(parsed.parsed))
        if name not in saved
    ]
    return problems


def ast_problems(node: Mapping[str, Any]) -> list[str]:
    """Calls of unknown functions or with the wrong number of arguments, and ``!a.b``
    (which negates ``a`` alone), in a parsed AST.

    JMESPath only notices these when the expression runs (or never); we report them at
    submit.
    """
    problems: list[str] = []
    children = node.get("children", [])
    if node.get("type") == "subexpression" and children[0].get("type") == "not_expression":
        # `!steps.a.ok` parses as `(!steps).a.ok`, which is always null: a classic trap.
        problems.append("'!' applies only to the first name here; write !(a.b.c) to negate a path")
    if node.get("type") == "function_expression":
        name, count = node["value"], len(node.get("children", []))
        entry = FUNCTIONS.FUNCTION_TABLE.get(name)
        if entry is None:
            problems.append(f"unknown function {name}() (known: {_function_names()})")
        else:
            signature = entry["signature"]
            variadic = bool(signature) and signature[-1].get("variadic", False)
            if count < len(signature) or (not variadic and count > len(signature)):
                wanted = f"at least {len(signature)}" if variadic else str(len(signature))
                problems.append(f"{name}() takes {wanted} arguments, not {count}")
    for child in node.get("children", []):
        if isinstance(child, Mapping):
            problems += ast_problems(child)
    return problems


def _function_names() -> str:
    return ", ".join(sorted(FUNCTIONS.FUNCTION_TABLE))


def step_references(node: Mapping[str, Any]) -> set[str]:
    """Names ``X`` read as ``steps.X`` anywhere in a parsed JMESPath AST."""
    found: set[str] = set()
    children = node.get("children", [])
    if node.get("type") == "subexpression" and len(children) >= 2:
        first, second = children[0], children[1]
        if first.get("type") == "field" and first.get("value") == "steps":
            if second.get("type") == "index_expression":
                second = second["children"][0]
            if second.get("type") == "field":
                found.add(second["value"])
    for child in children:
        if isinstance(child, Mapping):
            found |= step_references(child)
    return found


def literal_argument_problems(
    arguments: Mapping[str, Any], tool: ToolSpec, path: str
) -> list[Problem]:
    """Schema violations that templates cannot fix at run time.

    A templated value is unknown until the run, so violations at or below it are ignored;
    everything else (missing required keys, wrong literal types, unknown keys) counts.
    """
    templated = {p for p, _ in _templates(arguments, path, [])}
    return [
        problem
        for problem in tool.input_problems(dict(arguments), path)  # the tool's own validator
        if not any(_is_within(problem.path, t) for t in templated)
    ]


def _is_within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    result = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            result.append(problem)
    return result
