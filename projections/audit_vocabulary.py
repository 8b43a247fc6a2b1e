"""What each event means to an auditor: one action word, its target, the change, the actor.

The audit projector (``projections.audit``) and the replay tool (``gateway.replay``) both
describe events through ``audit_entry``, on the decoded event (``projections.codec.decode``,
so upcasters apply), so a row of the audit trail and a line of a timeline always use the
same word for the same event. The words are the audit trail's, as documented in
docs/audit.md; request events (refusals, no-op writes, replayed creates) have words of their
own but no audit trail row: they are the provisioning log's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.events import (
    EVENT_TYPES,
    AttributeChanged,
    AttributeIgnored,
    DomainEvent,
    GroupCreated,
    GroupDeleted,
    GroupExternalIdChanged,
    GroupRenamed,
    MembersAdded,
    MembersRemoved,
    RequestRejected,
    RequestReplayed,
    RequestSkipped,
    TenantCreated,
    TenantPolicyChanged,
    TokenIssued,
    TokenRevoked,
    TokenRotated,
    UserCreated,
    UserDeactivated,
    UserDeleted,
    UserErased,
    UserReactivated,
)
from domain.json import JsonValue
from eventstore import Envelope
from projections import codec

# Every action word of the audit trail (the export's ``action=`` filter accepts these).
TRAIL_ACTIONS = frozenset({
    "create", "update", "ignored_attribute", "deactivate", "reactivate", "delete", "user.erased",
    "group_create", "group_rename", "group_update", "members_added", "members_removed", "group_delete",
    "token_issued", "token_revoked", "token_rotated", "tenant_created", "tenant_policy_changed",
})
# Request events: in timelines and the provisioning log (as its ``result``), never in the trail.
REQUEST_ACTIONS = {"RequestRejected": "refused", "RequestSkipped": "no_change", "RequestReplayed": "replayed"}
REQUEST_RESULTS = {"RequestRejected": "failure", "RequestSkipped": "skipped", "RequestReplayed": "replayed"}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made the request: the token, its description and its owner (from the metadata)."""

    token_id: str | None
    owner: str | None
    description: str | None

    @classmethod
    def of(cls, metadata: dict[str, Any]) -> Actor:
        actor = metadata.get("actor") or {}
        return cls(actor.get("token_id") or None, actor.get("owner"), actor.get("token_description"))

    def label(self) -> str:
        return f"{self.description or 'token'} {self.token_id or '-'} (owner {self.owner or 'unknown'})"


@dataclass(frozen=True, slots=True)
class Change:
    attribute: str | None
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One event as an auditor reads it: the audit trail's row, the timeline's line."""

    event_id: uuid.UUID
    position: int
    recorded_at: datetime
    tenant_id: uuid.UUID
    action: str
    user_id: str | None  # the user it is about: its own stream's, or a request's target
    attribute: str | None
    old: JsonValue
    new: JsonValue
    # What a person reads as the change: a create lists each value it set.
    changes: tuple[Change, ...]
    detail: str | None  # for people: a refusal's answer, a deactivation's cause
    result: str  # "success", or a request event's "failure", "skipped", "replayed"
    actor: Actor
    request_id: str | None
    client_request_id: str | None  # the caller's X-Request-Id, for correlation only
    source_ip: str | None
    user_agent: str | None

    @property
    def in_trail(self) -> bool:
        """Whether the audit trail keeps a row for it (request events are the provisioning log's)."""
        return self.action in TRAIL_ACTIONS


@dataclass(frozen=True, slots=True)
class _Meaning:
    action: str
    user_id: str | None = None
    attribute: str | None = None
    old: JsonValue = None
    new: JsonValue = None
    detail: str | None = None
    changes: tuple[Change, ...] | None = None  # None: the one change (attribute, old, new), if any


def _meaning(event: DomainEvent) -> _Meaning:
    match event:
        case UserCreated():
            new: dict[str, JsonValue] = {**event.attributes, "active": event.active}
            return _Meaning("create", event.user_id, new=new,
                            changes=tuple(Change(k, None, v) for k, v in sorted(new.items())))
        case AttributeChanged():
            return _Meaning("update", event.user_id, event.attribute, event.old, event.new)
        case AttributeIgnored():
            return _Meaning("ignored_attribute", event.user_id, event.attribute, new=event.value)
        case UserDeactivated():
            return _Meaning("deactivate", event.user_id, "active", True, False, detail=f"via {event.reason}")
        case UserReactivated():
            return _Meaning("reactivate", event.user_id, "active", False, True)
        case UserDeleted():
            return _Meaning("delete", event.user_id)
        case UserErased():
            return _Meaning("user.erased", event.user_id, new={"reason": event.reason, "ticket": event.ticket},
                            detail=f"reason: {event.reason}" + (f"; ticket {event.ticket}" if event.ticket else ""),
                            changes=())
        case GroupCreated():
            return _Meaning("group_create", None, "displayName", new={
                "displayName": event.display_name, "externalId": event.external_id, "id": event.group_id})
        case GroupRenamed():
            return _Meaning("group_rename", None, "displayName", event.old, event.new)
        case GroupExternalIdChanged():
            return _Meaning("group_update", None, "externalId", event.old, event.new)
        case MembersAdded():
            return _Meaning("members_added", None, "members",
                            new={"group_id": event.group_id, "member_ids": list(event.member_ids)})
        case MembersRemoved():
            return _Meaning("members_removed", None, "members",
                            old={"group_id": event.group_id, "member_ids": list(event.member_ids)})
        case GroupDeleted():
            return _Meaning("group_delete", new={"group_id": event.group_id})
        case TokenIssued():
            return _Meaning("token_issued", new={
                "token_id": event.token_id, "owner": event.owner, "description": event.description,
                "scopes": list(event.scopes), "expires_at": event.expires_at})
        case TokenRevoked():
            return _Meaning("token_revoked", new={"token_id": event.token_id})
        case TokenRotated():
            return _Meaning("token_rotated", new={
                "token_id": event.token_id, "previous_valid_until": event.previous_valid_until,
                "expires_at": event.expires_at})
        case TenantCreated():
            return _Meaning("tenant_created", new={"name": event.name, "profile": event.profile})
        case TenantPolicyChanged():
            return _Meaning("tenant_policy_changed", None, event.setting, event.old, event.new)
        case RequestRejected():
            answer = f"{event.status} {event.scim_type or ''} {event.detail}".strip()
            return _Meaning(REQUEST_ACTIONS[event.type], event.target_id,
                            detail=f"{event.method} {event.path} -> {answer}")
        case RequestSkipped():
            return _Meaning(REQUEST_ACTIONS[event.type], event.target_id, detail=f"{event.method} {event.path}")
        case RequestReplayed():
            return _Meaning(REQUEST_ACTIONS[event.type], event.target_id, detail=(
                f"{event.method} {event.path} -> {event.status}, answered as request "
                f"{event.original_request_id} (matched by {event.matched_by})"))
    raise AssertionError(f"no audit meaning for {type(event).__name__}")  # a new event type: add it above


def _changes(meaning: _Meaning) -> tuple[Change, ...]:
    if meaning.changes is not None:
        return meaning.changes
    if meaning.attribute is not None:
        return (Change(meaning.attribute, meaning.old, meaning.new),)
    if isinstance(meaning.new, dict):  # a token's or a group's facts, one per key
        return tuple(Change(k, None, v) for k, v in meaning.new.items())
    return ()


def audit_entry(envelope: Envelope) -> AuditEntry | None:
    """The event in ``envelope`` as an auditor reads it; None for a type this gateway does not know."""
    if envelope.type not in EVENT_TYPES:
        return None
    meaning = _meaning(codec.decode(envelope))
    metadata = envelope.metadata
    return AuditEntry(
        event_id=envelope.event_id, position=envelope.position, recorded_at=envelope.recorded_at,
        tenant_id=envelope.tenant_id, action=meaning.action, user_id=meaning.user_id,
        attribute=meaning.attribute, old=meaning.old, new=meaning.new, changes=_changes(meaning),
        detail=meaning.detail, result=REQUEST_RESULTS.get(envelope.type, "success"), actor=Actor.of(metadata),
        request_id=metadata.get("request_id"), client_request_id=metadata.get("client_request_id"),
        source_ip=metadata.get("source_ip"), user_agent=metadata.get("user_agent"))
