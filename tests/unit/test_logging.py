"""Log formats: JSON lines with context keys, text for humans, bound context, redaction."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from engine.catalog import ToolSpec, file_catalog
from engine.pipeline import CallContext
from engine.settings import Settings
from observability.logging import (
    JsonFormatter,
    TextFormatter,
    bind_log_context,
    configure_logging,
    log_context,
)
from workers.worker import Worker


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ordinaut.test.logging")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_context_keys_at_top_level(capture):
    logger, stream, _ = capture
    logger.info(
        "step %s done",
        "greet",
        extra={"task_id": "t1", "run_id": "r1", "step_id": "greet", "worker_id": "w1"},
    )
    [entry] = lines(stream)
    assert entry["message"] == "step greet done"
    assert entry["level"] == "info"
    assert entry["logger"] == "ordinaut.test.logging"
    assert {k: entry[k] for k in ("task_id", "run_id", "step_id", "worker_id")} == {
        "task_id": "t1",
        "run_id": "r1",
        "step_id": "greet",
        "worker_id": "w1",
    }
    assert entry["time"].endswith("+00:00")


def test_bound_context_is_added_and_extra_wins(capture):
    logger, stream, _ = capture
    with log_context(worker_id="w9", run_id="bound"):
        logger.info("inside", extra={"run_id": "explicit"})
    logger.info("outside")
    inside, outside = lines(stream)
    assert inside["worker_id"] == "w9"
    assert inside["run_id"] == "explicit"
    assert "worker_id" not in outside and "run_id" not in outside


async def test_asyncio_tasks_inherit_the_bound_context(capture):
    logger, stream, _ = capture

    async def process() -> None:
        bind_log_context(worker_id="w-async")

        async def run() -> None:
            with log_context(run_id="r-async"):
                logger.info("run log")

        await asyncio.create_task(run())
        logger.info("process log")

    await asyncio.create_task(process())  # its own context copy: nothing leaks out
    logger.info("after")
    run_entry, process_entry, after = lines(stream)
    assert run_entry["worker_id"] == "w-async" and run_entry["run_id"] == "r-async"
    assert process_entry["worker_id"] == "w-async" and "run_id" not in process_entry
    assert "worker_id" not in after


def test_secrets_are_redacted_in_extras_and_nested_values(capture):
    logger, stream, _ = capture
    logger.info(
        "calling",
        extra={
            "authorization": "Bearer abc",
            "request": {"headers": {"X-Api-Key": "k", "Accept": "json"}, "items": [{"pw": 1}]},
            "arguments": [{"password": "p", "city": "Chisinau"}],
        },
    )
    [entry] = lines(stream)
    assert entry["authorization"] == "[redacted]"
    assert entry["request"]["headers"] == {"X-Api-Key": "[redacted]", "Accept": "json"}
    assert entry["arguments"] == [{"password": "[redacted]", "city": "Chisinau"}]
    assert "abc" not in stream.getvalue()


def test_exceptions_are_one_json_line(capture):
    logger, stream, _ = capture
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed", extra={"run_id": "r2"})
    assert len(stream.getvalue().splitlines()) == 1
    [entry] = lines(stream)
    assert entry["level"] == "error"
    assert "RuntimeError: boom" in entry["exception"]


def test_values_that_are_not_json_are_stringified(capture):
    logger, stream, _ = capture
    logger.info("odd", extra={"when": object.__new__(type("Thing", (), {}))})
    [entry] = lines(stream)
    assert "Thing" in entry["when"]


def test_text_format_for_humans():
    record = logging.LogRecord(
        "ordinaut.worker", logging.WARNING, __file__, 1, "lease lost", (), None
    )
    record.run_id = "r3"
    with log_context(worker_id="w3"):
        line = TextFormatter().format(record)
    assert "WARNING" in line and "ordinaut.worker: lease lost" in line
    assert line.endswith("[run_id=r3 worker_id=w3]")


def test_configure_logging_picks_the_format(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", "json")
        logging.getLogger("ordinaut.test").info("hello", extra={"task_id": "t"})
        logging.getLogger("ordinaut.test").debug("hidden")
        err = capsys.readouterr().err.splitlines()
        assert [json.loads(line)["task_id"] for line in err] == ["t"]
        configure_logging("DEBUG", "text")
        logging.getLogger("ordinaut.test").debug("plain")
        text = capsys.readouterr().err
        assert "DEBUG" in text and "plain" in text and not text.startswith("{")
        assert logging.getLogger("uvicorn.access").disabled
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_uvicorns_coloured_copy_of_the_message_is_left_out(capture):
    logger, stream, _ = capture
    logger.info("Started server process [%d]", 7, extra={"color_message": "\x1b[36m%d\x1b[0m"})
    [entry] = lines(stream)
    assert entry["message"] == "Started server process [7]"
    assert "color_message" not in entry


async def test_tool_transports_log_with_the_step_id(capture):
    """The worker binds ``step_id`` around every tool call, so the transports' own lines
    (circuit breaker, MCP sessions) say which step they belong to."""
    logger, stream, _ = capture

    async def transport(tool: ToolSpec, arguments: dict, context: CallContext) -> dict:
        logger.warning("circuit opened for %s", tool.address)
        return {}

    async def catalog():
        return file_catalog()

    worker = Worker(Settings(), pool=None, catalog_provider=catalog, tools=transport)  # type: ignore[arg-type]
    context = CallContext("run-1", "task-1", "fetch", 1, 1)
    with log_context(run_id="run-1"):
        await worker._call_tool(ToolSpec("x.y", "http", {}), {}, context)
    [entry] = lines(stream)
    assert (entry["run_id"], entry["step_id"]) == ("run-1", "fetch")
