"""The pipeline executor: runs a task's steps in order with an injected tool caller.

It touches neither the database nor the network: the worker passes a :class:`ToolCaller`
(which reaches builtin, HTTP and MCP tools), a clock and a sleep function. Failures are data:
the executor returns a :class:`PipelineOutcome` whose ``error`` says which step failed, why,
and whether a retry of the run could help.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from engine.catalog import Catalog, ToolSpec
from engine.clock import Clock, now_utc
from engine.deadlines import within
from engine.document import Step
from engine.errors import (
    StepError,
    StepTimeout,
    TemplateError,
    ToolInputInvalid,
    ToolNotFound,
    ToolOutputInvalid,
)
from engine.jsonshape import (
    DEFAULT_MAX_VALUE_BYTES,
    MAX_JSON_DEPTH,
    Shape,
    json_prefix,
    shape_of,
)
from engine.retry import step_retry_delay
from engine.templates import EVALUATION_ERRORS, evaluate, render

Sleep = Callable[[float], Awaitable[None]]

DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024
# The executor's own timeout fires this long after the step's deadline: transports hit the
# deadline first and report it themselves (so their circuit breakers count it).
BACKSTOP_GRACE_SECONDS = 0.05
TRUNCATION_MARKER_BYTES = 160  # room for the marker's own keys within the limit
MAX_ERROR_MESSAGE_CHARS = 4000
# Measuring a value visits each distinct array/object once; beyond this many items it goes
# on in a thread, so one large output never holds up the other runs of the event loop.
INLINE_MEASURE_ITEMS = 5000
# Rendering reads the earlier outputs; when they add up to more than this, it runs in a
# thread too (a template may interpolate or transform all of them).
INLINE_RENDER_BYTES = 256 * 1024


@dataclass(frozen=True)
class CallContext:
    """What a tool call knows about where it runs.

    ``deadline`` is the event-loop time (``loop.time()``) by which the step must end;
    transports that talk to the network enforce it themselves so that their circuit breaker
    sees the timeout (the executor's own timeout is only a backstop a little later).
    """

    run_id: str
    task_id: str
    step_id: str
    run_attempt: int
    step_attempt: int
    agent_id: str | None = None
    timeout_seconds: float = 30.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        # A NaN deadline corrupts the event loop's timer heap: refuse it at construction.
        if not (math.isfinite(self.timeout_seconds) and self.timeout_seconds > 0):
            raise ValueError(
                f"timeout_seconds must be a finite number > 0, not {self.timeout_seconds!r}"
            )
        if self.deadline is not None and not math.isfinite(self.deadline):
            raise ValueError(f"the deadline must be a finite time, not {self.deadline!r}")

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}:{self.step_id}"

    def remaining(self) -> float:
        """Seconds left before the deadline (``timeout_seconds`` when there is none)."""
        if self.deadline is None:
            return self.timeout_seconds
        return max(0.0, self.deadline - asyncio.get_running_loop().time())


class ToolCaller(Protocol):
    async def __call__(
        self, tool: ToolSpec, arguments: dict[str, Any], context: CallContext
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunError:
    """The structured error of a failed run."""

    step_id: str | None
    type: str
    message: str
    retryable: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "type": self.type,
            "message": self.message,
            "retryable": self.retryable,
        }


@dataclass
class StepResult:
    """One step as a run records it. ``started_at``, ``duration_ms``, ``attempt``,
    ``output`` and ``error`` describe its last try; ``tries`` the failed tries before it
    (``{try, started_at, duration_ms, error, backoff_ms}``: ``backoff_ms`` is the pause that
    followed); ``skip_reason`` why a skipped step did not run (``{if, value}``)."""

    id: str
    uses: str
    status: str  # succeeded | failed | skipped
    started_at: str | None = None
    duration_ms: int | None = None
    attempt: int = 0
    output: Any = None
    error: dict[str, Any] | None = None
    tries: list[dict[str, Any]] | None = None
    skip_reason: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The stored form; ``tries`` and ``skip_reason`` only when there are any (most
        steps of most runs have neither, and every byte is written per run)."""
        recorded = {
            "id": self.id,
            "uses": self.uses,
            "status": self.status,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "attempt": self.attempt,
            "output": self.output,
            "error": self.error,
        }
        if self.tries:
            recorded["tries"] = self.tries
        if self.skip_reason is not None:
            recorded["skip_reason"] = self.skip_reason
        return recorded


@dataclass
class PipelineOutcome:
    steps: list[StepResult] = field(default_factory=list)
    error: RunError | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RunInfo:
    """The ``run`` part of the template context, plus the owner for tools that need it."""

    id: str
    task_id: str
    attempt: int
    scheduled_for: datetime
    agent_id: str | None = None  # the task's owner: events.publish publishes as this agent

    def as_context(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "scheduled_for": self.scheduled_for.isoformat(),
        }


@dataclass
class Executor:
    """Runs pipelines against a catalog with an injected tool caller.

    ``max_output_bytes`` bounds what a step *records* as its output (larger outputs are
    replaced by a truncation marker, see :func:`truncate_output`); later steps still see the
    whole output through ``steps.<save_as>``. ``max_value_bytes`` bounds what a step may
    take and give at all: rendered arguments or an output larger than that as JSON fail the
    step (not retryably), so no run can build values that are too costly to handle.
    """

    catalog: Catalog
    call_tool: ToolCaller
    clock: Clock = field(default=now_utc)
    sleep: Sleep = asyncio.sleep
    retry_base_seconds: float = 1.0
    observe_step: Callable[[StepResult], None] | None = None
    # Told of each failed try that will be tried again, with the seconds before the next.
    observe_retry: Callable[[StepResult, float], None] | None = None
    max_output_bytes: int | None = DEFAULT_MAX_OUTPUT_BYTES
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES

    async def run(
        self,
        steps: Sequence[Step],
        *,
        params: Mapping[str, Any],
        run: RunInfo,
        event: Any = None,
        cancelled: Callable[[], bool] = lambda: False,
        outcome: PipelineOutcome | None = None,
    ) -> PipelineOutcome:
        """Run every step in order; stop at the first failure unless it says ``continue``.

        Results are appended to ``outcome`` as each step ends, so a caller that cancels the
        run (a run timeout) still has the steps that finished.
        """
        context: dict[str, Any] = {
            "now": self.clock().isoformat(),
            "params": params,
            "steps": {},
            "event": event,
            "run": run.as_context(),
        }
        outcome = outcome if outcome is not None else PipelineOutcome()
        readable = _Readable()
        for step in steps:
            if cancelled():
                outcome.error = RunError(
                    step_id=step.id, type="canceled", message="run canceled", retryable=False
                )
                break
            result, output = await self._run_step(step, context, run, readable)
            outcome.steps.append(result)
            if self.observe_step is not None:
                self.observe_step(result)
            if result.status == "succeeded" and step.save_as:
                context["steps"][step.save_as] = output.value if output else None
                readable.bytes += output.size if output else 0
            if result.status == "failed" and step.on_error == "fail":
                assert result.error is not None
                outcome.error = RunError(
                    step_id=result.id,
                    type=result.error["type"],
                    message=result.error["message"],
                    retryable=bool(result.error["retryable"]),
                )
                break
        return outcome

    async def _run_step(
        self, step: Step, context: dict[str, Any], run: RunInfo, readable: _Readable
    ) -> tuple[StepResult, _Output | None]:
        """Evaluate ``if``, then attempt the call up to ``1 + max_retries`` times, keeping
        each failed try and the backoff after it.

        Returns the recorded result and the full (untruncated) output.
        """
        result = StepResult(id=step.id, uses=step.uses, status="skipped")
        if step.condition is not None:
            try:
                value = _condition(step.condition, context, step.id)
            except StepError as exc:
                return _failed(result, exc), None
            if not _truthy(value):  # false, null, "", [] or {}: small by nature
                result.skip_reason = {"if": step.condition, "value": value}
                return result, None
        tries: list[dict[str, Any]] = []
        attempt = 1
        while True:
            result, output = await self._attempt(step, context, run, attempt, readable)
            retryable = result.error is not None and result.error["retryable"]
            if result.status == "succeeded" or not retryable or attempt > step.max_retries:
                result.tries = tries or None
                return result, output
            delay = step_retry_delay(attempt, self.retry_base_seconds)
            if self.observe_retry is not None:
                self.observe_retry(result, delay)
            paused = time.perf_counter()
            await self.sleep(delay)
            tries.append(_failed_try(result, backoff=time.perf_counter() - paused))
            attempt += 1

    async def _attempt(
        self, step: Step, context: dict[str, Any], run: RunInfo, attempt: int, readable: _Readable
    ) -> tuple[StepResult, _Output | None]:
        started = self.clock()
        clock_start = time.perf_counter()
        result = StepResult(
            id=step.id,
            uses=step.uses,
            status="failed",
            started_at=started.isoformat(),
            attempt=attempt,
        )
        output: _Output | None = None
        try:
            output = await self._call(step, context, run, attempt, readable)
            result.output = await self._recordable(output)
            result.status = "succeeded"
        except StepError as exc:
            _failed(result, exc)
        result.duration_ms = int((time.perf_counter() - clock_start) * 1000)
        return result, output

    async def _call(
        self, step: Step, context: dict[str, Any], run: RunInfo, attempt: int, readable: _Readable
    ) -> _Output:
        tool = self.catalog.get(step.uses)
        if tool is None:
            raise ToolNotFound(f"step {step.id!r}: unknown tool {step.uses!r}")
        arguments = await self._render(step, context, readable)
        shape = await self._measure(arguments)
        if problem := self._too_big(shape):
            raise ToolInputInvalid(f"step {step.id!r}: arguments {problem}")
        problems = tool.input_problems(arguments)
        if problems:
            raise ToolInputInvalid(
                f"step {step.id!r}: arguments for {tool.address}: {_describe(problems)}",
                details=[p.as_dict() for p in problems],
            )
        timeout = step.timeout_seconds or tool.timeout_seconds  # finite: Step and ToolSpec check
        deadline = asyncio.get_running_loop().time() + timeout
        call = CallContext(
            run_id=run.id,
            task_id=run.task_id,
            step_id=step.id,
            run_attempt=run.attempt,
            step_attempt=attempt,
            agent_id=run.agent_id,
            timeout_seconds=timeout,
            deadline=deadline,
        )
        try:
            # The backstop is armed only if the call suspends (see engine.deadlines).
            output = await within(
                self.call_tool(tool, arguments, call), deadline + BACKSTOP_GRACE_SECONDS
            )
        except TimeoutError:
            raise StepTimeout(f"step {step.id!r} timed out after {timeout:g}s") from None
        shape = await self._measure(output)
        if problem := self._too_big(shape):
            raise ToolOutputInvalid(f"step {step.id!r}: output of {tool.address} {problem}")
        problems = tool.output_problems(output)
        if problems:
            raise ToolOutputInvalid(
                f"step {step.id!r}: output of {tool.address}: {_describe(problems)}",
                details=[p.as_dict() for p in problems],
            )
        return _Output(output, shape.size)

    async def _render(
        self, step: Step, context: dict[str, Any], readable: _Readable
    ) -> dict[str, Any]:
        """The step's arguments with their templates evaluated: in a thread when the earlier
        outputs the templates may read are large."""
        try:
            if readable.bytes > INLINE_RENDER_BYTES:
                return await asyncio.to_thread(render, step.arguments, context)
            return render(step.arguments, context)  # type: ignore[no-any-return]
        except TemplateError as exc:
            raise TemplateError(f"step {step.id!r}: {exc.message}") from None

    async def _recordable(self, output: _Output) -> Any:
        """What the step records: the output, or its truncation marker (built in a thread:
        the preview encodes up to the whole limit)."""
        limit = self.max_output_bytes
        if limit is None or output.size <= limit:
            return output.value
        return await asyncio.to_thread(truncate_output, output.value, limit, size=output.size)

    async def _measure(self, value: Any) -> Shape:
        """The value's depth, size and finiteness (see :mod:`engine.jsonshape`): inline while
        it is small, in a thread beyond :data:`INLINE_MEASURE_ITEMS` items."""
        exact_above = self.max_output_bytes or 0
        shape = shape_of(value, budget=INLINE_MEASURE_ITEMS, exact_above=exact_above)
        if shape is None:
            shape = await asyncio.to_thread(shape_of, value, exact_above=exact_above)
        assert shape is not None  # no budget in the thread
        return shape

    def _too_big(self, shape: Shape) -> str | None:
        if shape.depth > MAX_JSON_DEPTH:
            return f"nest deeper than {MAX_JSON_DEPTH} levels"
        if shape.size > self.max_value_bytes:
            return (
                f"are {shape.size} bytes as JSON, over the limit of {self.max_value_bytes} "
                "(ORDINAUT_MAX_VALUE_BYTES)"
            )
        return None


@dataclass
class _Readable:
    """How many bytes of earlier outputs the next step's templates may read."""

    bytes: int = 0


@dataclass(frozen=True)
class _Output:
    """A step's whole output and its size as JSON."""

    value: dict[str, Any]
    size: int


def truncate_output(output: Any, limit: int | None, *, size: int | None = None) -> Any:
    """``output``, or a marker in its place when its JSON is larger than ``limit`` bytes.

    ``size`` is the output's JSON size when the caller measured it already (exact when it is
    over ``limit``, as :func:`~engine.jsonshape.shape_of` gives it). The marker keeps
    the start of the JSON text (encoded lazily: an output sharing substructure may be far
    larger as text than in memory), so nothing is dropped silently::

        {"_truncated": true, "original_bytes": 1048576, "limit_bytes": 65536,
         "preview": "{\"items\": [{\"id\": 1, ..."}
    """
    if limit is None:
        return output
    if size is None:
        shape = shape_of(output)
        assert shape is not None  # no budget
        size = shape.size
    if size <= limit:
        return output
    room = max(0, limit - TRUNCATION_MARKER_BYTES)
    return {
        "_truncated": True,
        "original_bytes": size,
        "limit_bytes": limit,
        "preview": json_prefix(output, room),
    }


def _condition(expression: str, context: dict[str, Any], step_id: str) -> Any:
    try:
        return evaluate(expression, context)
    except EVALUATION_ERRORS as exc:
        raise TemplateError(f"step {step_id!r}: condition {expression!r} failed: {exc}") from None


def _truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, empty strings, arrays and objects are false."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str | list | dict) and len(value) == 0)


def _failed_try(result: StepResult, *, backoff: float) -> dict[str, Any]:
    """A failed try as the step keeps it, with the pause that followed it."""
    return {
        "try": result.attempt,
        "started_at": result.started_at,
        "duration_ms": result.duration_ms,
        "error": result.error,
        "backoff_ms": int(backoff * 1000),
    }


def _failed(result: StepResult, exc: StepError) -> StepResult:
    message = exc.message
    if len(message) > MAX_ERROR_MESSAGE_CHARS:
        message = message[: MAX_ERROR_MESSAGE_CHARS - 15] + "... (truncated)"
    result.status = "failed"
    result.error = {
        "type": exc.type,
        "message": message,
        "retryable": exc.retryable,
        **({"details": exc.details} if exc.details is not None else {}),
    }
    return result


def _describe(problems: list[Any]) -> str:
    return "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
