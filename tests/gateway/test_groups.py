"""Groups on the rfc profile, with the request shapes Microsoft Entra ID sends."""

from __future__ import annotations

import uuid

import pytest

from domain.events import GroupCreated, MembersAdded
from gateway.http.keys import POOL, STORE, TENANCY
from projections.codec import encode_all
from projections.groups_view import GroupsView
from tests.conftest import ACTOR
from tests.scim_client import Scim

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def ops(*operations):
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def users(scim: Scim, count: int) -> list[str]:
    ids = []
    for n in range(count):
        _, user = await scim.post("/Users", {"userName": f"member{n}-{uuid.uuid4().hex[:6]}"})
        ids.append(user["id"])
    return ids


async def members_of(scim: Scim, group_id: str) -> list[str]:
    _, group = await scim.get(f"/Groups/{group_id}")
    return sorted(m["value"] for m in group.get("members", []))


async def test_create_get_list_and_filter(rfc: Scim):
    ids = await users(rfc, 2)
    response, group = await rfc.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                                "displayName": "Engineering", "externalId": "eng",
                                                "members": [{"value": ids[0]}]})
    assert response.status == 201 and response.headers["Location"].endswith(group["id"])
    assert group["meta"]["resourceType"] == "Group" and [m["value"] for m in group["members"]] == [ids[0]]
    for query in ('displayName eq "engineering"', 'externalId eq "eng"', f'members.value eq "{ids[0]}"',
                  f'members[value eq "{ids[0]}"]'):
        _, found = await rfc.get(f"/Groups?filter={query}")
        assert [g["id"] for g in found["Resources"]] == [group["id"]], query
    _, none = await rfc.get(f'/Groups?filter=members.value eq "{ids[1]}"')
    assert none["totalResults"] == 0


async def test_entra_add_and_remove_members_shapes(rfc: Scim):
    ids = await users(rfc, 4)
    _, group = await rfc.post("/Groups", {"displayName": "Team"})
    path = f"/Groups/{group['id']}"
    response, _ = await rfc.patch(path, ops({"op": "Add", "path": "members",
                                             "value": [{"value": ids[0]}, {"value": ids[1]}, {"value": ids[2]}]}))
    assert response.status == 204
    assert await members_of(rfc, group["id"]) == sorted(ids[:3])
    await rfc.patch(path, ops({"op": "Remove", "path": "members", "value": [{"value": ids[0]}]}))
    await rfc.patch(path, ops({"op": "remove", "path": f'members[value eq "{ids[1]}"]'}))
    assert await members_of(rfc, group["id"]) == [ids[2]]
    await rfc.patch(path, ops({"op": "REMOVE", "path": "members"}))
    assert await members_of(rfc, group["id"]) == []


async def test_replace_display_name_in_any_case_and_pathless(rfc: Scim):
    _, group = await rfc.post("/Groups", {"displayName": "Old"})
    path = f"/Groups/{group['id']}"
    response, _ = await rfc.patch(path, ops({"op": "Replace", "path": "displayName", "value": "New"}))
    assert response.status == 204
    _, renamed = await rfc.get(path)
    assert renamed["displayName"] == "New"
    _, again = await rfc.patch(path, ops({"op": "replace", "value": {"displayName": "Newer", "externalId": "x"}}),
                               headers={"Prefer": "return=representation"})
    assert again["displayName"] == "Newer" and again["externalId"] == "x"


async def test_adding_an_unknown_member_is_invalid_value(rfc: Scim):
    _, group = await rfc.post("/Groups", {"displayName": "G"})
    response, body = await rfc.patch(f"/Groups/{group['id']}", ops(
        {"op": "add", "path": "members", "value": [{"value": str(uuid.uuid4())}]}))
    assert response.status == 400 and body["scimType"] == "invalidValue"


async def test_adding_a_present_member_is_a_no_op(rfc: Scim):
    [member] = await users(rfc, 1)
    _, group = await rfc.post("/Groups", {"displayName": "G", "members": [{"value": member}]})
    response, _ = await rfc.patch(f"/Groups/{group['id']}", ops(
        {"op": "add", "path": "members", "value": [{"value": member}]}))
    assert response.status == 204 and response.headers["ETag"] == group["meta"]["version"]


async def test_put_replaces_members(rfc: Scim):
    ids = await users(rfc, 3)
    _, group = await rfc.post("/Groups", {"displayName": "G", "members": [{"value": ids[0]}, {"value": ids[1]}]})
    response, replaced = await rfc.put(f"/Groups/{group['id']}", {"displayName": "G2",
                                                                   "members": [{"value": ids[1]}, {"value": ids[2]}]})
    assert response.status == 200 and replaced["displayName"] == "G2"
    assert await members_of(rfc, group["id"]) == sorted(ids[1:])


async def test_delete_then_404(rfc: Scim):
    _, group = await rfc.post("/Groups", {"displayName": "G"})
    response, _ = await rfc.delete(f"/Groups/{group['id']}")
    assert response.status == 204
    response, _ = await rfc.get(f"/Groups/{group['id']}")
    assert response.status == 404


async def test_users_show_their_groups_read_only(rfc: Scim):
    [member] = await users(rfc, 1)
    _, group = await rfc.post("/Groups", {"displayName": "Readers", "members": [{"value": member}]})
    _, user = await rfc.get(f"/Users/{member}")
    assert user["groups"][0]["value"] == group["id"] and user["groups"][0]["display"] == "Readers"
    response, error = await rfc.patch(f"/Users/{member}", ops({"op": "add", "path": "groups", "value": []}))
    assert response.status == 400 and error["scimType"] == "mutability"


async def test_bynder_profile_offers_no_groups(bynder: Scim):
    response, body = await bynder.get("/Groups")
    assert response.status == 404 and body["status"] == "404"
    _, types = await bynder.get("/ResourceTypes")
    assert [t["id"] for t in types["Resources"]] == ["User"]


async def test_rfc_profile_advertises_groups(rfc: Scim):
    _, types = await rfc.get("/ResourceTypes")
    assert [t["id"] for t in types["Resources"]] == ["User", "Group"]
    _, schema = await rfc.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group")
    assert schema["name"] == "Group"


async def test_group_changes_are_in_the_audit_trail_and_provisioning_log(rfc: Scim):
    ids = await users(rfc, 1)
    _, group = await rfc.post("/Groups", {"displayName": "Audited", "members": [{"value": ids[0]}]})
    await rfc.patch(f"/Groups/{group['id']}", ops({"op": "remove", "path": "members"}))
    response = await rfc.client.get("/api/2/audit/events", headers={"Authorization": f"Bearer {rfc.token}"})
    actions = [i["action"] for i in (await response.json())["items"]]
    assert ["group_create", "members_added", "members_removed"] == [a for a in actions if "group" in a or "members" in a]
    response = await rfc.client.get("/api/2/audit/provisioning", headers={"Authorization": f"Bearer {rfc.token}"})
    rows = [i for i in (await response.json())["items"] if i["target_id"] == group["id"]]
    assert [(r["action"], r["changed_attributes"]) for r in rows] == [("create", ["members"]), ("update", ["members"])]


async def test_group_patch_answers_204_by_default_as_microsoft_asks(rfc: Scim):
    _, group = await rfc.post("/Groups", {"displayName": "P"})
    response, body = await rfc.patch(f"/Groups/{group['id']}", ops({"op": "replace", "path": "displayName", "value": "Q"}))
    assert response.status == 204 and body is None
    assert response.headers["ETag"] != group["meta"]["version"]
    response, _ = await rfc.patch(f"/Groups/{group['id']}", ops({"op": "replace", "path": "displayName", "value": "R"}),
                                  headers={"Prefer": "return=minimal"})
    assert response.status == 204


async def test_group_patch_answers_the_resource_when_the_client_asks_for_it(rfc: Scim):
    [member] = await users(rfc, 1)
    _, group = await rfc.post("/Groups", {"displayName": "P", "members": [{"value": member}]})
    path = f"/Groups/{group['id']}"
    response, body = await rfc.patch(path, ops({"op": "replace", "path": "displayName", "value": "Q"}),
                                     headers={"Prefer": "return=representation"})
    assert response.status == 200 and body["displayName"] == "Q" and [m["value"] for m in body["members"]] == [member]
    response, body = await rfc.patch(path + "?excludedAttributes=members",
                                     ops({"op": "replace", "path": "displayName", "value": "R"}))
    assert response.status == 200 and body["displayName"] == "R" and "members" not in body
    response, body = await rfc.patch(path + "?attributes=displayName",
                                     ops({"op": "replace", "path": "displayName", "value": "S"}))
    assert response.status == 200
    assert body == {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": group["id"], "displayName": "S"}


async def test_group_patch_answer_follows_the_tenant_setting(rfc: Scim):
    await rfc.client.app[TENANCY].set_tenant("plain", {"group_patch_response": "resource"}, ACTOR)
    _, group = await rfc.post("/Groups", {"displayName": "P"})
    response, body = await rfc.patch(f"/Groups/{group['id']}", ops({"op": "replace", "path": "displayName", "value": "Q"}))
    assert response.status == 200 and body["displayName"] == "Q"


async def test_user_patch_still_answers_the_resource(rfc: Scim):
    [member] = await users(rfc, 1)
    response, body = await rfc.patch(f"/Users/{member}", ops({"op": "replace", "path": "displayName", "value": "D"}))
    assert response.status == 200 and body["displayName"] == "D"
    response, body = await rfc.patch(f"/Users/{member}", ops({"op": "replace", "path": "displayName", "value": "E"}),
                                     headers={"Prefer": "return=minimal"})
    assert response.status == 204 and body is None


async def test_a_hundred_thousand_member_group_changes_one_row_at_a_time(rfc: Scim, monkeypatch):
    """Adding or removing one member of a 100,000-member group writes one small event and
    one row; listing with excludedAttributes=members reads no member at all."""
    app = rfc.client.app
    pool, store = app[POOL], app[STORE]
    tenant_id = await pool.fetchval("SELECT tenant_id FROM tenants WHERE name = 'plain'")
    group_id = str(uuid.uuid4())
    member_ids = [str(uuid.uuid4()) for _ in range(100_000)]
    # Seed the members as events, as a long provisioning history would have (the users
    # themselves are not needed for the group's own bookkeeping).
    events = [GroupCreated(group_id, "Everyone", None)]
    events += [MembersAdded(group_id, tuple(member_ids[i:i + 10_000])) for i in range(0, 100_000, 10_000)]
    await store.append(f"group-{group_id}", 0, encode_all(events), {}, tenant_id=tenant_id)
    assert await pool.fetchval("SELECT count(*) FROM group_members WHERE group_id = $1::uuid", group_id) == 100_000

    [newcomer] = await users(rfc, 1)
    reads: list[str] = []
    original = GroupsView.all_member_ids

    async def spy(self, executor, gid):
        reads.append(gid)
        return await original(self, executor, gid)

    monkeypatch.setattr(GroupsView, "all_member_ids", spy)
    response, _ = await rfc.patch(f"/Groups/{group_id}", ops({"op": "add", "path": "members",
                                                               "value": [{"value": newcomer}]}),
                                  headers={"Prefer": "return=minimal"})
    assert response.status == 204
    response, _ = await rfc.patch(f"/Groups/{group_id}", ops({"op": "remove", "path": f'members[value eq "{newcomer}"]'}),
                                  headers={"Prefer": "return=minimal"})
    assert response.status == 204
    assert reads == []  # the full member list was never loaded
    changes = await pool.fetch("SELECT type, data FROM events WHERE stream_id = $1 AND stream_version > 11 "
                               "ORDER BY stream_version", f"group-{group_id}")
    assert [(r["type"], r["data"]["member_ids"]) for r in changes] == [("MembersAdded", [newcomer]),
                                                                       ("MembersRemoved", [newcomer])]

    member_reads: list[list[str]] = []
    original_members = GroupsView.members

    async def members_spy(self, executor, group_ids):
        member_reads.append(group_ids)
        return await original_members(self, executor, group_ids)

    monkeypatch.setattr(GroupsView, "members", members_spy)
    _, listed = await rfc.get("/Groups?excludedAttributes=members")
    assert listed["totalResults"] >= 1 and all("members" not in g for g in listed["Resources"])
    assert member_reads == []


@pytest.mark.parametrize("body", [{"displayName": ""}, {"displayName": 5}, {"members": "x"}, []])
async def test_bad_group_bodies_are_400(rfc: Scim, body):
    response, error = await rfc.post("/Groups", body)
    assert response.status == 400, error


async def test_a_pathless_replace_naming_another_id_is_refused(rfc: Scim):
    _, group = await rfc.post("/Groups", {"displayName": "G"})
    response, error = await rfc.patch(f"/Groups/{group['id']}", ops(
        {"op": "replace", "value": {"id": str(uuid.uuid4()), "displayName": "H"}}))
    assert response.status == 400 and error["scimType"] == "mutability"
    assert error["detail"] == "operation 1 (replace (no path)): id is read-only"


@pytest.mark.parametrize("path", ["/Groups/.search", "/.search"])
@pytest.mark.parametrize("attributes", [[None], [{}], 7])
async def test_a_search_naming_attributes_that_are_not_strings_is_invalid_value(rfc: Scim, path, attributes):
    # Found by schemathesis: these were 500s.
    response, error = await rfc.post(path, {"excludedAttributes": attributes})
    assert response.status == 400 and error["scimType"] == "invalidValue"
    assert error["detail"] == "attributes and excludedAttributes must be strings or lists of strings"
