"""Write migrations/schema.snapshot.txt from a freshly migrated database.

Run it with `make schema-snapshot` after adding a migration.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from ops.embedded_pg import EmbeddedPostgres
from store.db import connect
from store.migrate import migrate
from store.schema import describe_schema

SNAPSHOT = Path(__file__).resolve().parents[1] / "migrations" / "schema.snapshot.txt"


async def _describe(url: str) -> str:
    conn = await connect(url)
    async with conn:
        await migrate(conn)
        return await describe_schema(conn)


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        cluster = EmbeddedPostgres(Path(home), fast=True)
        try:
            SNAPSHOT.write_text(asyncio.run(_describe(cluster.start())))
        finally:
            cluster.destroy()
    print(f"wrote {SNAPSHOT}")


if __name__ == "__main__":
    main()
