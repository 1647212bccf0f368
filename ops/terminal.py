"""What a command prints for people: one line on stderr, and the one-line failure."""

from __future__ import annotations

import sys


class CommandError(Exception):
    """A command failed; the message is shown as one line (exit status 1)."""


def say(message: str) -> None:
    """A line for the person at the terminal (stderr: stdout is for results)."""
    print(message, file=sys.stderr, flush=True)
