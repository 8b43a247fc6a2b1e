"""Secrets and personal data stay out of the logs; a runaway token is throttled."""

from __future__ import annotations

import aiohttp
import orjson

from gateway.app import create_app
from gateway.http.keys import TENANCY
from gateway.settings import Settings
from tests.conftest import ACTOR
from tests.reliability.processes import start_gateway
from tests.scim_client import entra_user


async def test_tokens_and_personal_data_never_reach_the_log(client, database_url):
    tenancy = client.app[TENANCY]
    await tenancy.create_tenant("logs", "bynder", ACTOR)
    _, token = await tenancy.create_token("logs", "bot@example.com", "t", ("scim:read", "scim:write"), ACTOR)
    gateway = await start_gateway(database_url, log_level="debug")
    secret_user = "very.private.person@example.com"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            async with session.post(f"{gateway.url}/scim/v2/Users", json=entra_user(secret_user, "ext-secret")) as r:
                assert r.status == 201
            async with session.get(f"{gateway.url}/scim/v2/Users",
                                   params={"filter": f'userName eq "{secret_user}"'}) as r:
                assert r.status == 200
            # A refusal whose request carried the name: the body is checked before the name is
            # looked up, so this is the missing schemas' 400, not the taken name's 409.
            async with session.post(f"{gateway.url}/scim/v2/Users", json={"userName": secret_user}) as r:
                refusal = await r.json(content_type=None)
                assert (r.status, refusal["scimType"]) == (400, "invalidValue"), refusal
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"{gateway.url}/scim/v2/Users",
                                     headers={"Authorization": f"Bearer {token}x"}) as r:
                assert r.status == 401
    finally:
        log = (await gateway.stop()).decode()
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) >= 4 and 401 in {r["status"] for r in requests}  # the access log is there
    # A query string is logged by its parameter names only: filters carry userNames.
    assert ["filter"] in [r.get("query_params") for r in requests]
    for secret in (token, token[5:], secret_user, "ext-secret", "Smith"):
        assert secret not in log, secret


async def test_a_token_over_its_rate_gets_429_with_retry_after(aiohttp_client, database_url):
    settings = Settings(access_log=False, background_projector=False, rate_limit_per_second=1, rate_limit_burst=3)
    client = await aiohttp_client(create_app(settings, database_url))
    await client.app[TENANCY].create_tenant("busy", "rfc", ACTOR)
    _, token = await client.app[TENANCY].create_token("busy", "bot@example.com", "t", ("scim:read",), ACTOR)
    _, other = await client.app[TENANCY].create_token("busy", "calm@example.com", "t", ("scim:read",), ACTOR)
    statuses = []
    for _ in range(4):
        response = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
        statuses.append(response.status)
    assert statuses == [200, 200, 200, 429]
    assert int(response.headers["Retry-After"]) >= 1
    body = await response.json(content_type=None)
    assert body["status"] == "429" and body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    # The limit is per token.
    assert (await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {other}"})).status == 200
