"""The user aggregate: ``decide`` turns a command into events, ``evolve`` folds them into state.

Replay, the users view and the tests all fold with the same ``evolve``. Times come from
the envelope (the database clock), so ``evolve`` takes the event's ``recorded_at``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from domain import attributes, identifiers, patch
from domain.errors import Reason, Rejected
from domain.events import (
    AttributeChanged,
    AttributeIgnored,
    UserCreated,
    UserDeactivated,
    UserDeleted,
    UserErased,
    UserEvent,
    UserReactivated,
)
from domain.json import JsonObject, JsonValue
from domain.policy import Policy

SSO = "sso"
CREDENTIALS = "credentials"


@dataclass(frozen=True, slots=True)
class UserState:
    user_id: str
    version: int
    attributes: JsonObject  # the SCIM attributes but id, meta, schemas, active and read-only ones
    active: bool
    deleted: bool
    login_method: str
    permission_profile: str | None
    created: datetime
    last_modified: datetime
    deactivated_at: datetime | None = None
    # False once a client removed ``active`` (RFC profile): shown as absent, status unchanged.
    active_assigned: bool = True

    @property
    def user_name(self) -> str:
        return str(self.attributes.get("userName", ""))


# Commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateUser:
    user_id: str
    attributes: JsonObject
    active: bool | None
    login_method: str = SSO


@dataclass(frozen=True, slots=True)
class UpdateUser:
    """A PUT (or a change made on the console): the full new attributes."""

    attributes: JsonObject
    active: bool | None
    via: str  # "put" or "patch"
    unassign_active: bool = False


@dataclass(frozen=True, slots=True)
class PatchUser:
    """A PATCH: what it changes, parsed and validated; applied to the state by ``decide``."""

    operations: tuple[patch.PatchOperation, ...]


@dataclass(frozen=True, slots=True)
class DeleteUser:
    pass


Command = CreateUser | UpdateUser | PatchUser | DeleteUser


# decide ---------------------------------------------------------------------------------


def decide(state: UserState | None, command: Command, policy: Policy, now: datetime) -> list[UserEvent]:
    match command:
        case CreateUser():
            return _create(state, command, policy)
        case UpdateUser():
            return _update(_existing(state), command, policy, now)
        case PatchUser():
            return _patch(_existing(state), command, policy, now)
        case DeleteUser():
            return _delete(_existing(state), policy)


def _existing(state: UserState | None) -> UserState:
    if state is None or state.deleted:
        raise Rejected(Reason.NOT_FOUND, "user not found")
    return state


def normalise(document: JsonObject, policy: Policy) -> JsonObject:
    """Identifiers case-folded where the policy says so (userName and email values), by the
    same rule that keys them for lookup and uniqueness (``identifiers.fold``)."""
    if not policy.lowercase_identifiers:
        return document
    result = dict(document)
    if isinstance(result.get("userName"), str):
        result["userName"] = identifiers.fold(str(result["userName"]))
    emails = result.get("emails")
    if isinstance(emails, list):
        result["emails"] = [
            {**e, "value": identifiers.fold(e["value"])}
            if isinstance(e, dict) and isinstance(e.get("value"), str) else e
            for e in emails
        ]
    return result


def work_email(document: JsonObject) -> str | None:
    """The work email, else the primary one, else the only one."""
    emails = [e for e in document.get("emails") or [] if isinstance(e, dict) and e.get("value")]  # type: ignore[union-attr]
    for test in (lambda e: str(e.get("type", "")).lower() == "work",
                 lambda e: e.get("primary") is True,
                 lambda e: len(emails) == 1):
        for email in emails:
            if test(email):
                return str(email["value"])
    return None


def _missing(document: JsonObject, policy: Policy) -> list[str]:
    missing = []
    for path in policy.required_on_create:
        if path == "emails":
            if work_email(document) is None:
                missing.append("emails (a work or primary email)")
        elif attributes.get(document, path) in (None, ""):
            missing.append(path)
    return missing


def _create(state: UserState | None, command: CreateUser, policy: Policy) -> list[UserEvent]:
    if state is not None:
        raise Rejected(Reason.UNIQUENESS, "a user with this id already exists")
    document = normalise(command.attributes, policy)
    missing = _missing(document, policy)
    if not document.get("userName"):
        # The portal identifies people by email: without a userName, the work email is it.
        email = work_email(document) if policy.user_name_from_email else None
        if email:
            document = {**document, "userName": email}
        elif "userName" not in missing:
            missing.insert(0, "userName")
    if missing:
        raise Rejected(Reason.INVALID_VALUE, "missing required attribute(s): " + ", ".join(missing))
    return [
        UserCreated(
            user_id=command.user_id,
            user_name=str(document["userName"]),
            attributes=document,
            active=True if command.active is None else command.active,
            login_method=command.login_method,
            permission_profile=policy.default_profile if command.login_method == SSO else None,
        )
    ]


def _update(state: UserState, command: UpdateUser, policy: Policy, now: datetime) -> list[UserEvent]:
    document = normalise(command.attributes, policy)
    events: list[UserEvent] = []
    differences = attributes.diff(state.attributes, document)
    # Everything the request changes is allowed (the usual case): the document is the result.
    applied = document
    if not all(policy.may_update(path) for path, _old, _new in differences):
        applied = state.attributes
        for path, _old, new in differences:
            if policy.may_update(path):
                applied = attributes.with_value(applied, path, new)
            else:
                events.append(AttributeIgnored(state.user_id, path, new))
    missing = _missing(applied, policy)
    if not applied.get("userName") and "userName" not in missing:
        missing.insert(0, "userName")
    if missing:
        raise Rejected(Reason.INVALID_VALUE, "required attribute(s) cannot be removed: " + ", ".join(missing))
    kept = differences if not events else attributes.diff(state.attributes, applied)
    changes = [AttributeChanged(state.user_id, path, old, new) for path, old, new in kept]
    events = changes + events
    if command.unassign_active:
        if not policy.active_may_be_unassigned:
            raise Rejected(Reason.MUTABILITY, "active cannot be removed; replace it with false")
        if state.active_assigned:
            events.append(AttributeChanged(state.user_id, "active", state.active, None))
    elif command.active is not None and command.active != state.active:
        if not policy.may_update("active"):
            events.append(AttributeIgnored(state.user_id, "active", command.active))
        elif command.active:
            events.append(_reactivate(state, policy, now))
        else:
            events.append(_deactivate(state, policy, command.via))
    elif command.active is not None and not state.active_assigned:
        events.append(AttributeChanged(state.user_id, "active", None, command.active))
    return events


def _patch(state: UserState, command: PatchUser, policy: Policy, now: datetime) -> list[UserEvent]:
    """The operations applied to the user's document (``active`` in it while assigned), then
    decided as the update they amount to: the same rules as a PUT, and the same events."""
    document = dict(state.attributes)
    if state.active_assigned:
        document["active"] = state.active
    patched = patch.apply(document, command.operations)
    active = patched.pop("active", None)
    return _update(state, UpdateUser(patched, active if isinstance(active, bool) else None, "patch",
                                     unassign_active=active is None and state.active_assigned), policy, now)


def _deactivate(state: UserState, policy: Policy, reason: str) -> UserDeactivated:
    if policy.protect_credential_users and state.login_method == CREDENTIALS:
        raise Rejected(
            Reason.MUTABILITY,
            "this user signs in with credentials, not SSO; it cannot be deactivated through SCIM",
        )
    return UserDeactivated(state.user_id, reason)


def _reactivate(state: UserState, policy: Policy, now: datetime) -> UserReactivated:
    if policy.reactivation_cooldown_days and state.deactivated_at is not None:
        allowed_from = state.deactivated_at + timedelta(days=policy.reactivation_cooldown_days)
        if now < allowed_from:
            raise Rejected(
                Reason.INVALID_VALUE,
                f"this user was deactivated on {state.deactivated_at:%Y-%m-%d}; it can be "
                f"reactivated from {allowed_from:%Y-%m-%dT%H:%M:%SZ} "
                f"({policy.reactivation_cooldown_days}-day cooldown, tenant setting "
                f"reactivation_cooldown_days)",
            )
    return UserReactivated(state.user_id)


def _delete(state: UserState, policy: Policy) -> list[UserEvent]:
    events: list[UserEvent] = []
    if state.active:
        events.append(_deactivate(state, policy, "delete"))
    events.append(UserDeleted(state.user_id))
    return events


# evolve ---------------------------------------------------------------------------------


def evolve(state: UserState | None, event: UserEvent, at: datetime) -> UserState:
    if isinstance(event, UserCreated):
        return UserState(
            user_id=event.user_id,
            version=1,
            attributes=event.attributes,
            active=event.active,
            deleted=False,
            login_method=event.login_method,
            permission_profile=event.permission_profile,
            created=at,
            last_modified=at,
            deactivated_at=None if event.active else at,
        )
    if state is None:
        raise ValueError(f"{event.type} before UserCreated")
    # One ``replace`` per event (each costs a whole ``__init__``): the version bump goes with
    # the event's own changes.
    version = state.version + 1
    match event:
        case AttributeChanged() if event.attribute == "active":
            assigned = event.new is not None
            return replace(state, version=version, active_assigned=assigned, last_modified=at,
                           active=bool(event.new) if assigned else state.active)
        case AttributeChanged():
            return replace(
                state,
                version=version,
                attributes=attributes.with_value(state.attributes, event.attribute, event.new),
                last_modified=at,
            )
        case AttributeIgnored():
            return replace(state, version=version)
        case UserDeactivated():
            return replace(state, version=version, active=False, active_assigned=True, deactivated_at=at,
                           last_modified=at)
        case UserReactivated():
            return replace(state, version=version, active=True, active_assigned=True, deactivated_at=None,
                           last_modified=at)
        case UserDeleted():
            return replace(state, version=version, deleted=True, last_modified=at)
        case UserErased():
            # Gone for good: no view row, no SCIM answer but 404; the history stays, [erased].
            return replace(state, version=version, deleted=True, active=False, last_modified=at)
    raise ValueError(f"unknown user event {event!r}")


def fold(events: list[tuple[UserEvent, datetime]], state: UserState | None = None) -> UserState | None:
    for event, at in events:
        state = evolve(state, event, at)
    return state


__all__ = [
    "CreateUser",
    "DeleteUser",
    "JsonValue",
    "PatchUser",
    "UpdateUser",
    "UserState",
    "decide",
    "evolve",
    "fold",
]
