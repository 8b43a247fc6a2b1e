"""Microsoft Entra ID's whole user lifecycle on the bynder profile, with its documented bodies
(learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups)."""

import uuid

from tests.scim_client import Scim, entra_user

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def ops(*operations):
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def test_entra_lifecycle(bynder: Scim):
    # Test connection: filter on a random userName -> 200, empty ListResponse (never 404).
    response, body = await bynder.get(f'/Users?filter=userName eq "{uuid.uuid4()}"')
    assert response.status == 200
    assert body["totalResults"] == 0 and body["Resources"] == []

    # Create.
    response, created = await bynder.post("/Users", entra_user("Test_User_ab6490ee@testuser.com", "Test_User_x"))
    assert response.status == 201, created
    user_id = created["id"]
    assert response.headers["Location"].endswith(f"/scim/v2/Users/{user_id}")
    assert response.headers["ETag"] == created["meta"]["version"]
    assert response.headers["Content-Type"].startswith("application/scim+json")

    # Get.
    response, fetched = await bynder.get(f"/Users/{user_id}")
    assert response.status == 200 and fetched["userName"] == "test_user_ab6490ee@testuser.com"

    # Find by userName (case-insensitive) and by externalId.
    _, by_name = await bynder.get('/Users?filter=userName eq "TEST_USER_ab6490ee@testuser.com"')
    assert [r["id"] for r in by_name["Resources"]] == [user_id]
    _, by_external = await bynder.get('/Users?filter=externalId eq "Test_User_x"')
    assert [r["id"] for r in by_external["Resources"]] == [user_id]
    _, by_email = await bynder.get('/Users?filter=emails[type eq "work"].value eq "test_user_ab6490ee@testuser.com"')
    assert [r["id"] for r in by_email["Resources"]] == [user_id]

    # Update a single-valued and a multi-valued attribute.
    response, updated = await bynder.patch(f"/Users/{user_id}", ops(
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.com"},
    ))
    assert response.status == 200, updated
    assert updated["name"]["familyName"] == "updatedFamilyName"
    assert updated["emails"][0]["value"] == "updatedemail@microsoft.com"

    # Disable with a string boolean; the user still appears in GETs and queries.
    response, disabled = await bynder.patch(f"/Users/{user_id}", ops({"op": "Replace", "path": "active", "value": "False"}))
    assert response.status == 200 and disabled["active"] is False
    _, listed = await bynder.get('/Users?filter=userName eq "test_user_ab6490ee@testuser.com"')
    assert listed["totalResults"] == 1 and listed["Resources"][0]["active"] is False

    # Delete (Entra sends it only for users hard-deleted on its side), then 404.
    response, _ = await bynder.delete(f"/Users/{user_id}")
    assert response.status == 204
    response, error = await bynder.get(f"/Users/{user_id}")
    assert response.status == 404
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert error["status"] == "404"


async def test_entra_reenable_on_the_rfc_profile(rfc: Scim):
    _, created = await rfc.post("/Users", entra_user())
    path = f"/Users/{created['id']}"
    await rfc.patch(path, ops({"op": "Replace", "path": "active", "value": "False"}))
    response, body = await rfc.patch(path, ops({"op": "Replace", "path": "active", "value": "True"}))
    assert response.status == 200 and body["active"] is True


async def test_entra_pathless_replace_with_compliance_flag_shape(bynder: Scim):
    _, created = await bynder.post("/Users", entra_user())
    response, body = await bynder.patch(f"/Users/{created['id']}", ops({
        "op": "replace",
        "value": {"name.givenName": "Annie", "active": False,
                  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "ignored"},
    }))
    assert response.status == 200, body
    assert body["name"]["givenName"] == "Annie"
    assert body["active"] is False
    # department is outside the bynder profile's updatable set: accepted, not applied.
    assert "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" not in body


# Microsoft's "update a user" example: the enterprise manager without its schema URN.
MANAGER_ADD = {"op": "Add", "path": "manager",
               "value": [{"$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                          "value": "26118915-6090-4610-87e4-49d8ca9f808d"}]}
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


async def test_bare_manager_is_the_enterprise_manager_on_the_rfc_profile(rfc: Scim):
    _, created = await rfc.post("/Users", entra_user())
    response, body = await rfc.patch(f"/Users/{created['id']}", ops(MANAGER_ADD))
    assert response.status == 200, body
    assert body[ENTERPRISE]["manager"] == {"value": "26118915-6090-4610-87e4-49d8ca9f808d",
                                           "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d"}


async def test_bare_manager_is_ignored_with_a_provisioning_log_note_on_bynder(bynder: Scim):
    _, created = await bynder.post("/Users", entra_user())
    response, body = await bynder.patch(f"/Users/{created['id']}", ops(MANAGER_ADD))
    assert response.status == 200, body
    assert "manager" not in body.get(ENTERPRISE, {})
    response = await bynder.client.get("/api/2/audit/provisioning", headers={"Authorization": f"Bearer {bynder.token}"})
    [row] = [i for i in (await response.json())["items"] if i["method"] == "PATCH"]
    assert (row["result"], row["status"], row["changed_attributes"]) == ("success", 200, [])
    assert row["ignored_attributes"] == [f"{ENTERPRISE}:manager.$ref", f"{ENTERPRISE}:manager.value"]


async def test_a_tenant_url_with_a_trailing_slash_works(bynder: Scim):
    """Entra ID appends /Users to the Tenant URL as entered: `https://host/api/2/scim/` gives //Users."""
    for base in ("/api/2/scim/", "/scim/v2/"):
        client = Scim(bynder.client, bynder.token, base)
        response, body = await client.get(f'/Users?filter=userName eq "{uuid.uuid4()}"')
        assert response.status == 200 and body["totalResults"] == 0
    client = Scim(bynder.client, bynder.token, "/api/2/scim/")
    response, created = await client.post("/Users", entra_user())
    assert response.status == 201
    location = f"/api/2/scim/Users/{created['id']}"
    assert response.headers["Location"].endswith(location) and "//Users" not in response.headers["Location"]
    response, patched = await client.patch(f"/Users/{created['id']}", ops({"op": "Replace", "path": "active", "value": "False"}))
    assert response.status == 200 and patched["active"] is False
    response, config = await client.get("/ServiceProviderConfig")
    assert response.status == 200 and config["meta"]["location"].endswith("/api/2/scim/ServiceProviderConfig")


async def test_a_blank_secret_token_makes_entra_send_its_own_jwt_which_is_refused(bynder: Scim):
    """With Secret Token left blank Entra ID authenticates with a JWT it issues itself."""
    jwt = ("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiI4YWRmOGU2ZS02N2IyLTRjZjItYTI1OS1lM2RjNTQ3NmM2MjEifQ."
           "c2lnbmF0dXJl")
    response = await bynder.client.get(f'/api/2/scim/Users?filter=userName eq "{uuid.uuid4()}"',
                                       headers={"Authorization": f"Bearer {jwt}"})
    error = await response.json(content_type=None)
    assert response.status == 401
    assert error == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "401",
                     "detail": "the bearer token is not valid"}
