"""Domain events: small, immutable, named in the past tense.

Each class carries its ``type`` name and ``schema_version``; (de)serialisation and
upcasting live in ``domain.codec``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, get_args

from domain.json import JsonObject, JsonValue


@dataclass(frozen=True, slots=True)
class TenantCreated:
    type: ClassVar[str] = "TenantCreated"
    schema_version: ClassVar[int] = 1
    tenant_id: str
    name: str
    profile: str


@dataclass(frozen=True, slots=True)
class TenantPolicyChanged:
    type: ClassVar[str] = "TenantPolicyChanged"
    schema_version: ClassVar[int] = 1
    tenant_id: str
    setting: str
    old: JsonValue
    new: JsonValue


@dataclass(frozen=True, slots=True)
class TokenIssued:
    type: ClassVar[str] = "TokenIssued"
    schema_version: ClassVar[int] = 1
    token_id: str
    tenant_id: str
    owner: str
    description: str
    scopes: tuple[str, ...]
    secret_sha256: str
    # RFC 3339; None: valid until revoked. Absent from tokens issued before expiry existed,
    # which is what None means, so the shape needs no new schema version.
    expires_at: str | None = None


@dataclass(frozen=True, slots=True)
class TokenRevoked:
    type: ClassVar[str] = "TokenRevoked"
    schema_version: ClassVar[int] = 1
    token_id: str


@dataclass(frozen=True, slots=True)
class TokenRotated:
    """A new secret for the same token; the previous one works until ``previous_valid_until``."""

    type: ClassVar[str] = "TokenRotated"
    schema_version: ClassVar[int] = 1
    token_id: str
    secret_sha256: str
    previous_valid_until: str
    expires_at: str | None


@dataclass(frozen=True, slots=True)
class UserCreated:
    type: ClassVar[str] = "UserCreated"
    schema_version: ClassVar[int] = 1
    user_id: str
    user_name: str
    attributes: JsonObject
    active: bool
    login_method: str
    permission_profile: str | None


@dataclass(frozen=True, slots=True)
class AttributeChanged:
    type: ClassVar[str] = "AttributeChanged"
    schema_version: ClassVar[int] = 1
    user_id: str
    attribute: str
    old: JsonValue
    new: JsonValue


@dataclass(frozen=True, slots=True)
class AttributeIgnored:
    """The client sent a change the tenant's policy does not apply; kept for the audit trail."""

    type: ClassVar[str] = "AttributeIgnored"
    schema_version: ClassVar[int] = 1
    user_id: str
    attribute: str
    value: JsonValue


@dataclass(frozen=True, slots=True)
class UserDeactivated:
    type: ClassVar[str] = "UserDeactivated"
    schema_version: ClassVar[int] = 1
    user_id: str
    reason: str  # "patch", "put" or "delete"


@dataclass(frozen=True, slots=True)
class UserReactivated:
    type: ClassVar[str] = "UserReactivated"
    schema_version: ClassVar[int] = 1
    user_id: str


@dataclass(frozen=True, slots=True)
class UserDeleted:
    """SCIM tombstone: 404 from now on; the account stays, deactivated."""

    type: ClassVar[str] = "UserDeleted"
    schema_version: ClassVar[int] = 1
    user_id: str


@dataclass(frozen=True, slots=True)
class UserErased:
    """The person's data key was destroyed (GDPR Art. 17): every personal value sealed under it
    reads ``[erased]`` from now on. Never a SCIM write; carries no personal data."""

    type: ClassVar[str] = "UserErased"
    schema_version: ClassVar[int] = 1
    user_id: str
    reason: str
    ticket: str | None = None


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """A write the gateway refused, so failures are in the log too."""

    type: ClassVar[str] = "RequestRejected"
    schema_version: ClassVar[int] = 1
    method: str
    path: str
    resource_type: str
    target_id: str | None
    status: int
    scim_type: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class RequestSkipped:
    """A write that changed nothing (a no-op PATCH), so the provisioning log can say so."""

    type: ClassVar[str] = "RequestSkipped"
    schema_version: ClassVar[int] = 1
    method: str
    path: str
    resource_type: str
    target_id: str | None
    status: int


@dataclass(frozen=True, slots=True)
class RequestReplayed:
    """A retried create answered as the original was (its answer was lost on the way back);
    nothing was appended to the resource's stream."""

    type: ClassVar[str] = "RequestReplayed"
    schema_version: ClassVar[int] = 1
    method: str
    path: str
    resource_type: str
    target_id: str
    status: int
    original_request_id: str
    matched_by: str  # "body" (same token, same canonical body) or "idempotency_key"


@dataclass(frozen=True, slots=True)
class GroupCreated:
    type: ClassVar[str] = "GroupCreated"
    schema_version: ClassVar[int] = 1
    group_id: str
    display_name: str
    external_id: str | None


@dataclass(frozen=True, slots=True)
class GroupRenamed:
    type: ClassVar[str] = "GroupRenamed"
    schema_version: ClassVar[int] = 1
    group_id: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class GroupExternalIdChanged:
    type: ClassVar[str] = "GroupExternalIdChanged"
    schema_version: ClassVar[int] = 1
    group_id: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class MembersAdded:
    """Only the ids added: a change to a 100,000-member group stays as small as the change."""

    type: ClassVar[str] = "MembersAdded"
    schema_version: ClassVar[int] = 1
    group_id: str
    member_ids: tuple[str, ...]
    # The client's ``display`` for each added member, if it sent one (kept and shown back).
    displays: tuple[str | None, ...] = ()


@dataclass(frozen=True, slots=True)
class MembersRemoved:
    type: ClassVar[str] = "MembersRemoved"
    schema_version: ClassVar[int] = 1
    group_id: str
    member_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GroupDeleted:
    type: ClassVar[str] = "GroupDeleted"
    schema_version: ClassVar[int] = 1
    group_id: str


UserEvent = (
    UserCreated
    | AttributeChanged
    | AttributeIgnored
    | UserDeactivated
    | UserReactivated
    | UserDeleted
    | UserErased
)
GroupEvent = GroupCreated | GroupRenamed | GroupExternalIdChanged | MembersAdded | MembersRemoved | GroupDeleted
TenantEvent = TenantCreated | TenantPolicyChanged | TokenIssued | TokenRevoked | TokenRotated
RequestEvent = RequestRejected | RequestSkipped | RequestReplayed
DomainEvent = UserEvent | GroupEvent | TenantEvent | RequestEvent

# Type names by union, derived from the unions above so no list is typed twice.
EVENT_TYPES: dict[str, type[DomainEvent]] = {cls.type: cls for cls in get_args(DomainEvent)}
USER_EVENT_TYPES = frozenset(cls.type for cls in get_args(UserEvent))
GROUP_EVENT_TYPES = frozenset(cls.type for cls in get_args(GroupEvent))
REQUEST_EVENT_TYPES = frozenset(cls.type for cls in get_args(RequestEvent))
