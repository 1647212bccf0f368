"""The commands for the work, over the REST API through :class:`ordinaut.Client`:
``tasks``, ``runs``, ``agents``, ``workers`` and ``preview``.

Each command is a function ``(client, args) -> Shown``; :func:`run` sends what it shows to
the terminal (a table, or ``-o json``, or ``-q`` ids) and turns errors into one line and an
exit status (:data:`EXIT_STATUSES`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from api.components import TASK_STATUSES
from api.schemas import RunStatus, RunTrigger
from engine.schedules import SCHEDULE_KINDS
from engine.tokens import SCOPES
from ops import views
from ops.terminal import HelpFormatter, fail
from ops.views import Shown
from ordinaut import (
    APIError,
    AuthenticationError,
    Client,
    OrdinautError,
    TransportError,
    ValidationError,
    WaitTimeout,
)
from ordinaut._config import DEFAULT_URL, TOKEN_VARIABLE, URL_VARIABLE
from ordinaut.models import QUOTA_NAMES

T = TypeVar("T")

EXIT_STATUSES = """\
exit status:
  0  done (for a wait: the run succeeded)
  1  the command failed: the API refused it (not found, conflict, invalid document, missing
     scope, server error), the API could not be reached, a wait ran out, or the run ended
     dead or canceled
  2  usage or configuration: bad arguments, an unreadable file, an invalid setting or URL,
     no token or a token the API does not know (401)
  130 interrupted (Ctrl-C)"""

FAILED = 1
USAGE = 2


class UsageError(Exception):
    """The command cannot run as asked (exit status 2)."""


Command = Callable[[Client, argparse.Namespace], Shown]


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tasks``, ``runs``, ``agents``, ``workers`` and ``preview`` to the CLI."""
    common = _client_options()
    _tasks_parser(commands, common)
    _runs_parser(commands, common)
    _agents_parser(commands, common)
    _add(commands, "workers", common, workers_list, "list the worker registry (admin token)")
    _preview_parser(commands, common)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run the work command chosen in ``args``; its exit status."""
    url = args.url or environ.get(URL_VARIABLE) or DEFAULT_URL
    token = args.token or environ.get(TOKEN_VARIABLE)
    try:
        with Client(url, token, max_retries=2) as client:
            shown = args.work(client, args)
    except (UsageError, ValueError) as exc:
        return _fail(str(exc), USAGE)
    except AuthenticationError as exc:
        hint = f"set {TOKEN_VARIABLE} or --token" if not token else "check the token"
        return _fail(f"{exc} ({hint})", USAGE)
    except ValidationError as exc:
        problems = "".join(f"\n  {p.path}: {p.message}" for p in exc.problems)
        return _fail(f"{exc.status} {exc.code}:{problems or ' ' + exc.message}", FAILED)
    except TransportError as exc:
        return _fail(f"cannot reach the API at {url}: {exc.__cause__ or exc}", FAILED)
    except WaitTimeout as exc:
        return _fail(f"{exc} (the run goes on: ordinaut runs wait {exc.run.id})", FAILED)
    except OrdinautError as exc:  # every other API error, an unexpected answer
        return _fail(str(exc), FAILED)
    _emit(shown, args)
    return int(shown.status)


def _fail(message: str, status: int) -> int:
    fail(message)
    return status


def _emit(shown: Shown, args: argparse.Namespace) -> None:
    if args.output == "json":
        print(json.dumps(shown.data, indent=2, ensure_ascii=False))
    elif args.quiet:
        for item in shown.ids:
            print(item)
    else:
        if shown.note:
            print(shown.note, file=sys.stderr)
        print(shown.text)


def _client_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("API options")
    group.add_argument(
        "--url", help=f"the API's base URL (default: ${URL_VARIABLE}, else {DEFAULT_URL})"
    )
    group.add_argument("--token", help=f"bearer token (default: ${TOKEN_VARIABLE})")
    group.add_argument(
        "-o",
        "--output",
        choices=["table", "json"],
        default="table",
        help="table for people, json (the API's answer) for scripts",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="print only ids (tokens for agents)"
    )
    return common


def _add(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    common: argparse.ArgumentParser,
    work: Command,
    help: str,
) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name,
        parents=[common],
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=EXIT_STATUSES,
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(work=work)
    return parser


def _group(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = commands.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=EXIT_STATUSES,
        formatter_class=HelpFormatter,
    )
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def _limit(parser: argparse.ArgumentParser, noun: str) -> None:
    parser.add_argument(
        "--limit", type=_count, default=50, help=f"show at most this many {noun} (0: all)"
    )


def _tasks_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    tasks = _group(commands, "tasks", "list, show, create, change and run tasks")
    listing = _add(tasks, "list", common, tasks_list, "list tasks, newest first")
    listing.add_argument(
        "--status", action="append", choices=TASK_STATUSES, help="only these (repeat for more)"
    )
    listing.add_argument(
        "--kind", action="append", choices=SCHEDULE_KINDS, help="only these schedule kinds"
    )
    _limit(listing, "tasks")
    _add(
        tasks, "show", common, tasks_show, "one task, its pipeline and its recent runs"
    ).add_argument("task_id", help="the task's id")
    create = _add(tasks, "create", common, tasks_create, "create a task from a JSON document")
    create.add_argument(
        "-f", "--file", required=True, help="the task document (JSON; - reads standard input)"
    )
    for action, work, text in (
        ("pause", tasks_pause, "pause a task (idempotent)"),
        ("resume", tasks_resume, "resume a paused task from now on (idempotent)"),
        ("cancel", tasks_cancel, "cancel a task for good (idempotent)"),
    ):
        _add(tasks, action, common, work, text).add_argument("task_id", help="the task's id")
    run_now = _add(tasks, "run", common, tasks_run, "queue a run of a task now")
    run_now.add_argument("task_id", help="the task's id")
    run_now.add_argument(
        "--wait",
        type=_seconds,
        nargs="?",
        const=60.0,
        default=None,
        metavar="SECONDS",
        help="wait until the run ends, at most SECONDS (60 when given without a value); "
        "exit status 1 unless it succeeded",
    )


def _runs_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    runs = _group(commands, "runs", "list, show, retry, cancel and wait for runs")
    listing = _add(runs, "list", common, runs_list, "list runs, newest first")
    listing.add_argument("--task", dest="task_id", help="only this task's runs")
    listing.add_argument(
        "--status",
        action="append",
        choices=[s.value for s in RunStatus],
        help="only these (repeat for more)",
    )
    listing.add_argument(
        "--trigger",
        action="append",
        choices=[t.value for t in RunTrigger],
        help="only these triggers (repeat for more)",
    )
    listing.add_argument("--since", type=_instant, help="queued at or after (ISO 8601)")
    listing.add_argument("--until", type=_instant, help="queued before (ISO 8601)")
    _limit(listing, "runs")
    for action, work, text in (
        ("show", runs_show, "one run with its steps and error"),
        ("retry", runs_retry, "re-queue a failed run now, or a dead one as a new run"),
        ("cancel", runs_cancel, "cancel a queued, waiting or running run"),
    ):
        _add(runs, action, common, work, text).add_argument("run_id", help="the run's id")
    wait = _add(runs, "wait", common, runs_wait, "wait until a run ends")
    wait.add_argument("run_id", help="the run's id")
    wait.add_argument(
        "--timeout", type=_seconds, default=60.0, help="give up after this many seconds"
    )


def _agents_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    agents = _group(commands, "agents", "agents and their tokens, over the API (admin token)")
    listing = _add(agents, "list", common, agents_list, "list agents, newest first")
    listing.add_argument("--all", action="store_true", help="include deleted agents")
    create = _add(agents, "create", common, agents_create, "create an agent; prints its token")
    create.add_argument("name", help="a name unique among live agents")
    create.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        required=True,
        choices=SCOPES,
        help="a scope (repeat for several)",
    )
    _add(
        agents, "revoke", common, agents_revoke, "delete an agent: its tokens stop working"
    ).add_argument("agent_id", help="the agent's id")
    rotate = _add(agents, "rotate", common, agents_rotate, "give an agent a new token")
    rotate.add_argument("agent_id", help="the agent's id")
    rotate.add_argument(
        "--keep-existing",
        action="store_true",
        help="keep its other tokens working (default: they are revoked)",
    )
    webhook = _add(
        agents, "webhook", common, agents_webhook, "show or set where an agent's webhooks go"
    )
    webhook.add_argument("agent_id", help="the agent's id (me: the caller)")
    where = webhook.add_mutually_exclusive_group()
    where.add_argument(
        "--to", metavar="URL", help="the http(s):// URL that receives its completion webhooks"
    )
    where.add_argument("--off", action="store_true", help="stop its webhooks")
    secret = _add(
        agents, "webhook-secret", common, agents_webhook_secret, "a new webhook signing secret"
    )
    secret.add_argument("agent_id", help="the agent's id (me: the caller)")
    secret.add_argument(
        "--keep-previous",
        action="store_true",
        help="the old secret signs too for 24 hours (default: it stops at once)",
    )
    quotas = _add(agents, "quotas", common, agents_quotas, "show or set an agent's quotas")
    quotas.add_argument("agent_id", help="the agent's id")
    for name in QUOTA_NAMES:
        quotas.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=_quota,
            metavar="N",
            help=f"set its own {name.replace('_', ' ')} quota (default: unchanged)",
        )
    quotas.add_argument(
        "--default",
        action="append",
        dest="defaults",
        choices=QUOTA_NAMES,
        metavar="NAME",
        help="give this quota back to the server's default (repeat for several): "
        + ", ".join(QUOTA_NAMES),
    )


def _preview_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    preview = _add(commands, "preview", common, schedule_preview, "a schedule's next occurrences")
    preview.add_argument(
        "expression", help='a cron expression ("0 9 * * 1-5"), an RRULE or an ISO 8601 time'
    )
    preview.add_argument(
        "--kind",
        choices=[k for k in SCHEDULE_KINDS if k != "event"],
        help="the schedule kind (default: guessed from the expression)",
    )
    preview.add_argument(
        "--tz", help="IANA time zone (default: the server's ORDINAUT_DEFAULT_TIMEZONE)"
    )
    preview.add_argument("--count", type=_count, default=10, help="how many occurrences (1..1000)")
    preview.add_argument("--after", help="start after this time (ISO 8601; default: now)")


def _count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is negative")
    return value


def _quota(raw: str) -> int:
    value = _count(raw)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be at least 1")
    return value


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"{raw!r} must be between 0 and 86400 seconds")
    return value


def _instant(raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _first(items: Iterable[T], limit: int) -> list[T]:
    return list(islice(items, limit or None))


def _page_size(limit: int) -> int:
    return min(limit, 500) if limit else 500


def tasks_list(client: Client, args: argparse.Namespace) -> Shown:
    tasks = _first(
        client.tasks.list(
            status=args.status, schedule_kind=args.kind, limit=_page_size(args.limit)
        ),
        args.limit,
    )
    return views.tasks(tasks)


def tasks_show(client: Client, args: argparse.Namespace) -> Shown:
    task = client.tasks.get(args.task_id)
    recent = client.runs.page(task_id=task.id, limit=5).items
    return views.task_detail(task, recent)


def tasks_create(client: Client, args: argparse.Namespace) -> Shown:
    task = client.tasks.create(_read_document(args.file))
    return views.task_changed(task, "created")


def tasks_pause(client: Client, args: argparse.Namespace) -> Shown:
    return views.task_changed(client.tasks.pause(args.task_id), "paused")


def tasks_resume(client: Client, args: argparse.Namespace) -> Shown:
    return views.task_changed(client.tasks.resume(args.task_id), "resumed")


def tasks_cancel(client: Client, args: argparse.Namespace) -> Shown:
    return views.task_changed(client.tasks.cancel(args.task_id), "canceled")


def tasks_run(client: Client, args: argparse.Namespace) -> Shown:
    run = client.tasks.run_now(args.task_id, wait=args.wait)
    return views.run_detail(run, _tasks_of(client, [run.task_id]), waited=args.wait is not None)


def runs_list(client: Client, args: argparse.Namespace) -> Shown:
    runs = _first(
        client.runs.list(
            task_id=args.task_id,
            status=args.status,
            trigger=args.trigger,
            since=args.since,
            until=args.until,
            limit=_page_size(args.limit),
        ),
        args.limit,
    )
    return views.runs(runs, _tasks_of(client, {run.task_id for run in runs}))


def runs_show(client: Client, args: argparse.Namespace) -> Shown:
    run = client.runs.get(args.run_id)
    return views.run_detail(run, _tasks_of(client, [run.task_id]))


def runs_retry(client: Client, args: argparse.Namespace) -> Shown:
    run = client.runs.retry(args.run_id)
    return views.run_detail(run, _tasks_of(client, [run.task_id]))


def runs_cancel(client: Client, args: argparse.Namespace) -> Shown:
    run = client.runs.cancel(args.run_id)
    return views.run_detail(run, _tasks_of(client, [run.task_id]))


def runs_wait(client: Client, args: argparse.Namespace) -> Shown:
    run = client.runs.wait(args.run_id, timeout=args.timeout)
    return views.run_detail(run, _tasks_of(client, [run.task_id]), waited=True)


def agents_list(client: Client, args: argparse.Namespace) -> Shown:
    return views.agents(list(client.agents.list(include_deleted=args.all)))


def agents_create(client: Client, args: argparse.Namespace) -> Shown:
    return views.new_token(client.agents.create(args.name, args.scopes), "created")


def agents_revoke(client: Client, args: argparse.Namespace) -> Shown:
    client.agents.delete(args.agent_id)
    text = f"agent {args.agent_id} deleted: its tokens no longer work"
    return Shown(text=text, data={"id": args.agent_id, "deleted": True}, ids=(args.agent_id,))


def agents_rotate(client: Client, args: argparse.Namespace) -> Shown:
    agent = client.agents.create_token(args.agent_id, keep_existing=args.keep_existing)
    kept = "kept" if args.keep_existing else "revoked"
    return views.new_token(agent, f"given a new token (its other tokens are {kept})")


def agents_webhook(client: Client, args: argparse.Namespace) -> Shown:
    if args.off or args.to is not None:
        return views.webhook(client.agents.set_webhook_url(args.agent_id, args.to))
    return views.webhook(client.agents.get(args.agent_id))  # "me": GET /agents/me


def agents_webhook_secret(client: Client, args: argparse.Namespace) -> Shown:
    made = client.agents.create_webhook_secret(args.agent_id, keep_previous=args.keep_previous)
    return views.new_webhook_secret(made, keep_previous=args.keep_previous)


def agents_quotas(client: Client, args: argparse.Namespace) -> Shown:
    changes: dict[str, int | None] = dict.fromkeys(args.defaults or ())
    for name in QUOTA_NAMES:
        if getattr(args, name) is not None:
            if name in changes:
                raise UsageError(f"--{name.replace('_', '-')} and --default {name} disagree")
            changes[name] = getattr(args, name)
    if changes:
        return views.quotas(client.agents.update(args.agent_id, quotas=changes))
    return views.quotas(client.agents.get(args.agent_id))


def workers_list(client: Client, args: argparse.Namespace) -> Shown:
    return views.workers(list(client.workers.list()), datetime.now(UTC))


def schedule_preview(client: Client, args: argparse.Namespace) -> Shown:
    kind = args.kind or guess_kind(args.expression)
    preview = client.schedules.preview(kind, args.expression, args.tz, args.count, args.after)
    return views.occurrences(preview, kind, args.expression, args.tz)


def guess_kind(expression: str) -> str:
    """``rrule`` for RRULE text, ``cron`` for five fields or an ``@`` shorthand, else
    ``once`` (an ISO 8601 time)."""
    text = expression.strip().upper()
    if text.startswith(("FREQ=", "RRULE", "DTSTART", "RDATE")):
        return "rrule"
    if text.startswith("@") or len(text.split()) == 5:
        return "cron"
    return "once"


def _read_document(name: str) -> Any:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{name} is not JSON: {exc}") from None


def _tasks_of(client: Client, task_ids: Iterable[Any]) -> dict[Any, views.TaskLabel]:
    """Each task's title and zone (a deleted or foreign task: its id, UTC)."""
    return {task_id: _label(client, task_id) for task_id in task_ids}


def _label(client: Client, task_id: Any) -> views.TaskLabel:
    try:
        task = client.tasks.get(task_id)
    except APIError:
        return views.TaskLabel(title=str(task_id), zone="UTC")
    return views.TaskLabel(title=task.title, zone=task.timezone)
