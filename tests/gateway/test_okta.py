"""Okta's provisioning requests, replayed with the shapes Okta publishes.

Sources: Okta's "Okta and SCIM Version 2.0" reference
(developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20) and Okta's Runscope "SCIM 2.0
Spec Test" (github.com/oktadev/okta-scim-beta, SCIM_tests_for_Runscope.json), whose
assertions the first test repeats step by step. Okta reads users by id, finds them with
``userName eq`` filters and always pages with ``startIndex=1&count=100``; it updates profiles
with PUT (the whole user) or, for apps made from the OIN template, PATCH; it deactivates and
reactivates with ``PATCH {"op": "replace", "value": {"active": false}}`` or a PUT carrying
``active``; it never sends DELETE for users.
"""

from __future__ import annotations

import uuid

from tests.scim_client import Scim

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# What Okta sends on every request (the spec test's headers).
OKTA = {"Accept": "application/scim+json", "Accept-Charset": "utf-8", "User-Agent": "Okta SCIM Client 1.0.0",
        "Content-Type": "application/scim+json; charset=utf-8"}


def okta_user(user_name: str = "tina.erickson@mailinator.com", external_id: str = "00u5hwkpq7IC0H7IS0h7") -> dict:
    """The spec test's "Create Okta user with realistic values" body, password and all."""
    return {"schemas": [USER], "userName": user_name,
            "name": {"givenName": "Tina", "familyName": "Erickson"},
            "emails": [{"primary": True, "value": user_name, "type": "work"}],
            "displayName": "Tina Erickson", "locale": "en_US", "userType": "In SCIM Group",
            "externalId": external_id, "groups": [], "password": "y25bA4W3", "active": True}


def deactivate(active: bool) -> dict:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": active}}]}


def without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k != "meta"}


async def test_okta_spec_test_steps(rfc: Scim):
    await rfc.post("/Users", okta_user("someone.already@example.com", "00u0"), headers=OKTA)

    # "Test API Credentials": the first page of users, with every ListResponse number.
    response, page = await rfc.get("/Users?count=2&startIndex=1", headers=OKTA)
    assert response.status == 200
    assert page["schemas"] == [LIST] and page["Resources"]
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (1, 1, 1)

    # "Please wait while we verify your application": the groups list answers.
    response, groups = await rfc.get("/Groups?count=100&startIndex=1", headers=OKTA)
    assert response.status == 200
    assert groups == {"schemas": [LIST], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}

    # "Make sure random user doesn't exist".
    response, none = await rfc.get('/Users?count=100&filter=userName eq "tina.erickson@mailinator.com"&startIndex=1',
                                   headers=OKTA)
    assert response.status == 200 and none["schemas"] == [LIST] and none["totalResults"] == 0

    # "Check error schema": an id that does not exist (the test sends an md5 with "}}" after it).
    response, error = await rfc.get("/Users/0c3e5a4b5c3f2d1e0a9b8c7d6e5f4a3b}}", headers=OKTA)
    assert response.status == 404
    assert error["schemas"] == [ERROR] and error["status"] == "404" and error["detail"]

    # "Create Okta user with realistic values": 201, active, the names and userName as sent.
    response, created = await rfc.post("/Users", okta_user(), headers=OKTA)
    assert response.status == 201, created
    assert created["active"] is True and created["id"]
    assert created["name"] == {"givenName": "Tina", "familyName": "Erickson"}
    assert USER in created["schemas"] and created["userName"] == "tina.erickson@mailinator.com"
    assert "password" not in created  # RFC 7643: returned "never"

    # "Verify that user was created".
    response, fetched = await rfc.get(f"/Users/{created['id']}", headers=OKTA)
    assert response.status == 200 and without_meta(fetched) == without_meta(created)

    # "Unassign user from app": PATCH active false answers 200 with the user, inactive.
    response, patched = await rfc.patch(f"/Users/{created['id']}", deactivate(False), headers=OKTA)
    assert response.status == 200 and patched["active"] is False


async def test_okta_finds_an_existing_user_before_creating_one(rfc: Scim):
    _, created = await rfc.post("/Users", okta_user(), headers=OKTA)
    response, found = await rfc.get(
        '/Users?filter=userName%20eq%20%22tina.erickson%40mailinator.com%22&startIndex=1&count=100', headers=OKTA)
    assert response.status == 200
    assert found["totalResults"] == 1 and [r["id"] for r in found["Resources"]] == [created["id"]]
    # Another create of that userName (here from another Okta user): 409 uniqueness. (The very
    # same body again is a retry, answered 201 with the same user: docs/operations.md.)
    response, error = await rfc.post("/Users", okta_user(external_id="00uOTHER"), headers=OKTA)
    assert response.status == 409 and error["scimType"] == "uniqueness"
    response, again = await rfc.post("/Users", okta_user(), headers=OKTA)
    assert response.status == 201 and again["id"] == created["id"]


async def test_okta_updates_the_profile_with_put(rfc: Scim):
    _, created = await rfc.post("/Users", okta_user(), headers=OKTA)
    # Okta PUTs the whole user back, id and meta included, with the changed profile.
    body = {**created, "name": {"givenName": "Tina", "familyName": "Erickson-Smith"},
            "emails": [{"primary": True, "value": "tina.es@mailinator.com", "type": "work"}],
            "displayName": "Tina Erickson-Smith", "password": "y25bA4W3"}
    response, replaced = await rfc.put(f"/Users/{created['id']}", body, headers=OKTA)
    assert response.status == 200, replaced
    assert replaced["name"] == {"givenName": "Tina", "familyName": "Erickson-Smith"}
    assert replaced["emails"] == [{"primary": True, "value": "tina.es@mailinator.com", "type": "work"}]
    assert replaced["displayName"] == "Tina Erickson-Smith" and replaced["active"] is True
    assert replaced["id"] == created["id"] and replaced["meta"]["version"] != created["meta"]["version"]


async def test_okta_deactivates_and_reactivates_with_put(rfc: Scim):
    _, created = await rfc.post("/Users", okta_user(), headers=OKTA)
    path = f"/Users/{created['id']}"
    response, off = await rfc.put(path, {**created, "active": False}, headers=OKTA)
    assert response.status == 200 and off["active"] is False
    _, listed = await rfc.get('/Users?filter=userName eq "tina.erickson@mailinator.com"&startIndex=1&count=100')
    assert [r["active"] for r in listed["Resources"]] == [False]
    response, on = await rfc.put(path, {**off, "active": True}, headers=OKTA)
    assert response.status == 200 and on["active"] is True


async def test_okta_deactivates_and_reactivates_with_patch(rfc: Scim):
    _, created = await rfc.post("/Users", okta_user(), headers=OKTA)
    path = f"/Users/{created['id']}"
    response, off = await rfc.patch(path, deactivate(False), headers=OKTA)
    assert response.status == 200 and off["active"] is False
    response, on = await rfc.patch(path, deactivate(True), headers=OKTA)
    assert response.status == 200 and on["active"] is True
    assert without_meta(on) == without_meta(created)


async def test_okta_pushes_a_password_with_patch(rfc: Scim):
    """Sync Password: ``{"op": "replace", "value": {"password": "..."}}``. The portal signs
    its SCIM users in with SSO, so the password is accepted and not stored (never returned)."""
    _, created = await rfc.post("/Users", okta_user(), headers=OKTA)
    response, body = await rfc.patch(f"/Users/{created['id']}", {
        "schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"password": "t1meMa$heen"}}]}, headers=OKTA)
    assert response.status == 200 and "password" not in body
    assert body["meta"]["version"] == created["meta"]["version"]


async def test_okta_group_push(rfc: Scim):
    _, tina = await rfc.post("/Users", okta_user(), headers=OKTA)
    _, other = await rfc.post("/Users", okta_user("other@mailinator.com", "00u9"), headers=OKTA)

    # Okta looks the group up by name, then creates it.
    response, none = await rfc.get('/Groups?filter=displayName eq "Test SCIMv2"&startIndex=1&count=100', headers=OKTA)
    assert response.status == 200 and none["totalResults"] == 0
    response, group = await rfc.post("/Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []},
                                     headers=OKTA)
    assert response.status == 201
    assert without_meta(group) == {"schemas": [GROUP], "id": group["id"], "displayName": "Test SCIMv2", "members": []}
    path = f"/Groups/{group['id']}"

    # Read it without members, as Okta does.
    response, fetched = await rfc.get(f"{path}?excludedAttributes=members", headers=OKTA)
    assert response.status == 200
    assert without_meta(fetched) == {"schemas": [GROUP], "id": group["id"], "displayName": "Test SCIMv2"}

    # Rename: a path-less replace whose value carries the id as well.
    response, body = await rfc.patch(path, {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {"id": group["id"], "displayName": "Test SCIMv20"}}]}, headers=OKTA)
    assert response.status == 204 and body is None

    # Add members, then remove one with a value filter.
    response, _ = await rfc.patch(path, {"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": tina["id"], "display": tina["userName"]},
                                                   {"value": other["id"], "display": other["userName"]}]}]},
                                  headers=OKTA)
    assert response.status == 204
    response, _ = await rfc.patch(path, {"schemas": [PATCH_OP], "Operations": [
        {"op": "remove", "path": f'members[value eq "{other["id"]}"]'}]}, headers=OKTA)
    assert response.status == 204
    _, now = await rfc.get(path, headers=OKTA)
    assert now["displayName"] == "Test SCIMv20"
    assert now["members"] == [{"value": tina["id"], "display": tina["userName"],
                               "$ref": f"{now['meta']['location'].rsplit('/Groups/', 1)[0]}/Users/{tina['id']}",
                               "type": "User"}]

    # Okta's "push now" sends the whole group with PUT.
    response, replaced = await rfc.put(path, {"schemas": [GROUP], "id": group["id"], "displayName": "Test SCIMv20",
                                              "members": [{"value": other["id"], "display": other["userName"]}]},
                                       headers=OKTA)
    assert response.status == 200 and [m["value"] for m in replaced["members"]] == [other["id"]]

    # Unlinking the pushed group with "delete the group in the target app".
    response, _ = await rfc.delete(path, headers=OKTA)
    assert response.status == 204
    response, error = await rfc.get(path, headers=OKTA)
    assert response.status == 404 and error["schemas"] == [ERROR]


async def test_okta_on_the_bynder_profile_creates_and_deactivates(bynder: Scim):
    """The portal's own profile: Okta's user shapes work; Groups are not offered (404)."""
    response, created = await bynder.post("/Users", okta_user(f"Tina.{uuid.uuid4().hex[:6]}@Mailinator.com"),
                                          headers=OKTA)
    assert response.status == 201, created
    response, off = await bynder.put(f"/Users/{created['id']}", {**created, "active": False}, headers=OKTA)
    assert response.status == 200 and off["active"] is False
    response, error = await bynder.get("/Groups?count=100&startIndex=1", headers=OKTA)
    assert response.status == 404 and error["schemas"] == [ERROR]
