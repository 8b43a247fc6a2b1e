"""User resources: incoming JSON to a canonical attribute document, state to outgoing JSON."""

from __future__ import annotations

import copy
from datetime import datetime

from domain.json import JsonObject, JsonValue
from domain.schema import (
    CORE_USER,
    ENTERPRISE_SCHEMA,
    ENTERPRISE_USER,
    EXTENSIONS,
    EXTERNAL_ID,
    GATEWAY_USER,
    USER_SCHEMA,
    Attribute,
    ResolvedPath,
    Schema,
    resolve,
)
from domain.user import UserState
from gateway.scim import bounds, compat
from gateway.scim.errors import ScimError
from gateway.scim.filter import parse_path
from gateway.timestamps import timestamp

_READ_ONLY_KEYS = frozenset({"id", "meta", "schemas"})


def etag(version: int) -> str:
    return f'W/"{version}"'


# Incoming ------------------------------------------------------------------------------


def _scalar(attribute: Attribute, value: JsonValue, name: str) -> JsonValue:
    match attribute.type:
        case "boolean":
            return compat.boolean(value, name)
        case "integer":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise ScimError.invalid_value(f"{name} must be an integer")
        case "decimal":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
            raise ScimError.invalid_value(f"{name} must be a number")
        case "dateTime":
            if isinstance(value, str):
                try:
                    datetime.fromisoformat(value)
                    return value
                except ValueError:
                    pass
            raise ScimError.invalid_value(f"{name} must be an RFC 3339 date-time")
        case _:
            if isinstance(value, str):
                return bounds.text(value, name, attribute.max_length, folded=not attribute.case_exact)
            raise ScimError.invalid_value(f"{name} must be a string")


def _complex(attribute: Attribute, value: JsonValue, name: str) -> JsonObject | None:
    if isinstance(value, str) and attribute.sub("value") is not None:
        # Entra ID sends the enterprise manager as a bare id string.
        value = {"value": value}
    if not isinstance(value, dict):
        raise ScimError.invalid_value(f"{name} must be an object")
    result: JsonObject = {}
    for key, item in value.items():
        sub = attribute.sub(key)
        if sub is None or item is None or sub.mutability == "readOnly":
            continue
        result[sub.name] = _scalar(sub, item, f"{name}.{sub.name}")
    return result or None


def parse_value(attribute: Attribute, value: JsonValue, name: str) -> JsonValue:
    """One attribute's value, checked against its definition; None means absent."""
    if value is None:
        return None
    if attribute.multi_valued:
        value = compat.json_in_string(value)
        items = value if isinstance(value, list) else [value]
        parsed = [
            _complex(attribute, item, name) if attribute.type == "complex" else _scalar(attribute, item, name)
            for item in items
            if item is not None
        ]
        result = [item for item in parsed if item is not None]
        return result or None
    if attribute.type == "complex":
        return _complex(attribute, value, name)
    return _scalar(attribute, value, name)


def _parse_schema_attributes(schema: Schema, body: JsonObject, into: JsonObject) -> None:
    for key, value in body.items():
        if schema is USER_SCHEMA and key.lower() == "externalid":
            attribute: Attribute | None = EXTERNAL_ID
        else:
            attribute = schema.attribute(key)
        if attribute is None or attribute.mutability == "readOnly" or value is None:
            continue  # unknown and read-only attributes are ignored (RFC 7643 section 2.2)
        parsed = parse_value(attribute, value, attribute.name)
        if parsed is not None:
            into[attribute.name] = parsed


def parse_user(body: JsonValue) -> tuple[JsonObject, bool | None]:
    """A User body (POST or PUT) as (attribute document, active)."""
    if not isinstance(body, dict):
        raise ScimError.invalid_syntax("the request body must be a JSON object")
    schemas = body.get("schemas")
    if schemas is not None and (
        not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas)
    ):
        raise ScimError.invalid_syntax("schemas must be a list of schema URIs")
    document: JsonObject = {}
    core: JsonObject = {}
    active: bool | None = None
    for key, value in body.items():
        lowered = key.lower()
        if lowered in _READ_ONLY_KEYS:
            continue
        if lowered == "active":
            active = None if value is None else compat.boolean(value, "active")
        elif lowered == CORE_USER.lower() and isinstance(value, dict):
            _parse_schema_attributes(USER_SCHEMA, value, document)
        elif lowered in EXTENSIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ScimError.invalid_syntax(f"{key} must be an object")
            extension = EXTENSIONS[lowered]
            if extension.id == GATEWAY_USER:
                continue  # read-only: decided by the gateway
            parsed: JsonObject = {}
            _parse_schema_attributes(extension, value, parsed)
            if parsed:
                document[extension.id] = parsed
        else:
            core[key] = value
    _parse_schema_attributes(USER_SCHEMA, core, document)
    return document, active


# Outgoing ------------------------------------------------------------------------------


def render_user(state: UserState, base_url: str, gateway_extension: bool = True) -> JsonObject:
    """The resource shares the state's values, uncopied: rendering is a state's last use, and
    whatever reshapes a resource (``project``) copies what it keeps."""
    attributes = state.attributes
    schemas = [CORE_USER]
    if ENTERPRISE_USER in attributes:
        schemas.append(ENTERPRISE_USER)
    if gateway_extension:
        schemas.append(GATEWAY_USER)
    resource: JsonObject = {"schemas": schemas, "id": state.user_id}
    for key, value in attributes.items():
        if key != ENTERPRISE_USER:
            resource[key] = value
    if state.active_assigned:
        resource["active"] = state.active
    if ENTERPRISE_USER in attributes:
        resource[ENTERPRISE_USER] = attributes[ENTERPRISE_USER]
    if gateway_extension:
        gateway: JsonObject = {"loginMethod": state.login_method}
        if state.permission_profile is not None:
            gateway["permissionProfile"] = state.permission_profile
        resource[GATEWAY_USER] = gateway
    resource["meta"] = {
        "resourceType": "User",
        "created": timestamp(state.created),
        "lastModified": timestamp(state.last_modified),
        "location": f"{base_url}/Users/{state.user_id}",
        "version": etag(state.version),
    }
    return resource


# attributes / excludedAttributes (RFC 7644 section 3.4.2.5) ------------------------------


def parse_attribute_list(text: str | None, lenient: bool = False) -> list[ResolvedPath]:
    """``attributes``/``excludedAttributes`` against the User schemas; ``lenient`` skips names
    of other resource types (a search across all of them, RFC 7644 section 3.4.3)."""
    if not text:
        return []
    paths = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        # Microsoft's test collection asks for attributes=emails[type eq "work"].
        patch_path = parse_path(item)
        resolved = resolve(patch_path.path.full)
        if resolved is None:
            if lenient:
                continue
            raise ScimError.invalid_value(f"unknown attribute {item!r}")
        paths.append(resolved)
    return paths


def _location(resource: JsonObject, path: ResolvedPath) -> tuple[JsonObject | None, str]:
    if path.extension is None:
        return resource, path.attribute.name
    container = resource.get(path.extension)
    return (container if isinstance(container, dict) else None), path.attribute.name


def project(resource: JsonObject, include: list[ResolvedPath], exclude: list[ResolvedPath]) -> JsonObject:
    if include:
        result: JsonObject = {"schemas": resource["schemas"], "id": resource["id"]}
        for path in include:
            source, key = _location(resource, path)
            if source is None or key not in source:
                continue
            value = source[key]
            if path.sub_attribute is not None:
                sub = path.sub_attribute.name
                if isinstance(value, list):
                    value = [{sub: v[sub]} for v in value if isinstance(v, dict) and sub in v]
                elif isinstance(value, dict):
                    value = {sub: value[sub]} if sub in value else None
                if not value:
                    continue
            target = result
            if path.extension is not None:
                target = result.setdefault(path.extension, {})  # type: ignore[assignment]
            existing = target.get(key)
            if isinstance(existing, dict) and isinstance(value, dict):
                existing.update(value)
            else:
                target[key] = copy.deepcopy(value)
        return result
    if exclude:
        result = copy.deepcopy(resource)
        for path in exclude:
            if path.attribute.returned == "always":
                continue
            source, key = _location(result, path)
            if source is None or key not in source:
                continue
            if path.sub_attribute is None:
                source.pop(key)
            elif isinstance(source[key], dict):
                source[key].pop(path.sub_attribute.name, None)  # type: ignore[union-attr]
            elif isinstance(source[key], list):
                for item in source[key]:  # type: ignore[union-attr]
                    if isinstance(item, dict):
                        item.pop(path.sub_attribute.name, None)
        return result
    return resource


__all__ = ["ENTERPRISE_SCHEMA", "parse_user", "project", "render_user"]
