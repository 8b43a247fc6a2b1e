"""The store's cipher told which values of this gateway's events are personal, and whose
(``eventstore.crypto.Classifier``), and what a value reads once its subject is erased.

What counts as personal is the domain's (``domain.personal``); this module maps it onto
the cipher's plan and its erased marker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.personal import CLEAR, ENTERPRISE, Path, attribute_paths, is_personal, leaves, user_subject
from eventstore.crypto import ERASED, Plan


def erase_value(attribute: str | None, value: Any) -> Any:
    """``value`` of ``attribute`` as it reads once its subject's key is gone."""
    if attribute is None or not is_personal(attribute):
        return value
    return erase_leaves(value)


def erase_leaves(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v if k.lower() in CLEAR else erase_leaves(v) for k, v in value.items()}
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
                fields = [(subject, p) for name in ("old", "new") for p in leaves(data[name], (name,))]
                lookups = {}
                if data["attribute"] in ("userName", "externalId") and isinstance(data["new"], str):
                    lookups[data["attribute"]] = data["new"]
                return Plan(fields, lookups)
            case "AttributeIgnored" if is_personal(data["attribute"]):
                return Plan([(user_subject(data["user_id"]), p) for p in leaves(data["value"], ("value",))])
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
