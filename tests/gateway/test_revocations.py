"""The revocation listener: reconnects after its connection drops, and while it is down the
token cache is bypassed, so a revocation made elsewhere is refused on the very next request
(issue 12, item 6)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from eventstore import EventStore
from eventstore.pool import create_pool
from gateway.app import create_app
from gateway.http.keys import REVOCATIONS, TENANCY
from gateway.settings import Settings
from gateway.tenancy import Tenancy
from projections.tenancy import TenancyProjection
from tests.conftest import ACTOR

# The listener's session: its last statement is the LISTEN.
_TERMINATE_LISTENER = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND query LIKE 'LISTEN %'
"""


async def _until(condition, what: str, seconds: float = 10.0) -> None:
    """Poll a condition the listener reaches on its own (bounded; never a bare sleep)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting until {what}")


async def _terminate_listener(database_url: str) -> None:
    admin = await asyncpg.connect(database_url)
    try:
        assert await admin.fetchval(_TERMINATE_LISTENER) == 1
    finally:
        await admin.close()


@pytest.fixture
async def other_process(database_url: str):
    """The tenancy service as another process (the CLI) has it: its own pool, its own cache."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    yield Tenancy(EventStore(pool, [TenancyProjection()]))
    await pool.close()


async def _cached_token(aiohttp_client, database_url: str, retry_seconds: float):
    settings = Settings(access_log=False, background_projector=False, token_cache_seconds=600,
                        revocation_retry_seconds=retry_seconds)
    client = await aiohttp_client(create_app(settings, database_url))
    await client.app[TENANCY].create_tenant("cached", "rfc", ACTOR)
    token_id, secret = await client.app[TENANCY].create_token("cached", "bot@example.com", "t", ("scim:read",), ACTOR)
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/scim/v2/Users", headers=headers)).status == 200  # cached from now on
    return client, str(token_id), headers


async def test_while_the_listener_is_down_a_revoked_token_fails_on_the_very_next_request(
        aiohttp_client, database_url, other_process):
    # A long first retry keeps the listener down for the whole test.
    client, token_id, headers = await _cached_token(aiohttp_client, database_url, retry_seconds=600)
    tenancy = client.app[TENANCY]
    assert tenancy.listening

    await _terminate_listener(database_url)
    await _until(lambda: not tenancy.listening, "the listener noticed its connection is gone")
    # Served from the database now, and not cached: nothing would clear the entry.
    assert (await client.get("/scim/v2/Users", headers=headers)).status == 200
    await other_process.revoke_token(token_id, ACTOR)  # its NOTIFY reaches nobody

    assert (await client.get("/scim/v2/Users", headers=headers)).status == 401


async def test_the_listener_reconnects_and_the_cache_serves_again(aiohttp_client, database_url, other_process):
    client, token_id, headers = await _cached_token(aiohttp_client, database_url, retry_seconds=0.05)
    tenancy, listener = client.app[TENANCY], client.app[REVOCATIONS]

    await _terminate_listener(database_url)
    await _until(lambda: listener.reconnects == 1 and tenancy.listening, "the listener reconnected")
    assert (await client.get("/scim/v2/Users", headers=headers)).status == 200

    await other_process.revoke_token(token_id, ACTOR)
    await _until(lambda: not tenancy._cache, "the revocation's NOTIFY cleared the cache")
    assert (await client.get("/scim/v2/Users", headers=headers)).status == 401


async def test_a_revocation_while_the_listener_was_down_is_not_served_from_the_cache_after_it_reconnects(
        aiohttp_client, database_url, other_process):
    client, token_id, headers = await _cached_token(aiohttp_client, database_url, retry_seconds=0.2)
    tenancy, listener = client.app[TENANCY], client.app[REVOCATIONS]

    await _terminate_listener(database_url)
    await _until(lambda: not tenancy.listening, "the listener noticed its connection is gone")
    assert (await client.get("/scim/v2/Users", headers=headers)).status == 200
    await other_process.revoke_token(token_id, ACTOR)
    await _until(lambda: listener.reconnects == 1, "the listener reconnected")

    assert (await client.get("/scim/v2/Users", headers=headers)).status == 401


async def test_a_cache_nobody_listens_for_is_neither_read_nor_filled(pool):
    tenancy = Tenancy(EventStore(pool, [TenancyProjection()]), cache_seconds=600)
    await tenancy.create_tenant("t", "rfc", ACTOR)
    _, secret = await tenancy.create_token("t", "bot@example.com", "t", ("scim:read",), ACTOR)

    assert not tenancy.listening
    assert await tenancy.authenticate(secret) is not None
    assert not tenancy._cache
