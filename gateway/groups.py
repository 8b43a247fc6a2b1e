"""The groups service (rfc profile): lock the group's row, gather member facts, decide, append."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from eventstore import EventStore
from gateway.domain.codec import encode_all
from gateway.domain.group import GroupCommand, GroupState, MemberFacts, decide, evolve
from gateway.scim.errors import ScimError
from gateway.scim.listing import ListQuery
from gateway.tenancy import Principal
from gateway.writes import RequestContext, check_if_match, recorded_write
from projections.groups_query import compile_group_filter
from projections.groups_view import GroupsView, state_from_row, stream_id
from projections.users_query import SqlQuery

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


class Groups:
    def __init__(self, store: EventStore, view: GroupsView) -> None:
        self.store = store
        self.view = view

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
            lambda: self._attempt(principal, ctx, target, creating, build, referenced, needs_all_members,
                                  if_match),
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
                stream_id(group_id), state.version if state else 0, encode_all(list(events), ctx.request_id),
                ctx.metadata(principal), tenant_id=principal.tenant_id, connection=connection)
        self.store.committed(envelopes)
        for event, envelope in zip(events, envelopes, strict=True):
            state = evolve(state, event, envelope.recorded_at)
        assert state is not None
        return state, True

