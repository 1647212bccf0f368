"""The ``ordinaut`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from engine.settings import Settings, SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ordinaut", description="Postgres-backed task orchestrator for AI agents."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="run Postgres (if needed), API, scheduler and workers")
    up.add_argument("--workers", type=_positive, default=2, help="worker processes (2)")
    up.add_argument("--concurrency", type=_positive, default=10, help="runs per worker (10)")
    up.add_argument("--host", default="127.0.0.1", help="API host (127.0.0.1)")
    up.add_argument("--port", type=_port, default=8080, help="API port (8080)")

    commands.add_parser("migrate", help="apply pending migrations")

    api = commands.add_parser("api", help="serve the REST API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=_port, default=8080)

    scheduler = commands.add_parser("scheduler", help="run one scheduler")
    scheduler.add_argument("--metrics-port", type=_port, default=None)

    worker = commands.add_parser("worker", help="run one worker process")
    worker.add_argument("--concurrency", type=_positive, default=10)
    worker.add_argument("--metrics-port", type=_port, default=None)

    db = commands.add_parser("db", help="the embedded PostgreSQL")
    db.add_argument("action", choices=["start", "stop", "url"])

    agent = commands.add_parser("agent", help="manage agents")
    agent_commands = agent.add_subparsers(dest="agent_command", required=True)
    create = agent_commands.add_parser("create", help="create an agent and print its token")
    create.add_argument("name")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        dest="scopes",
        help="a scope (repeat for several): tasks:read tasks:write runs:read runs:write "
        "events:publish tools:read admin",
    )
    _add_mcp_parser(commands)
    return parser


def _add_mcp_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="serve the MCP tools over stdio (for desktop MCP clients)",
        description="Speaks MCP on stdin/stdout and calls a running Ordinaut API with the "
        "agent token in ORDINAUT_TOKEN (no database needed).",
    )
    mcp.add_argument("--url", default=None, help="the API (default: ORDINAUT_URL)")
    mcp.add_argument("--read-only", action="store_true", help="list only the read-only tools")


def _positive(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number (0..65535)")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"ordinaut: {exc}", file=sys.stderr)
        return 2
    from observability.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        return 130
    except _Fatal as exc:
        print(f"ordinaut: {exc}", file=sys.stderr)
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
