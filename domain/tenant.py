"""Tenants and their tokens: what each administrative command yields."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.errors import Reason, Rejected
from domain.events import TenantCreated, TenantPolicyChanged, TokenIssued, TokenRevoked, TokenRotated
from domain.json import JsonValue
from domain.policy import PROFILES, parse_setting

SCOPES = ("scim:read", "scim:write", "audit:read", "admin")
DEFAULT_SCOPES = ("scim:read", "scim:write")

_TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_OWNER = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True, slots=True)
class TenantState:
    tenant_id: str
    name: str
    profile: str
    settings: dict[str, JsonValue]


def create_tenant(tenant_id: str, name: str, profile: str) -> list[TenantCreated]:
    if not _TENANT_NAME.match(name):
        raise Rejected(
            Reason.INVALID_VALUE,
            f"tenant name {name!r} must be lower-case letters, digits, '.', '_' or '-'",
        )
    if profile not in PROFILES:
        raise Rejected(Reason.INVALID_VALUE, f"unknown profile {profile!r}; expected one of {PROFILES}")
    return [TenantCreated(tenant_id=tenant_id, name=name, profile=profile)]


def change_settings(tenant: TenantState, assignments: dict[str, str]) -> list[TenantPolicyChanged]:
    events = []
    for key, text in assignments.items():
        new = parse_setting(key, text)
        old = tenant.profile if key == "profile" else tenant.settings.get(key)
        if new != old:
            events.append(TenantPolicyChanged(tenant.tenant_id, key, old, new))
    return events


def issue_token(
    token_id: str,
    tenant_id: str,
    owner: str,
    description: str,
    scopes: tuple[str, ...],
    secret_sha256: str,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> list[TokenIssued]:
    _check_expiry(expires_at, now)
    if not _OWNER.match(owner):
        raise Rejected(Reason.INVALID_VALUE, f"owner {owner!r} must be an email address")
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise Rejected(Reason.INVALID_VALUE, f"unknown scope(s) {unknown}; expected some of {SCOPES}")
    return [
        TokenIssued(
            token_id=token_id,
            tenant_id=tenant_id,
            owner=owner,
            description=description,
            scopes=tuple(dict.fromkeys(scopes or DEFAULT_SCOPES)),
            secret_sha256=secret_sha256,
            expires_at=_instant(expires_at),
        )
    ]


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _check_expiry(expires_at: datetime | None, now: datetime | None) -> None:
    if expires_at is not None and expires_at <= (now or datetime.now(UTC)):
        raise Rejected(Reason.INVALID_VALUE, "a token's expiry must be in the future")


def revoke_token(token_id: str, already_revoked: bool) -> list[TokenRevoked]:
    if already_revoked:
        raise Rejected(Reason.CONFLICT, f"token {token_id} is already revoked")
    return [TokenRevoked(token_id=token_id)]


def rotate_token(
    token_id: str,
    revoked: bool,
    secret_sha256: str,
    grace: timedelta,
    expires_at: datetime | None,
    now: datetime,
) -> list[TokenRotated]:
    """A new secret; the old one stays valid for ``grace`` so clients can be switched over."""
    if revoked:
        raise Rejected(Reason.CONFLICT, f"token {token_id} is revoked; issue a new one")
    if grace < timedelta(0):
        raise Rejected(Reason.INVALID_VALUE, "the grace period must not be negative")
    _check_expiry(expires_at, now)
    return [TokenRotated(token_id=token_id, secret_sha256=secret_sha256,
                         previous_valid_until=(now + grace).astimezone(UTC).isoformat(),
                         expires_at=_instant(expires_at))]
