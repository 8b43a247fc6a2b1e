"""Versioned SQL migrations, applied in order under an advisory lock.

Each source is a named folder of ``NNNN_description.sql`` files. Applied versions are
recorded in ``schema_migrations``; running twice, or from two processes at once, is safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

# Any constant works; it only has to be the same in every process.
MIGRATION_LOCK_KEY = 0x5C16_0001

EVENTSTORE_MIGRATIONS = Path(__file__).parent / "migrations"

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    source: str
    version: int
    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class MigrationSource:
    name: str
    folder: Path

    def migrations(self) -> list[Migration]:
        found = []
        for path in sorted(self.folder.glob("*.sql")):
            match = _FILE_NAME.match(path.name)
            if match is None:
                raise ValueError(f"migration file name not understood: {path}")
            found.append(Migration(self.name, int(match[1]), path.stem, path.read_text()))
        return found


async def migrate(connection: asyncpg.Connection, sources: list[MigrationSource]) -> list[str]:
    """Apply every pending migration; return the names of those applied now."""
    applied_now: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                source     text        NOT NULL,
                version    integer     NOT NULL,
                name       text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (source, version)
            )
            """
        )
        done = {
            (row["source"], row["version"])
            for row in await connection.fetch("SELECT source, version FROM schema_migrations")
        }
        for source in sources:
            for migration in source.migrations():
                if (migration.source, migration.version) in done:
                    continue
                async with connection.transaction():
                    await connection.execute(migration.sql)
                    await connection.execute(
                        "INSERT INTO schema_migrations (source, version, name) VALUES ($1, $2, $3)",
                        migration.source,
                        migration.version,
                        migration.name,
                    )
                applied_now.append(f"{migration.source}/{migration.name}")
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied_now
