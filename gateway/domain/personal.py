"""What is personal data in an event, and whose: the one list the store's cipher seals by.

Personal: userName, name.*, displayName, nickName, the values of emails, phoneNumbers, ims,
photos and addresses, externalId, employeeNumber and manager, a refusal's detail (it may
echo any of them) and a member's display in a group. Actors, actions, times, ids, attribute
names and the ``type``/``primary`` of multi-valued entries stay in clear. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from eventstore.crypto import ERASED, Path, Plan

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
_PERSONAL = frozenset(name.lower() for name in (
    "userName", "name", "displayName", "nickName", "emails", "phoneNumbers", "ims", "photos", "addresses",
    "externalId", "employeeNumber", "manager",
))
# Sub-attributes of a personal attribute that say nothing about the person.
_CLEAR = frozenset({"type", "primary"})
USER_PREFIX = "user:"


def user_subject(user_id: str) -> str:
    return USER_PREFIX + user_id


_ENTERPRISE_PREFIX = ENTERPRISE.lower() + ":"


def is_personal(attribute: str) -> bool:
    """``name.givenName``, ``emails[type eq "work"].value``, ``urn:...:User:manager.value``..."""
    head = attribute.lower()
    if head in _PERSONAL:
        return True
    if head.startswith(_ENTERPRISE_PREFIX):
        head = head[len(_ENTERPRISE_PREFIX):]
    return head.split(".", 1)[0].split("[", 1)[0] in _PERSONAL


def _leaves(value: Any, path: Path) -> Iterator[Path]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() not in _CLEAR:
                yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    elif value is not None:
        yield path


def attribute_paths(attributes: Mapping[str, Any], prefix: Path = ()) -> Iterator[Path]:
    """The personal leaves of a SCIM attributes object."""
    for key, value in attributes.items():
        if key == ENTERPRISE and isinstance(value, dict):
            for sub, item in value.items():
                if is_personal(sub):
                    yield from _leaves(item, (*prefix, key, sub))
        elif is_personal(key):
            yield from _leaves(value, (*prefix, key))


def erase_value(attribute: str | None, value: Any) -> Any:
    """``value`` of ``attribute`` as it reads once its subject's key is gone."""
    if attribute is None or not is_personal(attribute):
        return value
    return erase_leaves(value)


def erase_leaves(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v if k.lower() in _CLEAR else erase_leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        return [erase_leaves(item) for item in value]
    return None if value is None else ERASED


def erase_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    erased: dict[str, Any] = {}
    for key, value in attributes.items():
        if key == ENTERPRISE and isinstance(value, dict):
            erased[key] = {sub: erase_value(sub, item) for sub, item in value.items()}
        else:
            erased[key] = erase_value(key, value)
    return erased


class PersonalData:
    """The ``eventstore.crypto.Classifier`` for this gateway's events."""

    def plan(self, event_type: str, data: Mapping[str, Any]) -> Plan:
        match event_type:
            case "UserCreated":
                subject = user_subject(data["user_id"])
                attributes = data.get("attributes") or {}
                fields: list[tuple[str | None, Path]] = [(subject, ("user_name",))]
                fields += [(subject, path) for path in attribute_paths(attributes, ("attributes",))]
                lookups = {"userName": str(data["user_name"])}
                if isinstance(attributes.get("externalId"), str):
                    lookups["externalId"] = attributes["externalId"]
                return Plan(fields, lookups, born=subject)
            case "AttributeChanged" if is_personal(data["attribute"]):
                subject = user_subject(data["user_id"])
                fields = [(subject, p) for name in ("old", "new") for p in _leaves(data[name], (name,))]
                lookups = {}
                if data["attribute"] in ("userName", "externalId") and isinstance(data["new"], str):
                    lookups[data["attribute"]] = data["new"]
                return Plan(fields, lookups)
            case "AttributeIgnored" if is_personal(data["attribute"]):
                return Plan([(user_subject(data["user_id"]), p) for p in _leaves(data["value"], ("value",))])
            case "RequestRejected":
                # The detail may echo what the request carried; with no user yet (a refused
                # create) it goes under the tenant's rolling key.
                target = data.get("target_id")
                subject = user_subject(target) if target and data.get("resource_type") == "User" else None
                return Plan([(subject, ("detail",))])
            case "MembersAdded":
                return Plan([(user_subject(member), ("displays", index))
                             for index, (member, display) in enumerate(
                                 zip(data["member_ids"], data.get("displays") or (), strict=False))
                             if display is not None])
        return Plan()

    def erased_subject(self, event_type: str, data: Mapping[str, Any]) -> str | None:
        return user_subject(data["user_id"]) if event_type == "UserErased" else None
