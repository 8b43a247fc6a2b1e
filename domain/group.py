"""The group aggregate. Its state holds no member list: what a command needs to know about
members (which referenced ids are users of the tenant, which are members already) is read
by the service and handed in, so a change costs the same for 10 members or 100,000."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from domain.errors import Reason, Rejected
from domain.events import (
    GroupCreated,
    GroupDeleted,
    GroupEvent,
    GroupExternalIdChanged,
    GroupRenamed,
    MembersAdded,
    MembersRemoved,
)
from domain.policy import Policy

KEEP = object()  # an attribute the command leaves as it is


@dataclass(frozen=True, slots=True)
class GroupState:
    group_id: str
    version: int
    display_name: str
    external_id: str | None
    deleted: bool
    created: datetime
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What the log says about the ids a command names."""

    users: frozenset[str]  # ids that are (non-deleted) users of the tenant
    members: frozenset[str]  # ids that are members of the group now


@dataclass(frozen=True, slots=True)
class CreateGroup:
    group_id: str
    display_name: str
    external_id: str | None
    members: tuple[str, ...] = ()
    displays: tuple[tuple[str, str], ...] = ()  # (member id, display) as the client sent them


@dataclass(frozen=True, slots=True)
class UpdateGroup:
    display_name: object = KEEP  # str or KEEP
    external_id: object = KEEP  # str, None or KEEP
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    displays: tuple[tuple[str, str], ...] = ()
    # Every member not in ``add`` leaves (a PUT, or a PATCH replacing or removing all members):
    # then the facts name every member of the group.
    remove_all: bool = False


@dataclass(frozen=True, slots=True)
class DeleteGroup:
    pass


GroupCommand = CreateGroup | UpdateGroup | DeleteGroup


def _added(group_id: str, ids: tuple[str, ...], facts: MemberFacts, policy: Policy,
           displays: tuple[tuple[str, str], ...]) -> list[GroupEvent]:
    wanted = list(dict.fromkeys(i for i in ids if i not in facts.members))
    unknown = [i for i in wanted if i not in facts.users]
    if unknown and policy.unknown_members == "reject":
        raise Rejected(Reason.INVALID_VALUE, f"not users of this tenant: {', '.join(unknown[:10])}"
                       + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""))
    new = tuple(i for i in wanted if i in facts.users)
    shown = dict(displays)
    return [MembersAdded(group_id, new, tuple(shown.get(i) for i in new))] if new else []


def decide(state: GroupState | None, command: GroupCommand, policy: Policy, facts: MemberFacts) -> list[GroupEvent]:
    match command:
        case CreateGroup():
            if not command.display_name:
                raise Rejected(Reason.INVALID_VALUE, "displayName is required")
            events: list[GroupEvent] = [GroupCreated(command.group_id, command.display_name, command.external_id)]
            return events + _added(command.group_id, command.members, MemberFacts(facts.users, frozenset()), policy,
                                   command.displays)
        case _ if state is None or state.deleted:
            raise Rejected(Reason.NOT_FOUND, "group not found")
        case UpdateGroup():
            events = []
            if command.display_name is not KEEP and command.display_name != state.display_name:
                if not command.display_name:
                    raise Rejected(Reason.INVALID_VALUE, "displayName is required")
                events.append(GroupRenamed(state.group_id, state.display_name, str(command.display_name)))
            if command.external_id is not KEEP and command.external_id != state.external_id:
                events.append(GroupExternalIdChanged(state.group_id, state.external_id, command.external_id))  # type: ignore[arg-type]
            leaving = command.remove
            if command.remove_all:
                leaving = (*leaving, *sorted(facts.members.difference(command.add)))
            removed = tuple(dict.fromkeys(i for i in leaving if i in facts.members))
            if removed:
                events.append(MembersRemoved(state.group_id, removed))
            remaining = MemberFacts(facts.users, facts.members - set(removed))
            return events + _added(state.group_id, command.add, remaining, policy, command.displays)
        case DeleteGroup():
            return [GroupDeleted(state.group_id)]
    raise ValueError(f"unknown command {command!r}")


def evolve(state: GroupState | None, event: GroupEvent, at: datetime) -> GroupState:
    if isinstance(event, GroupCreated):
        return GroupState(event.group_id, 1, event.display_name, event.external_id, False, at, at)
    if state is None:
        raise ValueError(f"{event.type} before GroupCreated")
    bumped = replace(state, version=state.version + 1, last_modified=at)
    match event:
        case GroupRenamed():
            return replace(bumped, display_name=event.new)
        case GroupExternalIdChanged():
            return replace(bumped, external_id=event.new)
        case GroupDeleted():
            return replace(bumped, deleted=True)
    return bumped  # membership lives in the group_members table, not in the state
