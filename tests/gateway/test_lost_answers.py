"""A create whose answer was lost must not strand the user: the identity provider's retry of
the same POST is answered 201 with the same resource, and nothing is appended twice."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.http.keys import AUDIT_RUNNER
from gateway.settings import Settings
from tests.conftest import _tenant_token
from tests.scim_client import Scim, entra_user

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def losing_first_answer() -> web.middleware:
    """Fault injection: the first POST is committed, then the connection is cut before the
    answer leaves (a crash between commit and answer, or Entra's 60-second timeout)."""
    lost: list[str] = []

    @web.middleware
    async def cut(request: web.Request, handler):
        response = await handler(request)
        if request.method == "POST" and not lost:
            lost.append(request.path)
            assert request.transport is not None
            request.transport.close()
        return response

    return cut


@pytest.fixture
async def app_client(database_url: str, aiohttp_client):
    async def make(window_hours: float = 24.0):
        settings = Settings(pool_min_size=1, pool_max_size=8, access_log=False, background_projector=False,
                            create_replay_window_hours=window_hours)
        app = create_app(settings, database_url)
        app.middlewares.append(losing_first_answer())
        return await aiohttp_client(app)

    return make


async def scim_for(client, profile: str = "rfc", tenant: str = "plain", owner: str = "scim-bot@example.com") -> Scim:
    return Scim(client, await _tenant_token(client, tenant, profile, owner=owner))


async def lose_the_answer(scim: Scim, path: str, body: dict, headers: dict | None = None) -> None:
    with pytest.raises(aiohttp.ClientError):
        await scim.post(path, body, headers=headers)


async def provisioning(scim: Scim, **params) -> list[dict]:
    await scim.client.app[AUDIT_RUNNER].catch_up()
    response = await scim.client.get("/api/2/audit/provisioning", params=params,
                                     headers={"Authorization": f"Bearer {scim.token}"})
    assert response.status == 200
    return (await response.json())["items"]


async def test_a_retried_create_whose_answer_was_lost_gets_201_with_the_same_user(app_client):
    scim = await scim_for(await app_client())
    await lose_the_answer(scim, "/Users", entra_user())

    response, user = await scim.post("/Users", entra_user())

    assert response.status == 201
    assert response.headers["Location"].endswith(f"/Users/{user['id']}")
    _, listed = await scim.get('/Users?filter=userName eq "Ann.Smith@Example.com"')
    assert listed["totalResults"] == 1 and listed["Resources"][0]["id"] == user["id"]
    assert user["meta"]["version"] == 'W/"1"'  # nothing appended to the user's stream


async def test_the_provisioning_log_shows_the_retry_as_a_replay_of_the_original(app_client):
    scim = await scim_for(await app_client())
    await lose_the_answer(scim, "/Users", entra_user())
    retry, user = await scim.post("/Users", entra_user())

    rows = await provisioning(scim, user=user["id"])
    assert [(r["action"], r["result"], r["status"]) for r in rows] == [
        ("create", "success", 201), ("create", "replayed", 201)]
    original = rows[0]["request_id"]
    assert original in rows[1]["detail"] and rows[1]["request_id"] == retry.headers["X-Gateway-Request-Id"]


async def test_a_retry_with_a_different_body_is_409(app_client):
    scim = await scim_for(await app_client())
    await lose_the_answer(scim, "/Users", entra_user())
    response, error = await scim.post("/Users", {**entra_user(), "displayName": "Someone Else"})
    assert (response.status, error["scimType"]) == (409, "uniqueness")


async def test_the_same_body_from_another_token_is_409(app_client):
    client = await app_client()
    scim = await scim_for(client)
    other = await scim_for(client, owner="other-bot@example.com")
    await lose_the_answer(scim, "/Users", entra_user())
    response, error = await other.post("/Users", entra_user())
    assert (response.status, error["scimType"]) == (409, "uniqueness")


async def test_a_retry_after_the_user_changed_is_409(app_client):
    scim = await scim_for(await app_client())
    await lose_the_answer(scim, "/Users", entra_user())
    _, listed = await scim.get('/Users?filter=userName eq "Ann.Smith@Example.com"')
    user_id = listed["Resources"][0]["id"]
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "CEO"}]}
    assert (await scim.patch(f"/Users/{user_id}", patch))[0].status == 200

    response, error = await scim.post("/Users", entra_user())
    assert (response.status, error["scimType"]) == (409, "uniqueness")


async def test_a_retry_outside_the_window_is_409(app_client):
    scim = await scim_for(await app_client(window_hours=0))
    await lose_the_answer(scim, "/Users", entra_user())
    response, error = await scim.post("/Users", entra_user())
    assert (response.status, error["scimType"]) == (409, "uniqueness")


async def test_key_order_and_formatting_of_the_body_do_not_count(app_client):
    scim = await scim_for(await app_client())
    await lose_the_answer(scim, "/Users", entra_user())
    reordered = dict(reversed(list(entra_user().items())))
    response, _ = await scim.post("/Users", reordered)
    assert response.status == 201


async def test_an_idempotency_key_replays_the_create_it_was_sent_with(app_client):
    scim = await scim_for(await app_client())
    key = {"Idempotency-Key": "8e03978e-40d5-43e8-bc93-6894a57f9324"}
    await lose_the_answer(scim, "/Users", entra_user(), key)

    response, user = await scim.post("/Users", entra_user(), headers=key)
    reused, error = await scim.post("/Users", entra_user("bob@example.com", "bob"), headers=key)

    assert response.status == 201 and user["userName"] == "Ann.Smith@Example.com"
    assert (reused.status, error["status"]) == (422, "422")
    rows = await provisioning(scim, result="replayed")
    assert "idempotency_key" in rows[0]["detail"]


async def test_an_idempotency_key_is_the_tokens_own(app_client):
    client = await app_client()
    scim = await scim_for(client)
    other = await scim_for(client, owner="other-bot@example.com")
    key = {"Idempotency-Key": "shared-key"}
    await lose_the_answer(scim, "/Users", entra_user(), key)
    response, user = await other.post("/Users", entra_user("bob@example.com", "bob"), headers=key)
    assert (response.status, user["userName"]) == (201, "bob@example.com")


async def test_a_retried_group_create_gets_201_with_the_same_group_and_no_duplicate(app_client):
    scim = await scim_for(await app_client())
    await lose_the_answer(scim, "/Groups", {"displayName": "Engineering", "externalId": "eng"})

    response, group = await scim.post("/Groups", {"displayName": "Engineering", "externalId": "eng"})
    different, other = await scim.post("/Groups", {"displayName": "Engineering", "externalId": "eng-2"})

    assert response.status == 201 and group["meta"]["version"] == 'W/"1"'
    assert different.status == 201 and other["id"] != group["id"]
    _, listed = await scim.get('/Groups?filter=displayName eq "Engineering"')
    assert sorted(g["id"] for g in listed["Resources"]) == sorted([group["id"], other["id"]])
