"""What the peer benchmark scripts share: their command line and the handler statistics.

Standard library only: this module is imported both by the orchestrator (in ``.venv``) and
by the peer scripts (in ``.bench-venv``, where Ordinaut is not installed).

A worker process writes its (empty) figures as soon as it starts: the orchestrator waits for
every file, lets the workers settle, then queues the jobs. Every no-op handler calls
:meth:`HandlerStats.job`: the first call records the first start,
every call the last finish. A background task writes the figures to a JSON file a few times
a second (atomically, by rename); the orchestrator sums the counts across processes to know
when the queue is drained and takes the span from the earliest first start to the latest
last finish, the same "first start to last finish" that Ordinaut's runs table gives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

FLUSH_SECONDS = 0.2
# Jobs per enqueue call: a whole drain's worth (20 000 by default) is queued by one
# statement, so that every job becomes visible to the idle workers at the same instant.
ENQUEUE_CHUNK = 100_000


@dataclass
class HandlerStats:
    """Jobs handled by one process, and when."""

    count: int = 0
    first_start: float | None = None
    last_finish: float | None = None

    def job(self) -> None:
        """A no-op job ran (it starts and finishes at once)."""
        now = time.time()
        if self.first_start is None:
            self.first_start = now
        self.count += 1
        self.last_finish = now

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> HandlerStats:
        if not path.exists():
            return cls()
        return cls(**json.loads(path.read_text()))

    async def flush_forever(self, path: Path) -> None:
        """Write the figures every ``FLUSH_SECONDS`` (a task cancelled at shutdown)."""
        while True:
            self.write(path)
            await asyncio.sleep(FLUSH_SECONDS)


def parse_args(description: str) -> argparse.Namespace:
    """``setup`` | ``enqueue --runs N`` | ``work --stats FILE [--concurrency C]`` |
    ``unfinished`` (prints how many jobs are queued or running)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("command", choices=["setup", "enqueue", "work", "unfinished"])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--stats", type=Path)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=10)
    return parser.parse_args()


def chunks(total: int, size: int = ENQUEUE_CHUNK) -> list[int]:
    """``total`` split into batch sizes of at most ``size``."""
    return [min(size, total - start) for start in range(0, total, size)]
