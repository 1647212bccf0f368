"""The ``ordinaut`` command line: the process and database commands (here and in
:mod:`ops.commands`), and the commands for the work over the API
(:mod:`ops.work_commands`). Each command group is added by one function."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import TYPE_CHECKING

from engine.settings import Settings, SettingsError, load_settings
from engine.tokens import SCOPES
from ops import work_commands
from ops.terminal import HelpFormatter, fail

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

DESCRIPTION = """\
Postgres-backed task orchestrator for AI agents.

Processes (they read DATABASE_URL and the ORDINAUT_* settings): up, migrate, api,
scheduler, worker, db, agent. The work, over the REST API (ORDINAUT_URL, ORDINAUT_TOKEN):
tasks, runs, agents, workers, preview; and mcp, the MCP tools over stdio for desktop
clients. `ordinaut COMMAND -h` explains each."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ordinaut",
        description=DESCRIPTION,
        epilog=work_commands.EXIT_STATUSES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ordinaut {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_up(commands)
    _add_processes(commands)
    _add_database(commands)
    work_commands.add_commands(commands)
    _add_mcp(commands)
    return parser


def _command(commands: Commands, name: str, help: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        formatter_class=HelpFormatter,
    )


def _add_up(commands: Commands) -> None:
    up = _command(commands, "up", "run Postgres (if needed), API, scheduler and workers")
    up.add_argument("--workers", type=_positive, default=2, help="worker processes")
    up.add_argument("--concurrency", type=_positive, default=10, help="runs per worker")
    up.add_argument("--host", default="127.0.0.1", help="the API's address")
    up.add_argument("--port", type=_port, default=8080, help="the API's port")


def _add_processes(commands: Commands) -> None:
    _command(commands, "migrate", "apply pending migrations (idempotent)")
    api = _command(commands, "api", "serve the REST API")
    api.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    api.add_argument("--port", type=_port, default=8080, help="the port to listen on")
    scheduler = _command(commands, "scheduler", "run one scheduler (any number may run)")
    scheduler.add_argument(
        "--metrics-port", type=_port, help="serve /metrics and /health here (default: none)"
    )
    worker = _command(commands, "worker", "run one worker process")
    worker.add_argument("--concurrency", type=_positive, default=10, help="runs at once")
    worker.add_argument(
        "--metrics-port", type=_port, help="serve /metrics and /health here (default: none)"
    )


def _add_database(commands: Commands) -> None:
    db = _command(commands, "db", "the embedded PostgreSQL under ORDINAUT_HOME")
    db.add_argument(
        "action",
        choices=["start", "stop", "url"],
        help="start it (prints its URL), stop it, or print its URL",
    )
    agent = _command(commands, "agent", "create an agent in the database directly")
    agent_commands = agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    create = _command(agent_commands, "create", "create an agent and print its token once")
    create.add_argument("name", help="a name unique among live agents")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        dest="scopes",
        help=f"a scope (repeat for several): {' '.join(SCOPES)}",
    )


def _add_mcp(commands: Commands) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="serve the MCP tools over stdio (for desktop MCP clients)",
        description="Speaks MCP on stdin/stdout and calls a running Ordinaut API with the "
        "agent token in ORDINAUT_TOKEN (no database needed).",
        formatter_class=HelpFormatter,
    )
    mcp.add_argument("--url", default=None, help="the API (default: ORDINAUT_URL)")
    mcp.add_argument("--read-only", action="store_true", help="list only the read-only tools")


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be greater than 0")
    return value


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number (0..65535)")
    return value


def _version() -> str:
    try:
        return metadata.version("ordinaut")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "work", None) is not None:
        try:
            return work_commands.run(args, os.environ)
        except KeyboardInterrupt:
            return 130
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        fail(str(exc))
        return 2
    from observability.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format, process=args.command)
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        return 130
    except _Fatal as exc:
        fail(str(exc))
        return 1


class _Fatal(Exception):
    """A failure to report in one line."""


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from ops import commands, supervisor
    from ops.database import with_database
    from ops.terminal import CommandError

    try:
        if args.command == "up":
            return supervisor.run_up(
                settings,
                os.environ,
                workers=args.workers,
                concurrency=args.concurrency,
                host=args.host,
                port=args.port,
            )
        if args.command == "db":
            return commands.db(settings, args.action)
        if args.command == "mcp":
            from ops import mcp_stdio

            return mcp_stdio.run(
                args.url, os.environ.get("ORDINAUT_TOKEN"), settings, read_only=args.read_only
            )
        settings = with_database(settings)
        if args.command == "migrate":
            return commands.migrate(settings)
        if args.command == "api":
            return commands.api(settings, args.host, args.port)
        if args.command == "scheduler":
            return commands.scheduler(settings, args.metrics_port)
        if args.command == "worker":
            return commands.worker(settings, args.concurrency, args.metrics_port)
        if args.command == "agent":
            return commands.agent_create(settings, args.name, args.scopes)
    except CommandError as exc:
        raise _Fatal(str(exc)) from None
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
