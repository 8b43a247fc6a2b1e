"""A caller's X-Request-Id is a correlation field, never a key: the same id from two callers,
or two tenants, or twice from one, changes nothing about how their writes are stored."""

import asyncio
import uuid

from tests.scim_client import Scim

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CALLER_ID = "0b7f3c1e-5a6d-4e2f-9c8b-7a6d5e4f3c2b"


def caller(request_id: str = CALLER_ID) -> dict[str, str]:
    return {"X-Request-Id": request_id}


async def provisioning(scim: Scim, **params) -> list[dict]:
    response = await scim.client.get("/api/2/audit/provisioning", params=params,
                                     headers={"Authorization": f"Bearer {scim.token}"})
    assert response.status == 200, await response.text()
    return (await response.json())["items"]


async def test_one_caller_id_on_writes_of_two_tenants_creates_every_user(token_for):
    a = await token_for("tenant-a", "rfc")
    b = await token_for("tenant-b", "rfc")

    first, one = await a.post("/Users", {"userName": "one@a.example"}, headers=caller())
    second, two = await a.post("/Users", {"userName": "two@a.example"}, headers=caller())
    third, three = await b.post("/Users", {"userName": "three@b.example"}, headers=caller())

    assert (first.status, second.status, third.status) == (201, 201, 201)
    _, listed_a = await a.get("/Users")
    _, listed_b = await b.get("/Users")
    assert sorted(u["userName"] for u in listed_a["Resources"]) == ["one@a.example", "two@a.example"]
    assert [u["userName"] for u in listed_b["Resources"]] == ["three@b.example"]
    assert len({one["id"], two["id"], three["id"]}) == 3


async def test_the_callers_id_is_echoed_and_ours_is_always_given(rfc: Scim):
    response, _ = await rfc.post("/Users", {"userName": "echo@a.example"}, headers=caller())
    ours = response.headers["X-Gateway-Request-Id"]
    assert response.headers["X-Request-Id"] == CALLER_ID
    assert uuid.UUID(ours) and ours != CALLER_ID

    plain, _ = await rfc.get("/Users")
    assert plain.headers["X-Request-Id"] == plain.headers["X-Gateway-Request-Id"]


async def test_the_same_caller_id_on_patch_refusal_and_group_writes_is_no_conflict(rfc: Scim):
    _, user = await rfc.post("/Users", {"userName": "pat@a.example"}, headers=caller())
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "CEO"}]}

    patched, body = await rfc.patch(f"/Users/{user['id']}", patch, headers=caller())
    refused, error = await rfc.post("/Users", {"userName": "pat@a.example"}, headers=caller())
    refused_again, _ = await rfc.post("/Users", {"userName": "PAT@a.example"}, headers=caller())
    group, created = await rfc.post("/Groups", {"displayName": "Staff"}, headers=caller())
    renamed, _ = await rfc.patch(
        f"/Groups/{created['id']}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "All"}]},
        headers={**caller(), "Prefer": "return=representation"})

    assert (patched.status, body["title"]) == (200, "CEO")
    # The user changed since its create: a repeated create is a conflict, not a retry.
    assert (refused.status, error["scimType"]) == (409, "uniqueness")
    assert refused_again.status == 409
    assert (group.status, renamed.status) == (201, 200)
    rows = await provisioning(rfc, request_id=CALLER_ID)
    assert [(r["action"], r["result"], r["status"]) for r in rows] == [
        ("create", "success", 201), ("update", "success", 200), ("create", "failure", 409),
        ("create", "failure", 409), ("create", "success", 201), ("update", "success", 200)]
    assert all(r["client_request_id"] == CALLER_ID for r in rows)
    assert len({r["request_id"] for r in rows}) == len(rows)


async def test_two_tenants_racing_with_one_caller_id_all_succeed(token_for):
    a = await token_for("race-a", "rfc")
    b = await token_for("race-b", "rfc")
    results = await asyncio.gather(*(
        scim.post("/Users", {"userName": f"u{i}@race.example"}, headers=caller())
        for i in range(10) for scim in (a, b)))
    assert [r.status for r, _ in results] == [201] * 20
    for scim in (a, b):
        _, listed = await scim.get("/Users")
        assert listed["totalResults"] == 10


async def test_a_request_is_found_by_the_callers_id_within_its_own_tenant_only(token_for):
    a = await token_for("find-a", "rfc")
    b = await token_for("find-b", "rfc")
    await a.post("/Users", {"userName": "mine@a.example"}, headers=caller("shared-id-1"))
    await b.post("/Users", {"userName": "theirs@b.example"}, headers=caller("shared-id-1"))

    rows_a = await provisioning(a, request_id="shared-id-1")
    rows_b = await provisioning(b, request_id="shared-id-1")
    assert [r["target_user_name"] for r in rows_a] == ["mine@a.example"]
    assert [r["target_user_name"] for r in rows_b] == ["theirs@b.example"]
    # Our own id finds the same row.
    assert await provisioning(a, request_id=rows_a[0]["request_id"]) == rows_a


async def test_replay_timeline_shows_both_request_ids(rfc: Scim):
    _, user = await rfc.post("/Users", {"userName": "tl@a.example"}, headers=caller("corr-77"))
    response = await rfc.client.get(f"/api/2/audit/users/{user['id']}/timeline",
                                    headers={"Authorization": f"Bearer {rfc.token}"})
    [entry] = (await response.json())["items"]
    assert entry["client_request_id"] == "corr-77"
    assert uuid.UUID(entry["request_id"])
