"""The groups service (rfc profile): lock the group's row, gather member facts, decide, append."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.group import CreateGroup, GroupCommand, GroupState, MemberFacts, decide, evolve
from eventstore import EventStore
from gateway.scim.errors import ScimError
from gateway.scim.groups_sql import compile_group_filter
from gateway.scim.listing import ListQuery
from gateway.scim.users_sql import SqlQuery
from gateway.tenancy import Principal
from gateway.writes import (
    CreateRequest,
    RequestContext,
    check_if_match,
    create_digest,
    original_create,
    record_replay,
    recorded_write,
)
from projections.codec import encode_all
from projections.groups_view import STREAM_PREFIX, GroupsView, state_from_row, stream_id

_LIST = """
SELECT id, tenant_id, display_name, external_id, deleted, version, created, last_modified,
       count(*) OVER () AS total
FROM groups_view WHERE tenant_id = $1 AND NOT deleted AND {where}
ORDER BY created, id LIMIT $2 OFFSET $3
"""
_COUNT = """
SELECT count(*) FROM groups_view
WHERE tenant_id = $1 AND NOT deleted AND $2::int >= 0 AND $3::int >= 0 AND {where}
"""


@dataclass(frozen=True, slots=True)
class GroupPage:
    total: int
    start_index: int
    groups: list[GroupState]


class _KeyUsed(Exception):
    """A concurrent create with the same Idempotency-Key appended first."""


class Groups:
    def __init__(self, store: EventStore, view: GroupsView, replay_window: timedelta = timedelta(hours=24)) -> None:
        self.store = store
        self.view = view
        self.replay_window = replay_window

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
        sql = SqlQuery(offset=3)
        where = compile_group_filter(query.filter, sql) if query.filter is not None else "true"
        params = [principal.tenant_id, query.count, query.start_index - 1, *sql.params]
        rows = await self.store.pool.fetch(_LIST.format(where=where), *params) if query.count else []
        total = rows[0]["total"] if rows else await self.store.pool.fetchval(_COUNT.format(where=where), *params)
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
        ids = [i for i, _ in members]
        displays = tuple((i, d) for i, d in members if d)

        def build(group_id: str, _state: GroupState | None, _everyone: list[str]) -> CreateGroup:
            return CreateGroup(group_id, display_name, external_id, tuple(ids), displays)

        try:
            return await self.write(principal, ctx, None, build, referenced=ids, create=create), False
        except _KeyUsed:
            if replayed := await self._replay(principal, ctx, create, display_name):
                return replayed, True
            raise ScimError.conflict("a concurrent create used this Idempotency-Key") from None

    async def _replay(self, principal: Principal, ctx: RequestContext, create: CreateRequest,
                      display_name: str) -> GroupState | None:
        key = create.store_key(principal)
        if key is not None and (keyed := await self.store.read_idempotent(principal.tenant_id, key)):
            candidates = [keyed[0].stream_id.removeprefix(STREAM_PREFIX)]
        else:
            live = await self.view.live_by_display_name(self.store.pool, principal.tenant_id, display_name)
            candidates = [g.group_id for g in live]
        now = datetime.now(UTC)
        for group_id in candidates:
            stream = await self.store.read_stream(principal.tenant_id, stream_id(group_id))
            original = original_create(stream, principal, create, self.replay_window, now)
            state = await self.view.load(self.store.pool, principal.tenant_id, group_id)
            if original is not None and state is not None and not state.deleted:
                await record_replay(self.store, principal, ctx, "Group", group_id, original, create)
                return state
        return None

    async def write(
        self,
        principal: Principal,
        ctx: RequestContext,
        group_id: str | None,
        build: Callable[[str, GroupState | None, list[str]], GroupCommand],
        *,
        referenced: list[str],
        needs_all_members: bool = False,
        if_match: str | None = None,
        create: CreateRequest | None = None,
    ) -> GroupState:
        """Create (``group_id`` None) or change a group; refusals are recorded like users'.

        ``build(group_id, state, all_member_ids)`` parses the request into a command inside the
        write (so a malformed body is recorded too); ``referenced`` are the member ids it names,
        whose facts the decision needs; ``needs_all_members`` reads the whole member list
        (replace, remove all) only when the request asks for it.
        """
        creating = group_id is None
        target = group_id or str(uuid.uuid4())
        return await recorded_write(
            self.store, principal, ctx, "Group", None if creating else target,
            lambda _attempt: self._attempt(principal, ctx, target, creating, build, referenced,
                                           needs_all_members, if_match, create),
            if_match)

    async def _attempt(
        self,
        principal: Principal,
        ctx: RequestContext,
        group_id: str,
        creating: bool,
        build: Callable[[str, GroupState | None, list[str]], GroupCommand],
        referenced: list[str],
        needs_all_members: bool,
        if_match: str | None,
        create: CreateRequest | None,
    ) -> tuple[GroupState, bool]:
        async with self.store.pool.acquire() as connection, connection.transaction():
            state = None
            if not creating:
                state = await self.view.load(connection, principal.tenant_id, group_id, for_update=True)
                if state is None or state.deleted:
                    raise ScimError.not_found(f"no group with id {group_id}")
                check_if_match(state.version, if_match)
            everyone = (await self.view.all_member_ids(connection, principal.tenant_id, group_id)
                        if needs_all_members else [])
            command = build(group_id, state, everyone)
            ids = referenced + everyone
            users, members = await self.view.facts(connection, principal.tenant_id,
                                                   None if creating else group_id, ids)
            events = decide(state, command, principal.policy, MemberFacts(users, members))
            if not events:
                assert state is not None
                return state, False
            envelopes = await self.store.append(
                stream_id(group_id), state.version if state else 0, encode_all(list(events)),
                ctx.metadata(principal) | (create.metadata() if create else {}), tenant_id=principal.tenant_id,
                idempotency_key=create.store_key(principal) if create else None, connection=connection)
            if envelopes[0].stream_id != stream_id(group_id):
                raise _KeyUsed
        self.store.committed(envelopes)
        for event, envelope in zip(events, envelopes, strict=True):
            state = evolve(state, event, envelope.recorded_at)
        assert state is not None
        return state, True

