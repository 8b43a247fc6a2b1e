"""The Users endpoints over HTTP against a real PostgreSQL."""

import asyncio
from datetime import datetime, timedelta

import pytest

from gateway.http.keys import POOL, STORE
from tests.scim_client import Scim, entra_user

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def ops(*operations):
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def create(scim: Scim, user_name="ann@example.com", **extra):
    response, body = await scim.post("/Users", {**entra_user(user_name, extra.pop("external_id", user_name)), **extra})
    assert response.status == 201, body
    return body


# Representation -------------------------------------------------------------------------


async def test_resource_has_meta_with_absolute_location_and_weak_etag(bynder: Scim):
    body = await create(bynder)
    meta = body["meta"]
    assert meta["resourceType"] == "User"
    assert meta["location"].startswith("http://127.0.0.1:") and meta["location"].endswith(body["id"])
    assert meta["version"] == 'W/"1"'
    assert meta["created"].endswith("Z") and meta["lastModified"].endswith("Z")


async def test_both_base_paths_and_lower_case_resource_paths_serve_the_same_user(bynder: Scim):
    body = await create(bynder)
    for path in (f"/api/2/scim/Users/{body['id']}", f"/scim/v2/users/{body['id']}"):
        response = await bynder.client.get(path, headers=bynder.headers)
        assert response.status == 200
        assert (await response.json(content_type=None))["id"] == body["id"]


async def test_location_follows_the_base_path_used(bynder: Scim):
    body = await create(bynder)
    response = await bynder.client.get(f"/api/2/scim/Users/{body['id']}", headers=bynder.headers)
    assert "/api/2/scim/Users/" in (await response.json(content_type=None))["meta"]["location"]


async def test_new_users_get_sso_and_the_default_permission_profile(bynder: Scim):
    body = await create(bynder)
    extension = body["urn:scim-gateway:params:scim:schemas:extension:2.0:User"]
    assert extension == {"loginMethod": "sso", "permissionProfile": "default"}


async def test_request_bodies_as_application_json_are_accepted(bynder: Scim):
    response = await bynder.client.post(
        "/scim/v2/Users", json=entra_user(),
        headers={"Authorization": bynder.headers["Authorization"], "Content-Type": "application/json"},
    )
    assert response.status == 201


async def test_null_values_in_post_mean_absent(bynder: Scim):
    body = await create(bynder, title=None, displayName=None)
    assert "title" not in body and "displayName" not in body


# bynder profile rules -----------------------------------------------------------------


async def test_missing_required_attributes_are_named(bynder: Scim):
    response, body = await bynder.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                 "userName": "bob@example.com"})
    assert response.status == 400 and body["scimType"] == "invalidValue"
    for name in ("emails", "name.givenName", "name.familyName"):
        assert name in body["detail"]


async def test_user_name_and_emails_are_stored_lower_case(bynder: Scim):
    body = await create(bynder, "Ann.Smith@Example.COM")
    assert body["userName"] == "ann.smith@example.com"
    assert body["emails"][0]["value"] == "ann.smith@example.com"


async def test_attributes_outside_the_updatable_set_are_ignored_and_recorded(bynder: Scim):
    body = await create(bynder)
    response, patched = await bynder.patch(f"/Users/{body['id']}", ops({"op": "replace", "path": "title", "value": "CEO"}))
    assert response.status == 200 and "title" not in patched
    pool = bynder.client.app[POOL]
    ignored = await pool.fetch("SELECT data FROM events WHERE type = 'AttributeIgnored'")
    assert [row["data"]["attribute"] for row in ignored] == ["title"]


async def test_delete_keeps_the_account_deactivated_and_answers_404_after(bynder: Scim):
    body = await create(bynder)
    path = f"/Users/{body['id']}"
    response, _ = await bynder.delete(path)
    assert response.status == 204
    for method, payload in (("GET", None), ("PATCH", ops({"op": "replace", "path": "active", "value": True})),
                            ("PUT", entra_user()), ("DELETE", None)):
        response, error = await bynder.request(method, path, json=payload)
        assert response.status == 404, (method, error)
    row = await bynder.client.app[POOL].fetchrow("SELECT active, deleted FROM users_view WHERE id = $1::uuid", body["id"])
    assert row["deleted"] is True and row["active"] is False


async def test_deleted_users_are_not_listed(bynder: Scim):
    body = await create(bynder)
    await bynder.delete(f"/Users/{body['id']}")
    _, listed = await bynder.get("/Users")
    assert listed["totalResults"] == 0


async def test_reactivation_inside_the_cooldown_is_refused_with_the_date(bynder: Scim):
    body = await create(bynder)
    path = f"/Users/{body['id']}"
    _, disabled = await bynder.patch(path, ops({"op": "replace", "path": "active", "value": False}))
    response, error = await bynder.patch(path, ops({"op": "replace", "path": "active", "value": True}))
    assert response.status == 400 and error["scimType"] == "invalidValue"
    deactivated = datetime.fromisoformat(disabled["meta"]["lastModified"])
    allowed = deactivated + timedelta(days=180)
    assert error["detail"] == (f"this user was deactivated on {deactivated:%Y-%m-%d}; it can be reactivated from "
                               f"{allowed:%Y-%m-%dT%H:%M:%SZ} (180-day cooldown, tenant setting "
                               "reactivation_cooldown_days)")


async def test_credential_users_imported_cannot_be_deactivated(bynder: Scim, tmp_path, database_url):
    import orjson

    from gateway.cli import main

    line = {**entra_user("old@example.com"), "loginMethod": "credentials"}
    (tmp_path / "users.jsonl").write_bytes(orjson.dumps(line) + b"\n")
    assert await asyncio.to_thread(
        main, ["users", "import", str(tmp_path / "users.jsonl"), "--tenant", "acme", "--database-url", database_url]
    ) == 0
    _, found = await bynder.get('/Users?filter=userName eq "old@example.com"')
    [user] = found["Resources"]
    path = f"/Users/{user['id']}"
    response, _ = await bynder.patch(path, ops({"op": "replace", "path": "name.familyName", "value": "New"}))
    assert response.status == 200
    response, error = await bynder.patch(path, ops({"op": "replace", "path": "active", "value": False}))
    assert response.status == 400 and error["scimType"] == "mutability"


async def test_rfc_profile_needs_only_user_name_and_keeps_case(rfc: Scim):
    response, body = await rfc.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                              "userName": "Bob"})
    assert response.status == 201 and body["userName"] == "Bob"
    response, patched = await rfc.patch(f"/Users/{body['id']}", ops({"op": "add", "path": "title", "value": "CTO"}))
    assert patched["title"] == "CTO"


# Uniqueness and concurrency ------------------------------------------------------------


async def test_duplicate_user_name_in_another_case_is_409_uniqueness(bynder: Scim):
    await create(bynder, "ann@x.com")
    response, body = await bynder.post("/Users", entra_user("ANN@x.com"))
    assert response.status == 409 and body["scimType"] == "uniqueness"


async def test_concurrent_creates_of_one_user_name_make_one_user(rfc: Scim):
    names = ["Ann@x.com", "ann@x.com", "ANN@X.COM", "aNn@x.com"] * 3
    results = await asyncio.gather(*(rfc.post("/Users", {"userName": n}) for n in names))
    created = {body["id"]: body["userName"] for r, body in results if r.status == 201}
    [(user_id, winner)] = created.items()
    # Identical bodies from the same token are retries of the winner: answered as it was.
    for name, (response, body) in zip(names, results, strict=True):
        if name == winner:
            assert (response.status, body["id"]) == (201, user_id)
        else:
            assert (response.status, body["scimType"]) == (409, "uniqueness")


async def test_concurrent_patches_never_lose_an_update(rfc: Scim):
    body = await create(rfc)
    path = f"/Users/{body['id']}"
    results = await asyncio.gather(*(
        rfc.patch(path, ops({"op": "add", "path": "phoneNumbers", "value": [{"value": str(i), "type": "work"}]}))
        for i in range(12)
    ))
    assert all(r.status == 200 for r, _ in results)
    _, final = await rfc.get(path)
    assert sorted(p["value"] for p in final["phoneNumbers"]) == sorted(str(i) for i in range(12))
    assert final["meta"]["version"] == 'W/"13"'


async def test_stale_if_match_is_412_and_current_if_match_succeeds(rfc: Scim):
    body = await create(rfc)
    path = f"/Users/{body['id']}"
    change = ops({"op": "replace", "path": "title", "value": "x"})
    response, _ = await rfc.patch(path, change, headers={"If-Match": 'W/"7"'})
    assert response.status == 412
    response, patched = await rfc.patch(path, change, headers={"If-Match": body["meta"]["version"]})
    assert response.status == 200 and patched["meta"]["version"] == 'W/"2"'


async def test_a_no_op_patch_keeps_the_version(rfc: Scim):
    body = await create(rfc)
    response, patched = await rfc.patch(f"/Users/{body['id']}", ops({"op": "replace", "path": "active", "value": True}))
    assert response.status == 200 and patched["meta"]["version"] == body["meta"]["version"]


async def test_a_failing_operation_writes_nothing(rfc: Scim):
    body = await create(rfc)
    response, error = await rfc.patch(f"/Users/{body['id']}", ops(
        {"op": "replace", "path": "title", "value": "x"},
        {"op": "replace", "path": "id", "value": "y"},
    ))
    assert response.status == 400 and "operation 2" in error["detail"]
    _, current = await rfc.get(f"/Users/{body['id']}")
    assert "title" not in current and current["meta"]["version"] == 'W/"1"'


# Events ---------------------------------------------------------------------------------


async def test_writes_become_events_naming_the_token_owner(bynder: Scim):
    body = await create(bynder)
    await bynder.patch(f"/Users/{body['id']}", ops({"op": "replace", "path": "name.givenName", "value": "Anne"}))
    rows = await bynder.client.app[POOL].fetch(
        "SELECT tenant_id, type, data, metadata FROM events WHERE stream_id = $1 ORDER BY stream_version",
        f"user-{body['id']}")
    assert [r["type"] for r in rows] == ["UserCreated", "AttributeChanged"]
    assert rows[1]["data"]["attribute"] == "name.givenName"
    # Stored sealed (docs/privacy.md); the store opens it for every reader.
    assert "Ann" not in str(rows[1]["data"]) and rows[1]["data"]["_sealed"][0]["s"] == f"user:{body['id']}"
    [_, changed] = await bynder.client.app[STORE].read_stream(rows[0]["tenant_id"], f"user-{body['id']}")
    assert changed.data == {"user_id": body["id"], "attribute": "name.givenName", "old": "Ann", "new": "Anne"}
    actor = rows[1]["metadata"]["actor"]
    assert actor["owner"] == "scim-bot@example.com" and actor["token_id"]
    assert rows[1]["metadata"]["request_id"]


async def test_a_refused_write_is_recorded_as_request_rejected(bynder: Scim):
    await bynder.post("/Users", {"userName": "x@y.z"})
    [row] = await bynder.client.app[POOL].fetch("SELECT data FROM events WHERE type = 'RequestRejected'")
    assert row["data"]["status"] == 400 and row["data"]["scim_type"] == "invalidValue"


# Listing ---------------------------------------------------------------------------------


async def test_paging_sorting_and_total(rfc: Scim):
    for name in ("carol", "alice", "bob", "dave", "eve"):
        await rfc.post("/Users", {"userName": name})
    _, page = await rfc.get("/Users?sortBy=userName&startIndex=2&count=2")
    assert page["totalResults"] == 5 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [r["userName"] for r in page["Resources"]] == ["bob", "carol"]
    _, page = await rfc.get("/Users?sortBy=userName&sortOrder=descending&count=1")
    assert [r["userName"] for r in page["Resources"]] == ["eve"]
    _, page = await rfc.get("/Users?count=0")
    assert page["totalResults"] == 5 and page["Resources"] == []
    _, page = await rfc.get("/Users?startIndex=99")
    assert page["totalResults"] == 5 and page["Resources"] == []


async def test_count_above_the_maximum_is_capped(rfc: Scim, settings):
    await rfc.post("/Users", {"userName": "a"})
    response, page = await rfc.get(f"/Users?count={settings.max_page_size * 10}")
    assert response.status == 200 and page["itemsPerPage"] == 1


@pytest.mark.parametrize("query", ["startIndex=x", "count=1.5", "sortOrder=sideways", "sortBy=nope"])
async def test_bad_list_parameters_are_400(rfc: Scim, query):
    response, body = await rfc.get(f"/Users?{query}")
    assert response.status == 400 and body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_attributes_and_excluded_attributes(bynder: Scim):
    body = await create(bynder)
    _, only = await bynder.get(f"/Users/{body['id']}?attributes=userName,name.givenName")
    assert set(only) == {"schemas", "id", "userName", "name"} and only["name"] == {"givenName": "Ann"}
    _, without = await bynder.get("/Users?excludedAttributes=emails,name")
    resource = without["Resources"][0]
    assert "emails" not in resource and "name" not in resource and "userName" in resource


async def test_search_endpoint(bynder: Scim):
    await create(bynder)
    response, body = await bynder.post("/Users/.search", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName sw "ann"', "attributes": ["userName"], "count": 10,
    })
    assert response.status == 200 and body["totalResults"] == 1
    assert set(body["Resources"][0]) == {"schemas", "id", "userName"}


# Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{", b"", b"[1,2]", b'"x"', b"\xff\xfe"])
async def test_malformed_bodies_are_400(bynder: Scim, raw):
    response = await bynder.client.post("/scim/v2/Users", data=raw, headers=bynder.headers)
    body = await response.json(content_type=None)
    assert response.status == 400 and body["scimType"] == "invalidSyntax"


async def test_wrong_types_are_invalid_value(bynder: Scim):
    response, body = await bynder.post("/Users", {**entra_user(), "userName": 12})
    assert response.status == 400 and body["scimType"] == "invalidValue" and "userName" in body["detail"]


async def test_unknown_paths_and_groups_are_scim_404(bynder: Scim):
    for path in ("/Nope", "/Groups", "/Groups/123", "/Users/not-a-uuid"):
        response, body = await bynder.get(path)
        assert response.status == 404, path
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_body_over_the_limit_is_413(bynder: Scim, settings):
    import io

    response = await bynder.client.post("/scim/v2/Users", data=io.BytesIO(b" " * (settings.max_body_bytes + 1)),
                                        headers=bynder.headers)
    assert response.status == 413
    assert (await response.json(content_type=None))["status"] == "413"


async def test_rfc_profile_lets_a_client_unassign_active(rfc: Scim):
    body = await create(rfc)
    response, patched = await rfc.patch(f"/Users/{body['id']}", ops({"op": "remove", "path": "active"}))
    assert response.status == 200 and "active" not in patched
    response, patched = await rfc.patch(f"/Users/{body['id']}", ops({"op": "add", "path": "active", "value": True}))
    assert patched["active"] is True


async def test_bynder_profile_refuses_to_unassign_active(bynder: Scim):
    body = await create(bynder)
    response, error = await bynder.patch(f"/Users/{body['id']}", ops({"op": "remove", "path": "active"}))
    assert response.status == 400 and error["scimType"] == "mutability"


async def test_the_gateway_extension_is_the_bynder_profiles_only(rfc: Scim):
    body = await create(rfc)
    assert "urn:scim-gateway:params:scim:schemas:extension:2.0:User" not in body
    _, types = await rfc.get("/ResourceTypes/User")
    assert [e["schema"] for e in types["schemaExtensions"]] == [
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
