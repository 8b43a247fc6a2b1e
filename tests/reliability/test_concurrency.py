"""Concurrent writers: one winner per userName, no lost PATCH, two processes on one database."""

from __future__ import annotations

import asyncio
import random

import aiohttp

from domain.user import evolve
from gateway.http.keys import POOL, STORE, TENANCY
from projections import codec
from projections.users_view import state_from_row
from tests.conftest import ACTOR
from tests.reliability.processes import start_gateway
from tests.scim_client import Scim, entra_user


async def test_fifty_concurrent_creates_of_one_user_name_give_exactly_one_201(bynder: Scim):
    names = ["".join(random.choice((c.lower(), c.upper())) for c in "race@example.com") for _ in range(50)]
    results = await asyncio.gather(*(bynder.post("/Users", entra_user(n, f"ext-{i}")) for i, n in enumerate(names)))
    statuses = [response.status for response, _ in results]
    assert statuses.count(201) == 1 and statuses.count(409) == 49
    pool = bynder.client.app[POOL]
    assert await pool.fetchval("SELECT count(*) FROM users_view") == 1
    assert await pool.fetchval("SELECT count(*) FROM events WHERE type = 'UserCreated'") == 1


async def test_two_hundred_concurrent_patches_fold_to_the_final_state(rfc: Scim):
    _, user = await rfc.post("/Users", {"userName": "contended"})
    path = f"/Users/{user['id']}"
    results = await asyncio.gather(*(
        rfc.patch(path, {"Operations": [{"op": "add", "path": "phoneNumbers", "value": [{"value": str(i)}]}]})
        for i in range(200)))
    acknowledged = {str(i) for i, (response, _) in enumerate(results) if response.status == 200}
    assert len(acknowledged) == 200

    store, pool = rfc.client.app[STORE], rfc.client.app[POOL]
    tenant = await rfc.client.app[TENANCY].tenant("plain")
    events = await store.read_stream(tenant.tenant_id, f"user-{user['id']}")
    assert len(events) == 1 + len(acknowledged)
    assert [e.stream_version for e in events] == list(range(1, len(events) + 1))
    folded = None
    for envelope in events:
        folded = evolve(folded, codec.decode(envelope), envelope.recorded_at)
    view = state_from_row(await pool.fetchrow("SELECT * FROM users_view WHERE id = $1::uuid", user["id"]))
    assert folded == view
    assert {p["value"] for p in view.attributes["phoneNumbers"]} == acknowledged


async def test_two_gateway_processes_on_one_database(client, database_url):
    tenancy = client.app[TENANCY]
    await tenancy.create_tenant("shared", "rfc", ACTOR)
    _, token = await tenancy.create_token("shared", "bot@example.com", "load", ("scim:read", "scim:write"), ACTOR)
    first, second = await asyncio.gather(start_gateway(database_url), start_gateway(database_url))
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as session:
            async def create(gateway, name):
                async with session.post(f"{gateway.url}/scim/v2/Users", json={"userName": name}) as response:
                    return response.status, await response.json(content_type=None)

            # Both processes race to create the same 40 names, in different cases.
            names = [f"user{i}@example.com" for i in range(40)]
            created = await asyncio.gather(*(create(g, n if g is first else n.upper())
                                             for n in names for g in (first, second)))
            assert sorted(s for s, _ in created).count(201) == 40
            ids = [body["id"] for status, body in created if status == 201]

            async def patch(gateway, user_id, i):
                async with session.patch(f"{gateway.url}/scim/v2/Users/{user_id}", json={"Operations": [
                        {"op": "add", "path": "emails", "value": [{"value": f"{i}@x.example"}]}]}) as response:
                    return response.status

            statuses = await asyncio.gather(*(patch(first if i % 2 else second, ids[i % 10], i) for i in range(100)))
            assert set(statuses) == {200}
    finally:
        await asyncio.gather(first.stop(), second.stop())

    pool = client.app[POOL]
    assert await pool.fetchval("SELECT count(*) FROM users_view WHERE NOT deleted") == 40
    assert await pool.fetchval(
        "SELECT count(*) FROM (SELECT user_name_lower FROM users_view GROUP BY 1 HAVING count(*) > 1) d") == 0
    gaps = await pool.fetchval(
        "SELECT count(*) FROM (SELECT stream_id FROM events GROUP BY stream_id "
        "HAVING max(stream_version) <> count(*)) d")
    assert gaps == 0
    assert await pool.fetchval("SELECT sum(version) FROM users_view") == 40 + 100
