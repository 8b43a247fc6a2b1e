"""The users service: load state, decide, append with the view, retry on a lost race.

Handlers call it with parsed input; it returns states and raises ScimError.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from domain.events import UserCreated, UserEvent
from domain.json import JsonObject
from domain.user import SSO, Command, CreateUser, UserState, decide, fold
from eventstore import Envelope, EventStore, ProjectionConflict
from gateway.scim.errors import ScimError
from gateway.scim.listing import ListQuery
from gateway.scim.users_sql import SqlQuery, compile_filter, sort_expression
from gateway.settings import Settings
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
from projections.users_view import (
    STREAM_PREFIX,
    UNSTAMPED,
    UserReads,
    UsersView,
    stamp,
    state_from_row,
    stream_id,
    view_write,
)


class _AlreadyCreated(Exception):
    """The create lost to an existing user: its userName is taken, or its Idempotency-Key used."""

    def __init__(self, user_name: str) -> None:
        super().__init__(user_name)
        self.user_name = user_name


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
# The whole WHERE of a `userName eq` filter, as users_sql compiles it.
_BY_USER_NAME_KEY = "(user_name_lower = $4)"
_COUNT = """
SELECT count(*) FROM users_view
WHERE tenant_id = $1 AND NOT deleted AND $2::int >= 0 AND $3::int >= 0 AND {where}
"""


class Users:
    def __init__(self, store: EventStore, view: UsersView, settings: Settings) -> None:
        self.store = store
        self.view = view
        self.settings = settings
        self.reads = UserReads(store.pool)

    # Reads

    async def get(self, principal: Principal, user_id: str) -> UserState:
        state = await self.reads.load(principal.tenant_id, user_id)
        if state is None or state.deleted:
            raise ScimError.not_found(f"no user with id {user_id}")
        return state

    async def list(self, principal: Principal, query: ListQuery) -> Page:
        sql = SqlQuery(offset=3)
        where = compile_filter(query.filter, sql) if query.filter is not None else "true"
        if where == _BY_USER_NAME_KEY:
            # `userName eq "..."`, what Entra asks before every create: a point read of the
            # unique key, coalesced with the other requests' (at most one live user matches).
            state = await self.reads.live_by_user_name_key(principal.tenant_id, sql.params[0])  # type: ignore[arg-type]
            found = [] if state is None else [state]
            return Page(len(found), query.start_index,
                        found if query.count > 0 and query.start_index == 1 else [])
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

    async def create(self, principal: Principal, ctx: RequestContext, attributes: JsonObject,
                     active: bool | None, idempotency_key: str | None = None,
                     login_method: str = SSO) -> tuple[UserState, bool]:
        """The new user, or the existing one when this request retries a create whose answer was
        lost (then nothing is appended); the flag says which."""
        create = CreateRequest(create_digest({"attributes": attributes, "active": active}), idempotency_key)
        if idempotency_key is not None and (replayed := await self._replay(principal, ctx, create, None)):
            return replayed, True
        user_id = str(uuid.uuid4())
        command = CreateUser(user_id, attributes, active, login_method)
        try:
            state = await self._write(principal, ctx, user_id, lambda _state: command, if_match=None,
                                      create=create)
        except _AlreadyCreated as taken:
            if replayed := await self._replay(principal, ctx, create, taken.user_name):
                return replayed, True
            raise ScimError.uniqueness("a user with this userName already exists") from None
        return state, False

    async def _replay(self, principal: Principal, ctx: RequestContext, create: CreateRequest,
                      user_name: str | None) -> UserState | None:
        """The user this request created before, if it is a retry (``writes.original_create``)."""
        key = create.store_key(principal)
        if key is not None and (keyed := await self.store.read_idempotent(principal.tenant_id, key)):
            user_id = keyed[0].stream_id.removeprefix(STREAM_PREFIX)
        elif user_name is not None:
            existing = await self.view.load_by_user_name(self.store.pool, principal.tenant_id, user_name)
            if existing is None:
                return None
            user_id = existing.user_id
        else:
            return None
        stream = await self.store.read_stream(principal.tenant_id, stream_id(user_id))
        window = timedelta(hours=self.settings.create_replay_window_hours)
        original = original_create(stream, principal, create, window, datetime.now(UTC))
        state = await self.view.load(self.store.pool, principal.tenant_id, user_id)
        if original is None or state is None or state.deleted:
            return None
        await record_replay(self.store, principal, ctx, "User", user_id, original, create)
        return state

    async def update(self, principal: Principal, ctx: RequestContext, user_id: str,
                     command: Callable[[UserState], Command], if_match: str | None) -> UserState:
        """``command`` builds the change from the current (live) state: it runs again on a retry."""
        return await self._write(principal, ctx, user_id, command, if_match=if_match)

    async def _write(
        self,
        principal: Principal,
        ctx: RequestContext,
        user_id: str,
        build: Callable[[UserState], Command] | Callable[[None], Command],
        *,
        if_match: str | None,
        create: CreateRequest | None = None,
    ) -> UserState:
        return await recorded_write(
            self.store, principal, ctx, "User", user_id,
            lambda attempt: self._attempt(principal, ctx, user_id, build, if_match, create, attempt), if_match)

    async def _attempt(
        self,
        principal: Principal,
        ctx: RequestContext,
        user_id: str,
        build: Callable[[UserState], Command] | Callable[[None], Command],
        if_match: str | None,
        create: CreateRequest | None,
        attempt: int,
    ) -> tuple[UserState, bool]:
        """One decide/append cycle; returns the new state and whether anything changed.

        The first try reads the user without a lock and appends events and view row in one
        statement: two round trips, no transaction. A try that lost a race queues behind the
        user's other writers instead (contended writers take turns rather than retry).
        """
        if attempt > 0 and create is None:
            async with self.store.pool.acquire() as connection, connection.transaction():
                outcome, envelopes = await self._decide_and_append(principal, ctx, user_id, build, if_match,
                                                                   create, connection)
            self.store.committed(envelopes)  # reported once the transaction has committed
            return outcome
        outcome, _ = await self._decide_and_append(principal, ctx, user_id, build, if_match, create, None)
        return outcome

    async def _decide_and_append(
        self,
        principal: Principal,
        ctx: RequestContext,
        user_id: str,
        build: Callable[[UserState], Command] | Callable[[None], Command],
        if_match: str | None,
        create: CreateRequest | None,
        queued: asyncpg.Connection | None,
    ) -> tuple[tuple[UserState, bool], list[Envelope]]:
        """Without ``queued``, the read and the append each join the other requests' of the
        moment (``UserReads``, ``EventStore.append``); with it, both run on that connection,
        in its transaction, after this user's earlier writers."""
        state = None
        if create is None:
            if queued is not None:
                state = await self.view.load(queued, principal.tenant_id, user_id, queue=True,
                                             keys=self.store.cipher)
            else:
                state = await self.reads.load(principal.tenant_id, user_id, keys=self.store.cipher)
            if state is None or state.deleted:
                raise ScimError.not_found(f"no user with id {user_id}")
            check_if_match(state.version, if_match)
        events = decide(state, build(state), principal.policy, datetime.now(UTC))  # type: ignore[arg-type]
        if not events:
            assert state is not None
            return (state, False), []
        new_state = fold([(event, UNSTAMPED) for event in events], state)
        assert new_state is not None
        try:
            envelopes = await self.store.append(
                stream_id(user_id),
                state.version if state is not None else 0,
                encode_all(list(events)),
                ctx.metadata(principal) | (create.metadata() if create else {}),
                tenant_id=principal.tenant_id,
                idempotency_key=create.store_key(principal) if create else None,
                connection=queued,
                view=view_write(new_state, principal.tenant_id),
            )
        except ProjectionConflict as conflict:
            if conflict.constraint != "users_view_user_name_key":
                raise
            if isinstance(events[0], UserCreated):
                raise _AlreadyCreated(events[0].user_name) from None
            raise ScimError.uniqueness("a user with this userName already exists") from None
        if envelopes[0].stream_id != stream_id(user_id):
            # A concurrent request with the same Idempotency-Key appended first.
            assert isinstance(events[0], UserCreated)
            raise _AlreadyCreated(events[0].user_name)
        return (stamp(new_state, envelopes[0].recorded_at), True), envelopes


def _transaction(connection: asyncpg.Connection, locked: bool) -> contextlib.AbstractAsyncContextManager[object]:
    return connection.transaction() if locked else contextlib.nullcontext()


__all__ = ["ListQuery", "Page", "RequestContext", "UserEvent", "Users"]
