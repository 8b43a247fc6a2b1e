"""The users service: load state, decide, append with the view, retry on a lost race.

Handlers call it with parsed input; it returns states and raises ScimError.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from eventstore import EventStore, ProjectionConflict
from gateway.domain.codec import encode_all
from gateway.domain.events import UserEvent
from gateway.domain.user import Command, UserState, decide, evolve
from gateway.scim.errors import ScimError
from gateway.scim.listing import ListQuery
from gateway.settings import Settings
from gateway.tenancy import Principal
from gateway.writes import RequestContext, check_if_match, recorded_write
from projections.users_query import SqlQuery, compile_filter, sort_expression
from projections.users_view import UsersView, state_from_row, stream_id


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    start_index: int
    users: list[UserState]


_LIST = """
SELECT id, tenant_id, version, attributes, active, active_assigned, deleted, login_method, permission_profile,
       created, last_modified, deactivated_at, count(*) OVER () AS total
FROM users_view
WHERE tenant_id = $1 AND NOT deleted AND {where}
ORDER BY {order}
LIMIT $2 OFFSET $3
"""
_COUNT = """
SELECT count(*) FROM users_view
WHERE tenant_id = $1 AND NOT deleted AND $2::int >= 0 AND $3::int >= 0 AND {where}
"""


class Users:
    def __init__(self, store: EventStore, view: UsersView, settings: Settings) -> None:
        self.store = store
        self.view = view
        self.settings = settings

    # Reads

    async def get(self, principal: Principal, user_id: str) -> UserState:
        state = await self.view.load(self.store.pool, principal.tenant_id, user_id)
        if state is None or state.deleted:
            raise ScimError.not_found(f"no user with id {user_id}")
        return state

    async def list(self, principal: Principal, query: ListQuery) -> Page:
        sql = SqlQuery(offset=3)
        where = compile_filter(query.filter, sql) if query.filter is not None else "true"
        params = [principal.tenant_id, query.count, query.start_index - 1, *sql.params]
        if query.count == 0:
            total = await self._count(principal, where, sql)
            return Page(total, query.start_index, [])
        direction = "DESC" if query.descending else "ASC"
        order = "created, id"
        if query.sort_by:
            order = f"{sort_expression(query.sort_by)} {direction} NULLS LAST, created, id"
        rows = await self.store.pool.fetch(_LIST.format(where=where, order=order), *params)
        if rows:
            total = rows[0]["total"]
        else:
            total = await self._count(principal, where, sql)
        return Page(total, query.start_index, [state_from_row(row) for row in rows])

    async def _count(self, principal: Principal, where: str, sql: SqlQuery) -> int:
        # The filter's parameters are numbered from $4: bind $2 and $3 (LIMIT, OFFSET) unused.
        statement = _COUNT.format(where=where)
        return await self.store.pool.fetchval(statement, principal.tenant_id, 0, 0, *sql.params)

    # Writes

    async def create(self, principal: Principal, ctx: RequestContext,
                     command: Callable[[str], Command]) -> UserState:
        user_id = str(uuid.uuid4())
        return await self._write(principal, ctx, user_id, lambda _state: command(user_id),
                                 if_match=None, creating=True)

    async def update(self, principal: Principal, ctx: RequestContext, user_id: str,
                     command: Callable[[UserState], Command], if_match: str | None) -> UserState:
        def build(state: UserState | None) -> Command:
            if state is None or state.deleted:
                raise ScimError.not_found(f"no user with id {user_id}")
            return command(state)

        return await self._write(principal, ctx, user_id, build, if_match=if_match, creating=False)

    async def _write(
        self,
        principal: Principal,
        ctx: RequestContext,
        user_id: str,
        build: Callable[[UserState | None], Command],
        *,
        if_match: str | None,
        creating: bool,
    ) -> UserState:
        return await recorded_write(
            self.store, principal, ctx, "User", user_id,
            lambda: self._attempt(principal, ctx, user_id, build, if_match, creating), if_match)

    async def _attempt(
        self,
        principal: Principal,
        ctx: RequestContext,
        user_id: str,
        build: Callable[[UserState | None], Command],
        if_match: str | None,
        creating: bool,
    ) -> tuple[UserState, bool]:
        """One decide/append cycle; returns the new state and whether anything changed."""
        async with self.store.pool.acquire() as connection, connection.transaction():
            state = None
            if not creating:
                state = await self.view.load(connection, principal.tenant_id, user_id, for_update=True)
            _check_if_match(state, if_match)
            command = build(state)
            events = decide(state, command, principal.policy, datetime.now(UTC))
            if not events:
                assert state is not None
                return state, False
            try:
                envelopes = await self.store.append(
                    stream_id(user_id),
                    state.version if state is not None else 0,
                    encode_all(list(events), ctx.request_id),
                    ctx.metadata(principal),
                    tenant_id=principal.tenant_id,
                    connection=connection,
                )
            except ProjectionConflict as conflict:
                if conflict.constraint == "users_view_user_name_key":
                    raise ScimError.uniqueness("a user with this userName already exists") from None
                raise
        self.store.committed(envelopes)
        for event, envelope in zip(events, envelopes, strict=True):
            state = evolve(state, event, envelope.recorded_at)
        assert state is not None
        return state, True




def _check_if_match(state: UserState | None, if_match: str | None) -> None:
    if state is not None:
        check_if_match(state.version, if_match)



__all__ = ["ListQuery", "Page", "RequestContext", "UserEvent", "Users"]
