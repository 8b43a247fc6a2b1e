"""ServiceProviderConfig, ResourceTypes and Schemas advertise what is implemented."""

import pytest

from tests.scim_client import Scim


async def test_service_provider_config(bynder: Scim, settings):
    response, body = await bynder.get("/ServiceProviderConfig")
    assert response.status == 200
    assert body["patch"]["supported"] is True
    assert body["bulk"]["supported"] is False
    assert body["filter"] == {"supported": True, "maxResults": settings.max_page_size}
    assert body["sort"]["supported"] is True and body["etag"]["supported"] is True
    assert body["changePassword"]["supported"] is False
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"


async def test_resource_types_list_only_users(bynder: Scim):
    _, body = await bynder.get("/ResourceTypes")
    assert [r["id"] for r in body["Resources"]] == ["User"]
    _, user = await bynder.get("/ResourceTypes/User")
    assert user["endpoint"] == "/Users"
    response, _ = await bynder.get("/ResourceTypes/Group")
    assert response.status == 404


async def test_schemas(bynder: Scim):
    _, body = await bynder.get("/Schemas")
    ids = [s["id"] for s in body["Resources"]]
    assert "urn:ietf:params:scim:schemas:core:2.0:User" in ids
    assert "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" in ids
    _, core = await bynder.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
    user_name = next(a for a in core["attributes"] if a["name"] == "userName")
    assert user_name["required"] is True and user_name["uniqueness"] == "server" and user_name["caseExact"] is False


@pytest.mark.parametrize("path", ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/Schemas/x"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_discovery_documents_are_read_only(bynder: Scim, path, method):
    response, body = await bynder.request(method, path, json={})
    assert response.status == 405
    assert body["status"] == "405"
