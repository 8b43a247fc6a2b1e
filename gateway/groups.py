"""The groups service (rfc profile): reads from the groups view, writes through the one write loop."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from asyncpg import Connection

from domain.events import GroupEvent
from domain.group import CreateGroup, GroupCommand, GroupState, MemberFacts, UpdateGroup, decide, evolve
from domain.streams import GROUP_PREFIX, group_stream
from eventstore import EventStore
from gateway.scim.errors import ScimError
from gateway.scim.groups_sql import compile_group_filter
from gateway.scim.listing import ListQuery
from gateway.scim.page_sql import fetch_page
from gateway.tenancy import Principal
from gateway.writes import (
    CreateLost,
    CreateRequest,
    RequestContext,
    create_digest,
    original_create,
    record_replay,
    write,
)
from projections.groups_view import GroupsView, state_from_row
from projections.users_view import UNSTAMPED

_LIST_COLUMNS = "id, tenant_id, display_name, external_id, deleted, version, created, last_modified"


@dataclass(frozen=True, slots=True)
class GroupPage:
    total: int
    start_index: int
    groups: list[GroupState]


class GroupWrites:
    """Groups for the write loop (``writes.Resource``): every try in a transaction that locks the
    group's row, because the decision reads member facts that must hold until the commit; the
    inline projections write the view and the member table."""

    resource_type = "Group"
    unique: dict[str, str] = {}

    def __init__(self, view: GroupsView) -> None:
        self.view = view

    def stream_id(self, target_id: str) -> str:
        return group_stream(target_id)

    def in_transaction(self, attempt: int) -> bool:
        return True

    async def load(self, connection: Connection, principal: Principal, target_id: str, *,
                   locked: bool) -> GroupState | None:
        return await self.view.load(connection, principal.tenant_id, target_id, for_update=locked)

    async def decide(self, connection: Connection, principal: Principal, target_id: str, state: GroupState | None,
                     command: GroupCommand) -> Sequence[GroupEvent]:
        creating = isinstance(command, CreateGroup)
        ids = list(command.members if isinstance(command, CreateGroup) else ())
        if isinstance(command, UpdateGroup):
            ids = [*command.add, *command.remove]
            if command.remove_all:
                # Replace and remove-all need every member: read only when the request asks for it.
                ids += await self.view.all_member_ids(connection, principal.tenant_id, target_id)
        users, members = await self.view.facts(connection, principal.tenant_id, None if creating else target_id, ids)
        return decide(state, command, principal.policy, MemberFacts(users, members))

    def fold(self, state: GroupState | None, events: Sequence[GroupEvent]) -> GroupState:
        for event in events:
            state = evolve(state, event, UNSTAMPED)
        assert state is not None
        return state

    def view_write(self, state: GroupState, principal: Principal) -> None:
        return None

    def stamp(self, state: GroupState, recorded_at: datetime) -> GroupState:
        return replace(state, created=recorded_at if state.created == UNSTAMPED else state.created,
                       last_modified=recorded_at)


class Groups:
    def __init__(self, store: EventStore, view: GroupsView, replay_window: timedelta = timedelta(hours=24)) -> None:
        self.store = store
        self.view = view
        self.replay_window = replay_window
        self.writes = GroupWrites(view)

    async def get(self, principal: Principal, group_id: str) -> GroupState:
        state = await self.view.load(self.store.pool, principal.tenant_id, group_id)
        if state is None or state.deleted:
            raise ScimError.not_found(f"no group with id {group_id}")
        return state

    async def members(self, principal: Principal, group_ids: list[str]) -> dict[str, list[dict]]:
        return await self.view.members(self.store.pool, principal.tenant_id, group_ids)

    async def memberships(self, principal: Principal, user_ids: list[str]) -> dict[str, list[dict]]:
        return await self.view.groups_of(self.store.pool, principal.tenant_id, user_ids)

    async def list(self, principal: Principal, query: ListQuery) -> GroupPage:
        if query.sort_by:
            raise ScimError.invalid_value("Groups are returned in creation order; sortBy is not supported")
        total, rows = await fetch_page(self.store.pool, "groups_view", _LIST_COLUMNS, principal.tenant_id, query,
                                       compile_group_filter, "created, id")
        return GroupPage(total, query.start_index, [state_from_row(r) for r in rows])

    async def create(self, principal: Principal, ctx: RequestContext, display_name: str,
                     external_id: str | None, members: list[tuple[str, str | None]],
                     idempotency_key: str | None = None) -> tuple[GroupState, bool]:
        """The new group, or the existing one when this request retries a create whose answer was
        lost (then nothing is appended); the flag says which. Display names need not be unique,
        so a retry is looked for before creating, not after a conflict."""
        create = CreateRequest(create_digest({"displayName": display_name, "externalId": external_id,
                                              "members": members}), idempotency_key)
        if replayed := await self._replay(principal, ctx, create, display_name):
            return replayed, True
        group_id = str(uuid.uuid4())
        command = CreateGroup(group_id, display_name, external_id, tuple(i for i, _ in members),
                              tuple((i, d) for i, d in members if d))
        try:
            return await write(self.store, self.writes, principal, ctx, group_id, command, create=create), False
        except CreateLost:
            if replayed := await self._replay(principal, ctx, create, display_name):
                return replayed, True
            raise ScimError.conflict("a concurrent create used this Idempotency-Key") from None

    async def _replay(self, principal: Principal, ctx: RequestContext, create: CreateRequest,
                      display_name: str) -> GroupState | None:
        key = create.store_key(principal)
        if key is not None and (keyed := await self.store.read_idempotent(principal.tenant_id, key)):
            candidates = [keyed[0].stream_id.removeprefix(GROUP_PREFIX)]
        else:
            live = await self.view.live_by_display_name(self.store.pool, principal.tenant_id, display_name)
            candidates = [g.group_id for g in live]
        now = datetime.now(UTC)
        for group_id in candidates:
            stream = await self.store.read_stream(principal.tenant_id, group_stream(group_id))
            original = original_create(stream, principal, create, self.replay_window, now)
            state = await self.view.load(self.store.pool, principal.tenant_id, group_id)
            if original is not None and state is not None and not state.deleted:
                await record_replay(self.store, principal, ctx, "Group", group_id, original, create)
                return state
        return None

    async def update(self, principal: Principal, ctx: RequestContext, group_id: str, command: GroupCommand,
                     if_match: str | None) -> GroupState:
        """A PUT, PATCH or DELETE, parsed already: the loop decides it against the live state."""
        return await write(self.store, self.writes, principal, ctx, group_id, command, if_match=if_match)
