"""A test client bound to one tenant's token, and request bodies as identity providers send them."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp.test_utils import TestClient


@dataclass
class Scim:
    """A client bound to one tenant's token, with the SCIM base path."""

    client: TestClient
    token: str
    base: str = "/scim/v2"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/scim+json"}

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    async def request(self, method: str, path: str, json: object = None, headers: dict | None = None):
        response = await self.client.request(
            method, self.url(path), json=json, headers={**self.headers, **(headers or {})}
        )
        if response.status == 204:
            return response, None
        body = await response.json(content_type=None)
        assert response.status != 500, body
        return response, body

    async def get(self, path: str, **kw):
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: object, **kw):
        return await self.request("POST", path, json=json, **kw)

    async def put(self, path: str, json: object, **kw):
        return await self.request("PUT", path, json=json, **kw)

    async def patch(self, path: str, json: object, **kw):
        return await self.request("PATCH", path, json=json, **kw)

    async def delete(self, path: str, **kw):
        return await self.request("DELETE", path, **kw)



def entra_user(user_name: str = "Ann.Smith@Example.com", external_id: str = "ann") -> dict:
    """A create body as Microsoft Entra ID sends it (from Microsoft's SCIM tutorial)."""
    return {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "displayName": "Ann Smith",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Ann Smith", "familyName": "Smith", "givenName": "Ann"},
        "roles": [],
    }
