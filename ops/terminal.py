"""What a command prints for people: one line on stderr, and the one-line failure."""

from __future__ import annotations

import argparse
import sys

from engine.redaction import mask_passwords


class CommandError(Exception):
    """A command failed; the message is shown as one line (exit status 1)."""


def say(message: str) -> None:
    """A line for the person at the terminal (stderr: stdout is for results), passwords
    masked."""
    print(mask_passwords(message), file=sys.stderr, flush=True)


def fail(message: str) -> None:
    """``ordinaut: <message>`` on stderr, passwords masked (the one-line failure)."""
    say(f"ordinaut: {message}")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (the exit statuses are a table); every option
    with a default shows it after its help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"
