"""ServiceProviderConfig, ResourceTypes and Schemas (RFC 7643 sections 5-7), as data.

They advertise exactly what is implemented: PATCH, filter, sort and ETags; no bulk, no
password change.
"""

from __future__ import annotations

from domain.json import JsonObject
from domain.policy import Policy
from domain.schema import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_SCHEMA,
    ENTERPRISE_USER,
    GATEWAY_SCHEMA,
    GATEWAY_USER,
    GROUP_SCHEMA,
    USER_SCHEMA,
)

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


def group_resource_type(base_url: str) -> JsonObject:
    return {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "Group",
        "schema": CORE_GROUP,
        "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/Group"},
    }


def resource_types(base_url: str, policy: Policy) -> list[JsonObject]:
    offered = [user_resource_type(base_url, policy.gateway_extension)]
    if policy.offers_groups:
        offered.append(group_resource_type(base_url))
    return offered


def schemas(base_url: str, policy: Policy) -> list[JsonObject]:
    offered = [USER_SCHEMA, ENTERPRISE_SCHEMA]
    if policy.gateway_extension:
        offered.append(GATEWAY_SCHEMA)
    if policy.offers_groups:
        offered.append(GROUP_SCHEMA)
    return [schema.document(base_url) for schema in offered]
