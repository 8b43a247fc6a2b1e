"""Bearer tokens, scopes and tenant isolation."""

import asyncio

import pytest

from gateway.http.keys import TENANCY
from tests.conftest import ACTOR
from tests.scim_client import Scim, entra_user

SCIM_ROUTES = [
    ("GET", "/Users"), ("POST", "/Users"), ("GET", "/Users/00000000-0000-0000-0000-000000000000"),
    ("PUT", "/Users/x"), ("PATCH", "/Users/x"), ("DELETE", "/Users/x"), ("POST", "/Users/.search"),
    ("GET", "/ServiceProviderConfig"), ("GET", "/ResourceTypes"), ("GET", "/Schemas"),
]


@pytest.mark.parametrize(("method", "path"), SCIM_ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic dXNlcjpwdw==", "Bearer scgw_nope", "Bearer x"])
async def test_every_route_rejects_missing_or_invalid_tokens(client, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.request(method, f"/scim/v2{path}", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.json(content_type=None)
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "401"


async def test_a_revoked_token_fails_at_once(bynder: Scim):
    response, _ = await bynder.get("/Users")
    assert response.status == 200
    tenancy = bynder.client.app[TENANCY]
    [token] = await tenancy.tokens("acme")
    await tenancy.revoke_token(str(token.token_id), ACTOR)
    response, _ = await bynder.get("/Users")
    assert response.status == 401


async def test_a_read_only_token_cannot_write(token_for):
    reader = await token_for("acme", scopes=("scim:read",))
    response, _ = await reader.get("/Users")
    assert response.status == 200
    response, body = await reader.post("/Users", entra_user())
    assert response.status == 403 and body["status"] == "403"


async def test_a_write_only_token_cannot_read(token_for):
    writer = await token_for("acme", scopes=("scim:write",))
    response, _ = await writer.get("/Users")
    assert response.status == 403


async def test_tenants_do_not_see_each_other(token_for):
    a = await token_for("tenant-a")
    b = await token_for("tenant-b")
    _, created = await a.post("/Users", entra_user())
    path = f"/Users/{created['id']}"
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        payload = {"Operations": [{"op": "replace", "path": "title", "value": "x"}]} if method == "PATCH" else (
            entra_user() if method == "PUT" else None)
        response, _ = await b.request(method, path, json=payload)
        assert response.status == 404, method
    _, listed = await b.get("/Users")
    assert listed["totalResults"] == 0
    # The same userName is free in another tenant.
    response, _ = await b.post("/Users", entra_user())
    assert response.status == 201
    _, still = await a.get(path)
    assert still["id"] == created["id"]


async def test_probes_need_no_token(client):
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200


async def test_a_revocation_in_one_process_reaches_another_processes_cache(aiohttp_client, database_url):
    from gateway.app import create_app
    from gateway.settings import Settings

    settings = Settings(access_log=False, background_projector=False, token_cache_seconds=600)
    first = await aiohttp_client(create_app(settings, database_url))
    second = await aiohttp_client(create_app(settings, database_url))
    await first.app[TENANCY].create_tenant("cached", "rfc", ACTOR)
    token_id, token = await first.app[TENANCY].create_token("cached", "bot@example.com", "t", ("scim:read",), ACTOR)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await second.get("/scim/v2/Users", headers=headers)).status == 200  # now cached in the second
    await first.app[TENANCY].revoke_token(str(token_id), ACTOR)
    for _ in range(100):  # the NOTIFY arrives asynchronously; wait for its effect, bounded
        if (await second.get("/scim/v2/Users", headers=headers)).status == 401:
            break
        await asyncio.sleep(0.02)
    assert (await second.get("/scim/v2/Users", headers=headers)).status == 401
