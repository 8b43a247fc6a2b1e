"""``serve --no-projector`` serves only; ``scim-gateway projector`` processes do the projecting."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp

from eventstore import EventStore
from eventstore.positions import tenant_heads
from gateway.http.keys import POOL, TENANCY
from gateway.keys import make_cipher
from gateway.settings import Settings
from gateway.signing_key import load_signing_key
from projections.audit import AuditProjection
from projections.rebuild import verify
from projections.runner import CatchUpRunner
from tests.conftest import ACTOR
from tests.reliability.processes import start_gateway, start_projector


async def _create_users(url: str, token: str, prefix: str, count: int) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async def create(n: int) -> None:
            async with session.post(f"{url}/scim/v2/Users", json={"userName": f"{prefix}{n}"}) as response:
                assert response.status == 201, await response.text()

        await asyncio.gather(*(create(n) for n in range(count)))


async def _caught_up(pool, name: str) -> bool:
    rows = await pool.fetch("SELECT tenant_id, tenant_position FROM projection_tenant_checkpoints WHERE name = $1",
                            name)
    return {r["tenant_id"]: r["tenant_position"] for r in rows} == await tenant_heads(pool)


async def _wait_for(pool, *names: str) -> None:
    """Every named projection's checkpoints reach every tenant's head (no sleeping on a guess)."""
    for _ in range(600):
        if all([await _caught_up(pool, name) for name in names]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{names} did not catch up")


async def test_two_projector_processes_beside_a_serving_one_project_every_event_once(client, database_url, tmp_path):
    # One key-encryption key and one signing key for every process, made before any starts.
    cipher, _ = make_cipher(Settings(data_dir=tmp_path))
    load_signing_key(Settings(data_dir=tmp_path))
    env = {"data_dir": str(tmp_path), "checkpoint_events": "7"}
    tenancy = client.app[TENANCY]
    tokens = []
    for name in ("left", "right", "middle"):
        await tenancy.create_tenant(name, "rfc", ACTOR)
        _, token = await tenancy.create_token(name, "bot@example.com", "load", ("scim:read", "scim:write"), ACTOR)
        tokens.append(token)
    pool = client.app[POOL]
    gateway = await start_gateway(database_url, None, "--no-projector", **env)
    projectors = []
    try:
        await _create_users(gateway.url, tokens[0], "before", 10)
        projectors = list(await asyncio.gather(start_projector(database_url, **env),
                                               start_projector(database_url, **env)))
        await asyncio.gather(*(_create_users(gateway.url, token, f"during{i}-", 40)
                               for i, token in enumerate(tokens)))
        await _wait_for(pool, "audit", "sealer")
        logs = [await projector.stop() for projector in projectors]
        assert [p.process.returncode for p in projectors] == [0, 0]
        for log in logs:
            events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
            assert events == ["projector_stopped"]  # after ``projector_started``, read by start_projector

        # Written with no projector running: the serving process leaves them to a projector.
        await _create_users(gateway.url, tokens[1], "after", 5)
        runner = CatchUpRunner(EventStore(pool, cipher=cipher), "audit", AuditProjection())
        behind = sum((await tenant_heads(pool)).values()) - sum((await runner.positions()).values())
        assert behind == 5
        assert await runner.catch_up() == 5
    finally:
        for projector in projectors:
            if projector.process.returncode is None:
                await projector.stop()
        await gateway.stop()
    assert gateway.process.returncode == 0
    # Every event sealed once, and the audit trail gapless, once per event, equal to a rebuild.
    assert await pool.fetchval("SELECT count(*) FROM event_seals") == await pool.fetchval(
        "SELECT count(*) FROM events WHERE position <= (SELECT max(position) FROM event_seals)")
    assert await pool.fetchval("SELECT count(DISTINCT event_id) = count(*) FROM event_seals")
    per_tenant = [r["seqs"] for r in await pool.fetch(
        "SELECT array_agg(seq ORDER BY seq) AS seqs FROM audit_trail GROUP BY tenant_id")]
    assert len(per_tenant) == 3 and all(seqs == list(range(1, len(seqs) + 1)) for seqs in per_tenant)
    assert await pool.fetchval("SELECT count(DISTINCT event_id) = count(*) FROM audit_trail")
    assert await verify(database_url, EventStore(pool, cipher=cipher), "audit") == []
    assert await pool.fetchval("SELECT count(*) FROM integrity_checkpoints") > 0


def test_the_projector_exits_1_when_the_database_is_gone():
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "projector", "--database-url",
                             "postgresql://nobody@127.0.0.1:1/none"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("scim-gateway: cannot use the database: ")
    assert len(result.stderr.splitlines()) == 1
