"""The command line's parser: every command and option has a help text, every default is
shown, bad values read well, and the work commands share their API options."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from ops.cli import build_parser


def parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, (*path, name))


def test_every_command_and_option_has_help_and_shows_its_default() -> None:
    root = build_parser()
    seen = 0
    for path, parser in parsers(root):
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, (path, choice.dest)
                continue
            assert action.help, (path, action.dest)
            seen += 1
            if action.default not in (None, False):
                assert f"(default: {action.default})" in " ".join(text.split()), (
                    path,
                    action.dest,
                )
    assert seen > 60


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["api", "--port", "abc"], "argument --port: 'abc' is not a port number (0..65535)"),
        (["up", "--port", "70000"], "argument --port: '70000' is not a port number (0..65535)"),
        (["up", "--workers", "0"], "argument --workers: '0' must be greater than 0"),
        (["worker", "--concurrency", "x"], "argument --concurrency: 'x' is not a whole number"),
        (["runs", "wait", "r", "--timeout", "-1"], "'-1' must be between 0 and 86400 seconds"),
        (["runs", "list", "--since", "yesterday"], "'yesterday' is not an ISO 8601 time"),
    ],
)
def test_bad_values_read_well(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert message in error and "_port" not in error and "invalid" not in error


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("ordinaut ")


def test_every_work_command_takes_the_api_options() -> None:
    groups = {"tasks", "runs", "agents"}
    for path, parser in parsers(build_parser()):
        in_group = len(path) == 2 and path[0] in groups
        if in_group or path in (("workers",), ("preview",)):
            options = {o for a in parser._actions for o in a.option_strings}
            assert {"--url", "--token", "-o", "--output", "-q"} <= options, path
