"""Group resources (RFC 7643 section 4.2): bodies and PATCH operations in, JSON out."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.group import KEEP, GroupState, UpdateGroup
from domain.json import JsonObject, JsonValue
from domain.schema import CORE_GROUP, EXTERNAL_ID, GROUP_SCHEMA
from gateway.scim import bounds, compat
from gateway.scim.errors import ScimError
from gateway.scim.filter import Compare, parse_path
from gateway.scim.patch import labelled, operations_of
from gateway.scim.resource import etag
from gateway.timestamps import timestamp

# Attributes with a length cap of their own; anything else gets bounds.TEXT_MAX.
_ATTRIBUTES = {"displayName": GROUP_SCHEMA.attribute("displayName"), "externalId": EXTERNAL_ID}


def _text(value: JsonValue, name: str) -> str:
    if not isinstance(value, str):
        raise ScimError.invalid_value(f"{name} must be a string")
    attribute = _ATTRIBUTES.get(name)
    limit = attribute.max_length if attribute is not None else None
    return bounds.text(value, name, limit, folded=attribute is not None and not attribute.case_exact)


def member_refs(value: JsonValue) -> list[tuple[str, str | None]]:
    """Member references as (id, display): ``[{"value": id, "display": ...}, ...]``, one such
    object, or bare id strings. Microsoft's collection names the display ``displayName``."""
    value = compat.json_in_string(value)
    items = value if isinstance(value, list) else [value]
    refs = []
    for item in items:
        display = None
        if isinstance(item, dict):
            lowered = {k.lower(): v for k, v in item.items()}
            shown = lowered.get("display", lowered.get("displayname"))
            display = shown if isinstance(shown, str) else None
            item = lowered.get("value")
        if item is None:
            continue
        refs.append((_text(item, "members.value"), display))
    return refs


def member_ids(value: JsonValue) -> list[str]:
    return [i for i, _ in member_refs(value)]


def parse_group(body: JsonValue) -> tuple[str | None, str | None, list[tuple[str, str | None]] | None]:
    """A Group body (POST or PUT) as (displayName, externalId, member (id, display) or None)."""
    if not isinstance(body, dict):
        raise ScimError.invalid_syntax("the request body must be a JSON object")
    lowered = {k.lower(): v for k, v in body.items()}
    display = lowered.get("displayname")
    external = lowered.get("externalid")
    members = lowered.get("members")
    return (
        None if display is None else _text(display, "displayName"),
        None if external is None else _text(external, "externalId"),
        None if members is None else member_refs(members),
    )


def render_group(state: GroupState, members: list[dict] | None, base_url: str) -> JsonObject:
    resource: JsonObject = {"schemas": [CORE_GROUP], "id": state.group_id, "displayName": state.display_name}
    if state.external_id is not None:
        resource["externalId"] = state.external_id
    if members is not None:
        resource["members"] = [{**m, "$ref": f"{base_url}/Users/{m['value']}", "type": "User"} for m in members]
    resource["meta"] = {
        "resourceType": "Group",
        "created": timestamp(state.created),
        "lastModified": timestamp(state.last_modified),
        "location": f"{base_url}/Groups/{state.group_id}",
        "version": etag(state.version),
    }
    return resource


@dataclass
class GroupPatch:
    """A PATCH reduced to what it does to a group."""

    display_name: object = KEEP
    external_id: object = KEEP
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    remove_all: bool = False
    displays: dict[str, str] = field(default_factory=dict)

    def apply(self, op: str, target: str, value: JsonValue) -> None:
        name = target.lower()
        if name == "displayname":
            if op == "remove":
                raise ScimError.mutability("displayName is required; it cannot be removed")
            self.display_name = _text(value, "displayName")
        elif name == "externalid":
            self.external_id = None if op == "remove" else _text(value, "externalId")
        elif name == "members":
            refs = member_refs(value) if value is not None else []
            ids = [i for i, _ in refs]
            self.displays.update({i: d for i, d in refs if d})
            if op == "add":
                self.add += ids
                self.remove = [i for i in self.remove if i not in ids]
            elif op == "replace":
                self.remove_all, self.remove, self.add = True, [], ids
            elif ids:  # Entra ID removes members by listing them in value
                self.remove += ids
                self.add = [i for i in self.add if i not in ids]
            else:
                self.remove_all, self.add = True, []
        else:
            raise ScimError.invalid_path(f"Group has no attribute {target!r}")


def parse_group_patch(body: JsonValue, group_id: str) -> UpdateGroup:
    """A Group PATCH as the change it makes, before any database work (``group_id`` is the
    URL's: Okta may echo it in a path-less replace)."""
    patch = GroupPatch()
    for index, raw in enumerate(operations_of(body), start=1):
        operation = compat.operation(raw, index)
        try:
            if operation.path is None:
                if operation.op == "remove" or not isinstance(operation.value, dict):
                    raise ScimError.no_target("an operation without a path needs an object value")
                for key, value in compat.echoed_id(operation.value, group_id).items():
                    patch.apply(operation.op, key.removeprefix(CORE_GROUP + ":"), value)
                continue
            path = parse_path(operation.path)
            if path.filter is None:
                patch.apply(operation.op, path.path.full.removeprefix(CORE_GROUP + ":"), operation.value)
            elif path.path.name.lower() == "members" and operation.op == "remove" and isinstance(
                    path.filter, Compare) and path.filter.path.full.lower() == "value" and path.filter.op == "eq":
                patch.apply("remove", "members", [{"value": path.filter.value}])
            else:
                raise ScimError.invalid_path(f"unsupported path {operation.path!r} for a Group")
        except ScimError as error:
            raise labelled(error, f"operation {index} ({operation.op} {operation.path or '(no path)'})") from None
    return UpdateGroup(patch.display_name, patch.external_id, tuple(patch.add), tuple(patch.remove),
                       tuple(patch.displays.items()), remove_all=patch.remove_all)


def parse_group_replace(body: JsonValue) -> UpdateGroup:
    """A Group PUT as the change it makes: every member it does not name leaves."""
    display, external, members = parse_group(body)
    refs = members or []
    return UpdateGroup(display_name=display or "", external_id=external, add=tuple(i for i, _ in refs),
                       displays=tuple((i, d) for i, d in refs if d), remove_all=True)
