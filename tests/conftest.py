"""Real PostgreSQL for every test: one server per session, one fresh database per test.

``SCIM_GATEWAY_DATABASE_URL`` points the suite at an existing server (the URL's user must
be allowed to create databases); without it an embedded server is started under a
temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from eventstore import EventStore
from eventstore.embedded import start_embedded
from eventstore.pool import create_pool
from gateway.database import migrate_database

TEMPLATE = "scimgw_test_template"


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _admin(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def server_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("SCIM_GATEWAY_DATABASE_URL")
    if configured:
        return configured
    return start_embedded(Path(tmp_path_factory.mktemp("embedded")))


@pytest.fixture(scope="session")
def template_dsn(server_dsn: str) -> Iterator[str]:
    admin = with_database(server_dsn, "postgres")
    asyncio.run(_admin(admin, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))
    asyncio.run(_admin(admin, f"CREATE DATABASE {TEMPLATE}"))
    dsn = with_database(server_dsn, TEMPLATE)
    asyncio.run(migrate_database(dsn))
    yield dsn
    asyncio.run(_admin(admin, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))


@pytest.fixture
async def database_url(server_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """A migrated database of this test's own."""
    name = f"scimgw_test_{uuid.uuid4().hex[:12]}"
    admin = with_database(server_dsn, "postgres")
    await _admin(admin, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield with_database(server_dsn, name)
    await _admin(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await create_pool(database_url, min_size=1, max_size=8)
    yield created
    await created.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> EventStore:
    return EventStore(pool)
