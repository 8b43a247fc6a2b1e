"""Every write request that reaches a principal is in the provisioning log, whatever refused it:
scope, body limit, route, parser, policy. 401 and 429 deliberately are not (no one to attribute
a 401 to; 429 exists to shed load): they show in the metrics and the access log."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from domain.tenant import SCOPES
from gateway.app import create_app
from gateway.http.keys import AUDIT_RUNNER, STORE, TENANCY
from gateway.replay import Replay
from gateway.settings import Settings
from tests.conftest import _tenant_token
from tests.scim_client import Scim, entra_user

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def provisioning(auditor: Scim, **params) -> list[dict]:
    await auditor.client.app[AUDIT_RUNNER].catch_up()
    response = await auditor.client.get("/api/2/audit/provisioning", params=params,
                                        headers={"Authorization": f"Bearer {auditor.token}"})
    assert response.status == 200
    return (await response.json())["items"]


async def failures(auditor: Scim) -> list[tuple]:
    return [(r["method"], r["status"], r["scim_type"], r["actor_owner"])
            for r in await provisioning(auditor, result="failure")]


async def test_a_read_only_tokens_patch_is_403_and_on_record(bynder: Scim, token_for):
    _, user = await bynder.post("/Users", entra_user())
    reader = await token_for("acme", scopes=("scim:read",), owner="reader@example.com")
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}

    response, error = await reader.patch(f"/Users/{user['id']}", patch)

    assert (response.status, error["status"]) == (403, "403")
    [row] = await provisioning(bynder, result="failure")
    assert (row["method"], row["status"], row["target_id"], row["actor_owner"]) == (
        "PATCH", 403, user["id"], "reader@example.com")
    assert "scim:write" in row["detail"]


async def test_the_403_is_in_replay_token(bynder: Scim, token_for, client: TestClient):
    reader = await token_for("acme", scopes=("scim:read",), owner="reader@example.com")
    await reader.delete("/Users/00000000-0000-0000-0000-000000000001")
    tokens = await client.app[TENANCY].tokens("acme")
    reader = next(t for t in tokens if t.owner == "reader@example.com")

    tenant = await client.app[TENANCY].tenant("acme")
    _, entries = await Replay(client.app[STORE]).token(tenant.tenant_id, str(reader.token_id))

    assert [(e.action, e.detail.split(" -> ")[1][:3]) for e in entries] == [("refused", "403")]


async def test_a_body_over_the_limit_is_413_and_on_record(database_url: str, aiohttp_client):
    settings = Settings(pool_min_size=1, pool_max_size=4, access_log=False, background_projector=False,
                        max_body_bytes=2048)
    client = await aiohttp_client(create_app(settings, database_url))
    scim = Scim(client, await _tenant_token(client, "acme", "bynder"))

    response, error = await scim.post("/Users", {**entra_user(), "displayName": "x" * 4096})

    assert (response.status, error["status"]) == (413, "413")
    assert await failures(scim) == [("POST", 413, None, "scim-bot@example.com")]


async def test_unparseable_bodies_unknown_routes_and_wrong_methods_are_on_record(bynder: Scim):
    bad_json = await bynder.client.post("/scim/v2/Users", data=b"{not json",
                                        headers={**bynder.headers})
    unknown, _ = await bynder.post("/Widgets", {"a": 1})
    wrong_method, _ = await bynder.request("PUT", "/Users")

    assert (bad_json.status, unknown.status, wrong_method.status) == (400, 404, 405)
    assert await failures(bynder) == [
        ("POST", 400, "invalidSyntax", "scim-bot@example.com"),
        ("POST", 404, None, "scim-bot@example.com"),
        ("PUT", 405, None, "scim-bot@example.com")]


async def test_policy_and_precondition_refusals_are_on_record_once(bynder: Scim):
    _, user = await bynder.post("/Users", entra_user())
    await bynder.post("/Users", {"userName": "no-names@example.com"})  # bynder requires names
    await bynder.put(f"/Users/{user['id']}", entra_user(), headers={"If-Match": 'W/"99"'})

    assert await failures(bynder) == [
        ("POST", 400, "invalidValue", "scim-bot@example.com"),
        ("PUT", 412, None, "scim-bot@example.com")]


async def test_reads_and_searches_are_not_write_records(bynder: Scim):
    await bynder.get("/Users/00000000-0000-0000-0000-000000000001")
    await bynder.post("/Users/.search", {"filter": "userName eq"})
    assert await provisioning(bynder) == []


async def test_401_and_429_are_deliberately_not_recorded(database_url: str, aiohttp_client):
    settings = Settings(pool_min_size=1, pool_max_size=4, access_log=False, background_projector=False,
                        rate_limit_per_second=0.001, rate_limit_burst=1)
    client = await aiohttp_client(create_app(settings, database_url))
    scim = Scim(client, await _tenant_token(client, "acme", "bynder", scopes=SCOPES))
    anonymous = Scim(client, "scgw_not-a-real-token")

    unauthenticated, _ = await anonymous.post("/Users", entra_user())
    first, _ = await scim.post("/Users", {"userName": "x"})  # 400, recorded; uses the only token
    limited, _ = await scim.post("/Users", entra_user())

    assert (unauthenticated.status, first.status, limited.status) == (401, 400, 429)
    # Read from the log itself: the export API would be rate limited for this token too.
    connection = await asyncpg.connect(database_url)
    try:
        statuses = await connection.fetch(
            "SELECT (data->>'status')::int FROM events WHERE type = 'RequestRejected' ORDER BY position")
    finally:
        await connection.close()
    assert [row[0] for row in statuses] == [400]
