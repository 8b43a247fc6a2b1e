"""ServiceProviderConfig, ResourceTypes and Schemas (RFC 7643 sections 5-7), as data.

They advertise exactly what is implemented: PATCH, filter, sort and ETags; no bulk, no
password change.
"""

from __future__ import annotations

from gateway.domain.json import JsonObject
from gateway.scim.schema import CORE_USER, ENTERPRISE_SCHEMA, ENTERPRISE_USER, GATEWAY_USER, USER_SCHEMA, USER_SCHEMAS

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
DOCUMENTATION = "https://github.com/scim-gateway/scim-gateway/blob/main/docs/scim.md"


def service_provider_config(base_url: str, max_results: int) -> JsonObject:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": DOCUMENTATION,
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A long-lived bearer token issued with `scim-gateway token create`",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "documentationUri": DOCUMENTATION,
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def user_resource_type(base_url: str, gateway_extension: bool) -> JsonObject:
    extensions = [{"schema": ENTERPRISE_USER, "required": False}]
    if gateway_extension:
        extensions.append({"schema": GATEWAY_USER, "required": False})
    return {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": CORE_USER,
        "schemaExtensions": extensions,
        "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/User"},
    }


def resource_types(base_url: str, gateway_extension: bool) -> list[JsonObject]:
    return [user_resource_type(base_url, gateway_extension)]


def schemas(base_url: str, gateway_extension: bool) -> list[JsonObject]:
    offered = USER_SCHEMAS if gateway_extension else (USER_SCHEMA, ENTERPRISE_SCHEMA)
    return [schema.document(base_url) for schema in offered]  # type: ignore[misc]
