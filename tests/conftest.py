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
from aiohttp.test_utils import TestClient

from domain.tenant import SCOPES
from eventstore import EventStore
from eventstore.embedded import start_embedded
from eventstore.pool import create_pool
from gateway.app import create_app
from gateway.database import migrate_database
from gateway.http.keys import TENANCY
from gateway.settings import Settings
from tests.scim_client import Scim

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
    dsn = start_embedded(Path(tmp_path_factory.mktemp("embedded")))
    # A throwaway server: durability buys the tests nothing (crash-safety tests that need it
    # start their own), and skipping fsync makes creating a database per test cheap.
    asyncio.run(_admin(dsn, "ALTER SYSTEM SET fsync = off"))
    asyncio.run(_admin(dsn, "ALTER SYSTEM SET synchronous_commit = off"))
    asyncio.run(_admin(dsn, "SELECT pg_reload_conf()"))
    return dsn


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


# An app on the test's database, with tenants of both profiles and their tokens -----------

ACTOR = {"token_id": "", "owner": "tests", "token_description": "test fixture"}


@pytest.fixture
def settings() -> Settings:
    # The tests drive the audit projector themselves (the export API catches it up too).
    return Settings(pool_min_size=1, pool_max_size=8, access_log=False, background_projector=False)


@pytest.fixture
async def client(database_url: str, settings: Settings, aiohttp_client) -> TestClient:
    return await aiohttp_client(create_app(settings, database_url))


async def _tenant_token(client: TestClient, name: str, profile: str, scopes=SCOPES,
                        owner: str = "scim-bot@example.com") -> str:
    tenancy = client.app[TENANCY]
    if name not in {t.name for t in await tenancy.tenants()}:
        await tenancy.create_tenant(name, profile, ACTOR)
    _, secret = await tenancy.create_token(name, owner, "SCIM Token", tuple(scopes), ACTOR)
    return secret


@pytest.fixture
async def bynder(client: TestClient) -> Scim:
    return Scim(client, await _tenant_token(client, "acme", "bynder"))


@pytest.fixture
async def rfc(client: TestClient) -> Scim:
    return Scim(client, await _tenant_token(client, "plain", "rfc"))


@pytest.fixture
def token_for(client: TestClient):
    async def make(tenant: str, profile: str = "bynder", scopes=SCOPES, owner="scim-bot@example.com") -> Scim:
        return Scim(client, await _tenant_token(client, tenant, profile, scopes, owner))

    return make
