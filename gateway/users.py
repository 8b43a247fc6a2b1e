"""The users service: reads from the users view, writes through the one write loop.

Handlers call it with parsed commands; it returns states and raises ScimError.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asyncpg import Connection

from domain.events import UserCreated, UserEvent
from domain.json import JsonObject
from domain.streams import USER_PREFIX, user_stream
from domain.user import SSO, Command, CreateUser, UserState, decide, fold
from eventstore import EventStore, ViewWrite
from eventstore.crypto import FieldCipher
from gateway.scim.errors import ScimError
from gateway.scim.listing import ListQuery
from gateway.scim.page_sql import fetch_page
from gateway.scim.users_sql import compile_filter, sort_expression, user_name_key
from gateway.settings import Settings
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
from projections.users_view import UNSTAMPED, UserReads, UsersView, stamp, state_from_row, view_write

_LIST_COLUMNS = """id, tenant_id, version, attributes, active, active_assigned, deleted, login_method,
       permission_profile, created, last_modified, deactivated_at"""


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    start_index: int
    users: list[UserState]


class UserWrites:
    """Users for the write loop (``writes.Resource``): read with the first try unlocked and
    the events and view row appended in one statement; a try that lost a race queues behind
    the user's other writers instead (contended writers take turns rather than retry)."""

    resource_type = "User"
    unique = {"users_view_user_name_key": "a user with this userName already exists"}

    def __init__(self, view: UsersView, reads: UserReads, cipher: FieldCipher | None) -> None:
        self.view = view
        self.reads = reads
        self.cipher = cipher

    def stream_id(self, target_id: str) -> str:
        return user_stream(target_id)

    def in_transaction(self, attempt: int) -> bool:
        return attempt > 0

    async def load(self, connection: Connection | None, principal: Principal, target_id: str, *,
                   locked: bool) -> UserState | None:
        if connection is None:  # the first try: joins the other requests' reads of the moment
            return await self.reads.load(principal.tenant_id, target_id, keys=self.cipher)
        return await self.view.load(connection, principal.tenant_id, target_id, queue=locked, keys=self.cipher)

    async def decide(self, connection: Connection | None, principal: Principal, target_id: str, state: UserState | None,
                     command: Command) -> Sequence[UserEvent]:
        return decide(state, command, principal.policy, datetime.now(UTC))

    def fold(self, state: UserState | None, events: Sequence[UserEvent]) -> UserState:
        new_state = fold([(event, UNSTAMPED) for event in events], state)
        assert new_state is not None
        return new_state

    def view_write(self, state: UserState, principal: Principal) -> ViewWrite:
        return view_write(state, principal.tenant_id)

    def stamp(self, state: UserState, recorded_at: datetime) -> UserState:
        return stamp(state, recorded_at)


class Users:
    def __init__(self, store: EventStore, view: UsersView, settings: Settings) -> None:
        self.store = store
        self.view = view
        self.settings = settings
        self.reads = UserReads(store.pool)
        self.writes = UserWrites(view, self.reads, store.cipher)

    # Reads

    async def get(self, principal: Principal, user_id: str) -> UserState:
        state = await self.reads.load(principal.tenant_id, user_id)
        if state is None or state.deleted:
            raise ScimError.not_found(f"no user with id {user_id}")
        return state

    async def list(self, principal: Principal, query: ListQuery) -> Page:
        if query.filter is not None and (key := user_name_key(query.filter)) is not None:
            # `userName eq "..."`, what Entra asks before every create: a point read of the
            # unique key, coalesced with the other requests' (at most one live user matches).
            state = await self.reads.live_by_user_name_key(principal.tenant_id, key)
            found = [] if state is None else [state]
            return Page(len(found), query.start_index, found if query.count > 0 and query.start_index == 1 else [])
        order = "created, id"
        if query.sort_by:
            direction = "DESC" if query.descending else "ASC"
            order = f"{sort_expression(query.sort_by)} {direction} NULLS LAST, created, id"
        total, rows = await fetch_page(self.store.pool, "users_view", _LIST_COLUMNS, principal.tenant_id, query,
                                       compile_filter, order)
        return Page(total, query.start_index, [state_from_row(row) for row in rows])

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
            state = await write(self.store, self.writes, principal, ctx, user_id, command, create=create)
        except CreateLost as lost:
            created = lost.events[0]
            assert isinstance(created, UserCreated)
            if replayed := await self._replay(principal, ctx, create, created.user_name):
                return replayed, True
            raise ScimError.uniqueness(self.writes.unique["users_view_user_name_key"]) from None
        return state, False

    async def _replay(self, principal: Principal, ctx: RequestContext, create: CreateRequest,
                      user_name: str | None) -> UserState | None:
        """The user this request created before, if it is a retry (``writes.original_create``)."""
        key = create.store_key(principal)
        if key is not None and (keyed := await self.store.read_idempotent(principal.tenant_id, key)):
            user_id = keyed[0].stream_id.removeprefix(USER_PREFIX)
        elif user_name is not None:
            existing = await self.view.load_by_user_name(self.store.pool, principal.tenant_id, user_name)
            if existing is None:
                return None
            user_id = existing.user_id
        else:
            return None
        stream = await self.store.read_stream(principal.tenant_id, user_stream(user_id))
        window = timedelta(hours=self.settings.create_replay_window_hours)
        original = original_create(stream, principal, create, window, datetime.now(UTC))
        state = await self.view.load(self.store.pool, principal.tenant_id, user_id)
        if original is None or state is None or state.deleted:
            return None
        await record_replay(self.store, principal, ctx, "User", user_id, original, create)
        return state

    async def update(self, principal: Principal, ctx: RequestContext, user_id: str, command: Command,
                     if_match: str | None) -> UserState:
        """A PUT, PATCH or DELETE, parsed already: the loop decides it against the live state."""
        return await write(self.store, self.writes, principal, ctx, user_id, command, if_match=if_match)


__all__ = ["ListQuery", "Page", "RequestContext", "UserEvent", "UserWrites", "Users"]
