"""What identity providers send that the RFC did not foresee, normalised in one place.

Each rule names who sends it. Microsoft's pages: "Known issues and resolutions with SCIM
2.0 protocol compliance of the Microsoft Entra user provisioning service"
(learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility)
and "Tutorial: Develop and plan provisioning for a SCIM endpoint"
(learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from domain.json import JsonObject, JsonValue
from gateway.scim.errors import ScimError

PATCH_OPS = ("add", "replace", "remove")
_ENTERPRISE_MANAGER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"


def boolean(value: JsonValue, name: str) -> bool:
    """Entra ID sends booleans as strings ("True", "False") without its 2020 compliance flag."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ScimError.invalid_value(f"{name} must be a boolean, not {orjson.dumps(value).decode()}")


def json_in_string(value: JsonValue) -> JsonValue:
    """Entra ID can send a multi-valued attribute such as ``roles`` as JSON inside a string."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


@dataclass(frozen=True, slots=True)
class Operation:
    op: str  # add, replace or remove
    path: str | None
    value: JsonValue
    has_value: bool


def operation(raw: JsonValue, index: int) -> Operation:
    """One PATCH operation, with Entra's capitalised ``op`` names ("Replace", "Add") accepted."""
    if not isinstance(raw, dict):
        raise ScimError.invalid_syntax(f"operation {index} is not an object")
    op = raw.get("op")
    if not isinstance(op, str) or op.lower() not in PATCH_OPS:
        raise ScimError.invalid_syntax(f"operation {index}: op must be add, replace or remove")
    path = raw.get("path")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise ScimError.invalid_path(f"operation {index}: path must be a non-empty string")
    return Operation(op.lower(), path.strip() if isinstance(path, str) else None,
                     raw.get("value"), "value" in raw)


def expand_pathless_value(value: JsonObject) -> list[tuple[str, JsonValue]]:
    """A path-less add/replace value as (path, value) pairs.

    Entra ID sends keys that are themselves paths: ``{"name.givenName": "Ann"}`` and
    ``{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "X"}``, as
    well as the RFC shape of nested objects and whole extension objects.
    """
    pairs: list[tuple[str, JsonValue]] = []
    for key, item in value.items():
        if key.lower().startswith("urn:") and isinstance(item, dict) and key.lower().endswith(":user"):
            pairs.extend((f"{key}:{sub}", sub_value) for sub, sub_value in item.items())
        else:
            pairs.append((key, item))
    return pairs


def bare_manager(operation: Operation) -> Operation:
    """Microsoft's "update a user" example sends the enterprise extension's manager without its
    schema URN, its value a one-item list:
    ``{"op": "Add", "path": "manager", "value": [{"$ref": "...", "value": "<id>"}]}``
    (learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups,
    "Update user [Multi-valued properties]"). The core User schema has no ``manager``, so the
    path can only mean the extension's."""
    if operation.path is None:
        return operation
    name, dot, sub = operation.path.partition(".")
    if name.lower() != "manager":
        return operation
    value = operation.value
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return Operation(operation.op, f"{_ENTERPRISE_MANAGER}{dot}{sub}", value, operation.has_value)


def echoed_id(value: JsonObject, resource_id: str | None) -> JsonObject:
    """Okta renames a group with a path-less replace whose value repeats the group's id:
    ``{"op": "replace", "value": {"id": "<group id>", "displayName": "New"}}``
    (developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20, "Update a specific Group
    name"). The id is read-only: the same id is no change and is dropped; another id is 400."""
    found = next((k for k in value if k.lower() == "id"), None)
    if found is None:
        return value
    if resource_id is not None and value[found] != resource_id:
        raise ScimError.mutability("id is read-only")
    return {k: v for k, v in value.items() if k != found}


# Okta's "Sync Password" sends {"op": "replace", "value": {"password": "..."}} (Okta's SCIM 2.0
# reference, "Update a specific User (PATCH)"). Provisioned accounts sign in with SSO, and a
# password must never reach the append-only log: the attribute is dropped, never stored or logged.
WRITE_ONLY_DROPPED = frozenset({"password"})
