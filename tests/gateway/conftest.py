"""An app on a fresh database with two tenants (bynder and rfc profiles) and their tokens."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.domain.tenant import SCOPES
from gateway.http.keys import TENANCY
from gateway.settings import Settings

ACTOR = {"token_id": "", "owner": "tests", "token_description": "test fixture"}


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


@pytest.fixture
def settings() -> Settings:
    return Settings(pool_min_size=1, pool_max_size=8, access_log=False)


@pytest.fixture
async def client(database_url: str, settings: Settings, aiohttp_client) -> TestClient:
    return await aiohttp_client(create_app(settings, database_url))


async def _tenant_token(client: TestClient, name: str, profile: str, scopes=SCOPES,
                        owner: str = "scim-bot@example.com") -> str:
    tenancy = client.app[TENANCY]
    if name not in {t.name for t in await tenancy.tenants()}:
        await tenancy.create_tenant(name, profile, ACTOR)
    _, secret = await tenancy.create_token(name, owner, "SCIM Token", tuple(scopes), ACTOR)
    return secret


@pytest.fixture
async def bynder(client: TestClient) -> Scim:
    return Scim(client, await _tenant_token(client, "acme", "bynder"))


@pytest.fixture
async def rfc(client: TestClient) -> Scim:
    return Scim(client, await _tenant_token(client, "plain", "rfc"))


@pytest.fixture
def token_for(client: TestClient):
    async def make(tenant: str, profile: str = "bynder", scopes=SCOPES, owner="scim-bot@example.com") -> Scim:
        return Scim(client, await _tenant_token(client, tenant, profile, scopes, owner))

    return make


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
