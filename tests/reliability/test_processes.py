"""Process lifecycle: graceful SIGTERM, several workers on one port, projector failover."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import aiohttp
import psutil

from eventstore.positions import tenant_heads
from gateway.http.keys import POOL, STORE, TENANCY
from projections.rebuild import verify
from tests.conftest import ACTOR
from tests.reliability.processes import start_gateway


async def _token(client, tenant: str) -> str:
    await client.app[TENANCY].create_tenant(tenant, "rfc", ACTOR)
    _, token = await client.app[TENANCY].create_token(tenant, "bot@example.com", "load", ("scim:read", "scim:write"),
                                                      ACTOR)
    return token


async def _load(url: str, token: str, writers: int, started: asyncio.Event, prefix: str,
                stop: asyncio.Event | None = None) -> tuple[int, int]:
    """Create users until the server goes away (or ``stop``); returns (acknowledged, failed)."""
    acknowledged = failed = 0

    async def writer(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal acknowledged, failed
        for i in range(100_000):
            if stop is not None and stop.is_set():
                return
            try:
                async with session.post(f"{url}/scim/v2/Users", json={"userName": f"{prefix}{n}-{i}"}) as response:
                    await response.read()
                    if response.status == 201:
                        acknowledged += 1
                        if acknowledged >= 60:
                            started.set()
                    else:
                        failed += 1
            except (TimeoutError, aiohttp.ClientError):
                failed += 1
                return

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"},
                                     timeout=aiohttp.ClientTimeout(total=20)) as session:
        await asyncio.gather(*(writer(session, n) for n in range(writers)))
    return acknowledged, failed


async def test_sigterm_mid_load_finishes_in_flight_requests(client, database_url):
    token = await _token(client, "graceful")
    gateway = await start_gateway(database_url)
    started = asyncio.Event()
    load = asyncio.create_task(_load(gateway.url, token, 8, started, "g"))
    await asyncio.wait_for(started.wait(), 60)
    gateway.process.send_signal(signal.SIGTERM)
    acknowledged, _ = await asyncio.wait_for(load, 60)
    await gateway.process.wait()
    assert gateway.process.returncode == 0
    # Every write that committed got its answer: none was cut between COMMIT and response.
    assert await client.app[POOL].fetchval("SELECT count(*) FROM users_view") == acknowledged


async def test_workers_share_the_port_and_a_dead_worker_is_replaced(client, database_url):
    token = await _token(client, "workers")
    gateway = await start_gateway(database_url, None, "--workers", "2")
    try:
        children = psutil.Process(gateway.process.pid).children()
        assert len(children) == 2
        children[0].kill()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            statuses = []
            for i in range(40):
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with session.post(f"{gateway.url}/scim/v2/Users", json={"userName": f"w{i}"}) as response:
                        statuses.append(response.status)
            assert statuses.count(201) >= 30
        for _ in range(100):
            if len([c for c in psutil.Process(gateway.process.pid).children() if c.is_running()]) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(psutil.Process(gateway.process.pid).children()) == 2
    finally:
        await gateway.stop()
    assert gateway.process.returncode == 0


async def test_the_projector_fails_over_without_skipping_or_repeating(client, database_url):
    token = await _token(client, "failover")
    first, second = await asyncio.gather(start_gateway(database_url), start_gateway(database_url))
    try:
        started = asyncio.Event()
        load = asyncio.create_task(_load(first.url, token, 4, started, "a"))
        await asyncio.wait_for(started.wait(), 60)
        await first.kill()  # whichever held the projector's checkpoint mid-batch, it is gone now
        await load
        later, stop = asyncio.Event(), asyncio.Event()
        second_load = asyncio.create_task(_load(second.url, token, 4, later, "b", stop))
        await asyncio.wait_for(later.wait(), 60)
        stop.set()
        acknowledged, failed = await second_load
        assert acknowledged >= 60 and failed == 0
        await _wait_for_projector(client)
    finally:
        await second.stop()
        if first.process.returncode is None:
            await first.stop()
    pool = client.app[POOL]
    # Gapless per tenant: each tenant's export cursor counts its own rows.
    per_tenant = [r["seqs"] for r in await pool.fetch(
        "SELECT array_agg(seq ORDER BY seq) AS seqs FROM audit_trail GROUP BY tenant_id")]
    assert per_tenant and all(seqs == list(range(1, len(seqs) + 1)) for seqs in per_tenant)
    assert await pool.fetchval("SELECT count(DISTINCT event_id) = count(*) FROM audit_trail")
    assert await verify(database_url, client.app[STORE], "audit") == []


async def _wait_for_projector(client) -> None:
    """The surviving process's projector reaches the log head (no sleeping on a guess)."""
    pool = client.app[POOL]
    target = await tenant_heads(pool)
    for _ in range(300):
        rows = await pool.fetch(
            "SELECT tenant_id, tenant_position FROM projection_tenant_checkpoints WHERE name = 'audit'")
        if {r["tenant_id"]: r["tenant_position"] for r in rows} == target:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("projector did not catch up")
