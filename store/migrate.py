"""The migration runner: numbered forward-only SQL files, applied once, in order.

A session-level advisory lock serialises concurrent runners; each file is applied in its
own transaction together with its ``schema_migrations`` row, so a failure leaves nothing half
applied and a second runner simply finds nothing left to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from store.db import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# An arbitrary constant: "ordinaut" in ASCII, shared by every runner.
_LOCK_KEY = 0x6F7264696E617574


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files, in version order."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match:
            found.append(Migration(match.group(1), path.stem, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number in {directory}")
    return found


def head(directory: Path = MIGRATIONS_DIR) -> str | None:
    """The newest migration version."""
    migrations = available(directory)
    return migrations[-1].version if migrations else None


async def applied_versions(conn: Connection) -> list[str]:
    """Versions already applied (empty when the table does not exist yet)."""
    exists = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
    row = await exists.fetchone()
    if not row or not row["present"]:
        return []
    cursor = await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
    return [r["version"] for r in await cursor.fetchall()]


async def migrate(conn: Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; return the names applied. ``conn`` must autocommit."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     text        PRIMARY KEY,
                name        text        NOT NULL,
                checksum    text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = set(await applied_versions(conn))
        applied = []
        for migration in available(directory):
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            applied.append(migration.name)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def is_at_head(conn: Connection, directory: Path = MIGRATIONS_DIR) -> tuple[bool, str]:
    """Whether every migration is applied, and a reason when not."""
    applied = await applied_versions(conn)
    missing = sorted({m.version for m in available(directory)} - set(applied))
    if not missing:
        return True, "migrations at head"
    current = applied[-1] if applied else "none"
    return False, (
        f"migrations not at head (database at {current}, code at {head(directory)}, "
        f"pending {', '.join(missing)})"
    )
