"""Per-tenant behaviour: a named profile (DESIGN.md section 4) plus overrides."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from domain.errors import Reason, Rejected

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

PROFILES = ("bynder", "rfc")


@dataclass(frozen=True, slots=True)
class Policy:
    profile: str = "bynder"
    # Attribute paths a create must carry; "emails" means a work (or primary) email.
    required_on_create: tuple[str, ...] = ("emails", "name.givenName", "name.familyName")
    # Attribute paths an update may change; None means every mutable attribute.
    updatable: tuple[str, ...] | None = (
        "userName",
        "emails",
        "name.givenName",
        "name.familyName",
        "active",
    )
    reactivation_cooldown_days: int = 180
    lowercase_identifiers: bool = True
    default_profile: str | None = "default"
    protect_credential_users: bool = True
    offers_groups: bool = False
    user_name_from_email: bool = True
    # RFC 7643 lets a client remove ``active``; the portal's accounts always have a status.
    active_may_be_unassigned: bool = False
    # The gateway extension (loginMethod, permissionProfile) is the portal's, not the RFC's.
    gateway_extension: bool = True
    # PATCH answers: "resource" (200 with it) or "no_content" (204); RFC 7644 3.5.2 allows both.
    patch_response: str = "resource"
    # Group PATCH answers: Microsoft's SCIM guide asks for 204 No Content ("returning a body with
    # a list of all the members isn't advisable"); a request that names attributes still gets 200.
    group_patch_response: str = "no_content"
    # A group member that is no user of the tenant: "reject" (400 invalidValue) or "ignore".
    unknown_members: str = "reject"

    def may_update(self, attribute: str) -> bool:
        if self.updatable is None:
            return True
        return attribute in self.updatable or attribute.split(".", 1)[0] in self.updatable


_PROFILE_DEFAULTS: dict[str, Policy] = {
    "bynder": Policy(),
    "rfc": Policy(
        profile="rfc",
        required_on_create=("userName",),
        updatable=None,
        reactivation_cooldown_days=0,
        lowercase_identifiers=False,
        default_profile=None,
        protect_credential_users=False,
        offers_groups=True,
        user_name_from_email=False,
        active_may_be_unassigned=True,
        gateway_extension=False,
    ),
}

# What `tenant set NAME KEY=VALUE` may change, and how the text is read.
SETTABLE = {
    "profile": str,
    "default_profile": str,
    "reactivation_cooldown_days": int,
    "patch_response": str,
    "group_patch_response": str,
    "unknown_members": str,
}
_CHOICES = {"patch_response": ("resource", "no_content"), "group_patch_response": ("no_content", "resource"),
            "unknown_members": ("reject", "ignore")}


def policy_for(profile: str, overrides: dict[str, str | int | None] | None = None) -> Policy:
    if profile not in _PROFILE_DEFAULTS:
        raise Rejected(
            Reason.INVALID_VALUE, f"unknown profile {profile!r}; expected one of {PROFILES}"
        )
    policy = _PROFILE_DEFAULTS[profile]
    known = {f.name for f in fields(Policy)}
    changes = {k: v for k, v in (overrides or {}).items() if k in known and k != "profile"}
    return replace(policy, **changes) if changes else policy


def parse_setting(key: str, text: str) -> str | int | None:
    if key not in SETTABLE:
        raise Rejected(
            Reason.INVALID_VALUE, f"unknown setting {key!r}; expected one of {sorted(SETTABLE)}"
        )
    if key == "profile" and text not in PROFILES:
        raise Rejected(Reason.INVALID_VALUE, f"unknown profile {text!r}; expected one of {PROFILES}")
    if key == "default_profile" and text in ("", "none"):
        return None
    if key in _CHOICES and text not in _CHOICES[key]:
        raise Rejected(Reason.INVALID_VALUE, f"{key} must be one of {_CHOICES[key]}, not {text!r}")
    try:
        value = SETTABLE[key](text)
    except ValueError as error:
        raise Rejected(Reason.INVALID_VALUE, f"{key} must be an integer, not {text!r}") from error
    if isinstance(value, int) and value < 0:
        raise Rejected(Reason.INVALID_VALUE, f"{key} must not be negative")
    return value
