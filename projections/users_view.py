"""The users view: one row per user, folded inline from the user streams with ``evolve``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import orjson

from domain.events import USER_EVENT_TYPES, UserCreated, UserEvent
from domain.identifiers import fold
from domain.streams import USER_PREFIX, user_stream
from domain.user import UserState, evolve
from eventstore import VIEW_PARAMS_START, Envelope, ViewWrite
from eventstore.batching import PointReads
from eventstore.crypto import ERASED, FieldCipher
from projections import codec
from projections.user_folding import folded_keys

_COLUMNS = """id, tenant_id, version, attributes, active, active_assigned, deleted, login_method,
    permission_profile, created, last_modified, deactivated_at"""

_VIEW_COLUMNS = """(id, tenant_id, user_name, user_name_lower, external_id, emails,
    given_name, family_name, display_name, active, deleted, permission_profile, login_method,
    version, created, last_modified, deactivated_at, attributes, position, active_assigned,
    attributes_folded)"""
# The columns of ``_row_values``, in order, for COPY (a rebuild's fresh table, an import's new users).
ROW_COLUMNS = tuple(name.strip() for name in _VIEW_COLUMNS.strip().strip("()").split(","))
# New users in one batch from which COPY beats the pipelined upsert (its own round trips cost).
_COPY_FROM = 16
_ON_CONFLICT = """
ON CONFLICT (tenant_id, id) DO UPDATE SET
    user_name = EXCLUDED.user_name, user_name_lower = EXCLUDED.user_name_lower,
    external_id = EXCLUDED.external_id, emails = EXCLUDED.emails,
    given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
    display_name = EXCLUDED.display_name, active = EXCLUDED.active, deleted = EXCLUDED.deleted,
    permission_profile = EXCLUDED.permission_profile, login_method = EXCLUDED.login_method,
    version = EXCLUDED.version, last_modified = EXCLUDED.last_modified,
    deactivated_at = EXCLUDED.deactivated_at, attributes = EXCLUDED.attributes,
    position = EXCLUDED.position, active_assigned = EXCLUDED.active_assigned,
    attributes_folded = EXCLUDED.attributes_folded
"""
_UPSERT = f"""
INSERT INTO users_view {_VIEW_COLUMNS}
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
        $20, $21) {_ON_CONFLICT}"""

# The time a write's new state is folded with before the database stamps its events; the
# row written with the append takes the statement's now() (the events' recorded_at) there.
UNSTAMPED = datetime(1970, 1, 1, tzinfo=UTC)  # never a recorded_at: the database clock is later
_UNSTAMPED_SQL = "'1970-01-01 00:00:00+00'"

# The same row, written in the append's own statement (``eventstore.ViewWrite``): parameters
# from $10 (``VIEW_PARAMS_START``), ``_row_values`` without position, which comes from the
# appended events.
_UPSERT_AFTER_APPEND = f"""
INSERT INTO users_view {_VIEW_COLUMNS}
SELECT $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
       CASE WHEN $24::timestamptz = {_UNSTAMPED_SQL} THEN now() ELSE $24 END,
       CASE WHEN $25::timestamptz = {_UNSTAMPED_SQL} THEN now() ELSE $25 END,
       CASE WHEN $26::timestamptz = {_UNSTAMPED_SQL} THEN now() ELSE $26 END,
       $27, (SELECT max(position) FROM appended), $28, $29
WHERE EXISTS (SELECT 1 FROM appended) {_ON_CONFLICT}"""
assert VIEW_PARAMS_START == 10, "renumber _UPSERT_AFTER_APPEND"


# An erased user has no row: its userName is free at once, and nothing of it is left here.
_ERASE = "DELETE FROM users_view WHERE tenant_id = $1 AND id = $2"

_BY_ID = f"SELECT {_COLUMNS} FROM users_view WHERE tenant_id = $1 AND id = $2"
# The same, with the user's wrapped data key, for a writer whose cipher has not cached it:
# the key comes in the read the write makes anyway (eventstore/crypto.py).
_BY_ID_WITH_KEY = """
SELECT v.id, v.tenant_id, v.version, v.attributes, v.active, v.active_assigned, v.deleted, v.login_method,
       v.permission_profile, v.created, v.last_modified, v.deactivated_at, k.kek_id, k.wrapped
FROM users_view v LEFT JOIN subject_keys k ON k.tenant_id = v.tenant_id AND k.subject = 'user:' || v.id::text
WHERE v.tenant_id = $1 AND v.id = $2
"""
# The same two reads for many users at once (``UserReads``): $2 is an array of ids.
_BY_IDS = f"SELECT {_COLUMNS} FROM users_view WHERE tenant_id = $1 AND id = ANY($2::uuid[])"
_BY_IDS_WITH_KEY = _BY_ID_WITH_KEY.replace("v.id = $2", "v.id = ANY($2::uuid[])")
assert _BY_IDS_WITH_KEY != _BY_ID_WITH_KEY
# Live users by folded userName, many at once: the unique key a `userName eq` filter reads.
_BY_USER_NAMES = (f"SELECT {_COLUMNS}, user_name_lower FROM users_view"
                  " WHERE tenant_id = $1 AND user_name_lower = ANY($2::text[]) AND NOT deleted")
# The live user holding a userName: the same fold as the uniqueness index.
_BY_USER_NAME = (f"SELECT {_COLUMNS} FROM users_view"
                 " WHERE tenant_id = $1 AND user_name_lower = $2 AND NOT deleted")
# Writers that lost a race to one user queue here instead of racing again. Not a row lock:
# the one-statement append inserts the events before it writes the view row, and a writer
# holding the row while it inserts events would deadlock against it.
_QUEUE = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


def state_from_row(row: asyncpg.Record) -> UserState:
    return UserState(
        user_id=str(row["id"]),
        version=row["version"],
        attributes=row["attributes"],
        active=row["active"],
        deleted=row["deleted"],
        login_method=row["login_method"],
        permission_profile=row["permission_profile"],
        created=row["created"],
        last_modified=row["last_modified"],
        deactivated_at=row["deactivated_at"],
        active_assigned=row["active_assigned"],
    )


def _row_values(state: UserState, tenant_id: uuid.UUID, position: int,
                version: int | None = None) -> tuple[object, ...]:
    attributes = state.attributes
    user_name_key, emails, given, family, display, folded = folded_keys(state)
    return (
        uuid.UUID(state.user_id), tenant_id, state.user_name, user_name_key, attributes.get("externalId"),
        emails, given, family, display, state.active, state.deleted, state.permission_profile,
        state.login_method, state.version if version is None else version, state.created, state.last_modified,
        state.deactivated_at, attributes, position, state.active_assigned, folded,
    )


def view_write(state: UserState, tenant_id: uuid.UUID) -> ViewWrite:
    """``state`` (folded at UNSTAMPED) as the row the append's own statement writes."""
    values = _row_values(state, tenant_id, 0)
    return ViewWrite(_UPSERT_AFTER_APPEND, values[:18] + values[19:])  # without position


def stamp(state: UserState, recorded_at: datetime) -> UserState:
    """``state`` folded at UNSTAMPED, with the time the database gave its events."""
    return replace(
        state,
        created=recorded_at if state.created == UNSTAMPED else state.created,
        last_modified=recorded_at if state.last_modified == UNSTAMPED else state.last_modified,
        deactivated_at=recorded_at if state.deactivated_at == UNSTAMPED else state.deactivated_at,
    )


def new_user_row(state: UserState, tenant_id: uuid.UUID) -> tuple[object, ...]:
    """A new user's row before its event is stored (no time nor position yet), in a form that
    is cheap to send to another process: ids as text, the two documents as JSON. ``stamped_row``
    completes it once the append returned its event."""
    row = list(_row_values(state, tenant_id, 0))
    row[_ID], row[_TENANT_ID] = state.user_id, str(tenant_id)
    row[_ATTRIBUTES], row[_FOLDED] = orjson.dumps(row[_ATTRIBUTES]), orjson.dumps(row[_FOLDED])
    row[_CREATED] = row[_LAST_MODIFIED] = None  # UNSTAMPED: a new user's times are its event's
    return tuple(row)


_ID, _TENANT_ID, _CREATED, _LAST_MODIFIED, _DEACTIVATED_AT, _ATTRIBUTES, _POSITION, _FOLDED = (
    ROW_COLUMNS.index(name) for name in ("id", "tenant_id", "created", "last_modified", "deactivated_at",
                                         "attributes", "position", "attributes_folded"))


def stamped_row(row: tuple[object, ...], recorded_at: datetime, position: int) -> tuple[object, ...]:
    """A ``new_user_row`` with its event's time and position: the row ``UsersView`` folds
    from that event (the documents go to the jsonb codec as the JSON they are)."""
    stamped = list(row)
    stamped[_CREATED] = stamped[_LAST_MODIFIED] = recorded_at
    if stamped[_DEACTIVATED_AT] == UNSTAMPED:  # created inactive
        stamped[_DEACTIVATED_AT] = recorded_at
    stamped[_ATTRIBUTES] = orjson.Fragment(stamped[_ATTRIBUTES])
    stamped[_FOLDED] = orjson.Fragment(stamped[_FOLDED])
    stamped[_POSITION] = position
    return tuple(stamped)


async def write_rows(connection: asyncpg.Connection, rows: list[tuple[object, ...]],
                     created: list[tuple[object, ...]]) -> None:
    """Upsert ``rows``, and insert ``created`` (users no row exists for yet)."""
    if len(created) >= _COPY_FROM:
        # A bulk import's batch of new users: COPY, the cheapest insert PostgreSQL has. A
        # taken userName fails it as the upsert would (unique index on the folded name).
        await connection.copy_records_to_table("users_view", records=created, columns=ROW_COLUMNS)
    else:
        rows = rows + created
    if len(rows) == 1:
        await connection.execute(_UPSERT, *rows[0])
    elif rows:
        # asyncpg pipelines these, one round trip for all.
        await connection.executemany(_UPSERT, rows)


# Of some folded userNames, those a live user of the tenant has (the view's unique index keys).
_TAKEN = """
SELECT n FROM unnest($2::text[]) AS n
WHERE EXISTS (SELECT 1 FROM users_view v
              WHERE v.tenant_id = $1 AND v.user_name_lower = n AND NOT v.deleted)
"""


async def taken_user_names(executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID,
                           folded: list[str]) -> set[str]:
    """Which of ``folded`` (userNames as ``identifiers.fold`` keys them) a user of the tenant has."""
    return {row["n"] for row in await executor.fetch(_TAKEN, tenant_id, folded)}


class UsersView:
    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        user_envelopes = [e for e in envelopes if e.type in USER_EVENT_TYPES]
        if not user_envelopes:
            return
        by_stream: dict[str, list[Envelope]] = {}
        for envelope in user_envelopes:
            by_stream.setdefault(envelope.stream_id, []).append(envelope)
        rows: list[tuple[object, ...]] = []
        created: list[tuple[object, ...]] = []  # streams this batch starts: no row yet
        for stream, batch in by_stream.items():
            user_id = uuid.UUID(stream.removeprefix(USER_PREFIX))
            if any(e.type == "UserErased" for e in batch):
                await connection.execute(_ERASE, batch[0].tenant_id, user_id)
                continue
            events: list[UserEvent] = [codec.decode(e) for e in batch]  # type: ignore[misc]
            state: UserState | None = None
            if not isinstance(events[0], UserCreated):
                row = await connection.fetchrow(_BY_ID, batch[0].tenant_id, user_id)
                state = state_from_row(row) if row is not None else None
            for event, envelope in zip(events, batch, strict=True):
                state = evolve(state, event, envelope.recorded_at)
            assert state is not None
            if state.user_name == ERASED:
                # Folded from a log whose key is gone (a rebuild after erasure, which reaches the
                # erasure itself in a later batch): the live view has no row either.
                await connection.execute(_ERASE, batch[-1].tenant_id, user_id)
                continue
            (created if isinstance(events[0], UserCreated) else rows).append(
                _row_values(state, batch[-1].tenant_id, batch[-1].position))
        await write_rows(connection, rows, created)

    async def load(self, executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID,
                   user_id: str, *, queue: bool = False, keys: FieldCipher | None = None) -> UserState | None:
        """The user's row; with ``queue`` (inside a transaction) after the writers before us."""
        parsed = _user_uuid(user_id)
        if parsed is None:
            return None
        if queue:
            # A separate statement, so the read below sees what the writer before us committed.
            await executor.execute(_QUEUE, f"{tenant_id}/{user_stream(user_id)}")
        return await _load_by_id(tenant_id, parsed, keys, lambda with_key: executor.fetchrow(
            _BY_ID_WITH_KEY if with_key else _BY_ID, tenant_id, parsed))

    async def load_by_user_name(self, executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID,
                                user_name: str) -> UserState | None:
        row = await executor.fetchrow(_BY_USER_NAME, tenant_id, fold(user_name))
        return state_from_row(row) if row is not None else None


class UserReads:
    """Users by id, read through one pool with concurrent reads coalesced (``eventstore.batching``):
    what a GET and a write's first, unlocked read take."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._plain = PointReads(pool, _BY_IDS, "id")
        self._with_key = PointReads(pool, _BY_IDS_WITH_KEY, "id")
        self._by_user_name = PointReads(pool, _BY_USER_NAMES, "user_name_lower")

    async def live_by_user_name_key(self, tenant_id: uuid.UUID, key: str) -> UserState | None:
        """The live user whose folded userName is ``key`` (``identifiers.fold`` already applied)."""
        row = await self._by_user_name.fetch(tenant_id, key)
        return state_from_row(row) if row is not None else None

    async def load(self, tenant_id: uuid.UUID, user_id: str, *, keys: FieldCipher | None = None) -> UserState | None:
        """The user's row, as ``UsersView.load`` reads it (without queueing)."""
        parsed = _user_uuid(user_id)
        if parsed is None:
            return None
        return await _load_by_id(tenant_id, parsed, keys, lambda with_key: (
            self._with_key if with_key else self._plain).fetch(tenant_id, parsed))


def _user_uuid(user_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(user_id)
    except ValueError:
        return None  # not an id this view can hold: no such user


async def _load_by_id(tenant_id: uuid.UUID, user_id: uuid.UUID, keys: FieldCipher | None,
                      fetch: Callable[[bool], Awaitable[asyncpg.Record | None]]) -> UserState | None:
    """A user's row read by id. With ``keys``, a writer's cipher that has not cached the user's
    data key gets it offered from the same read (``fetch(True)`` joins ``subject_keys``), so
    the write costs no extra round trip for it."""
    subject = f"user:{user_id}"
    with_key = keys is not None and not keys.has(tenant_id, subject)
    row = await fetch(with_key)
    if row is None:
        return None
    if with_key:
        assert keys is not None
        keys.offer(tenant_id, subject, row["kek_id"], row["wrapped"])
    return state_from_row(row)


_TENANT_IDS = "SELECT tenant_id FROM tenants ORDER BY tenant_id"
_REFOLD_PAGE = f"SELECT {_COLUMNS} FROM users_view WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
_REFOLD = """
UPDATE users_view SET user_name_lower = $3, emails = $4, given_name = $5, family_name = $6, display_name = $7,
    attributes_folded = $8
WHERE tenant_id = $1 AND id = $2
"""


async def refold(connection: asyncpg.Connection, batch_size: int = 1000) -> list[str]:
    """Recompute every row's folded keys, tenant by tenant (after migration 0009 changed the rule).

    Returns the ids of users whose folded userName now collides with another live user's:
    those keep their old key, and the operator decides (the log names them).
    """
    collisions: list[str] = []
    for tenant in await connection.fetch(_TENANT_IDS):
        tenant_id, after = tenant["tenant_id"], uuid.UUID(int=0)
        while rows := await connection.fetch(_REFOLD_PAGE, tenant_id, after, batch_size):
            for row in rows:
                user_name_key, emails, given, family, display, folded = folded_keys(state_from_row(row))
                try:
                    async with connection.transaction():
                        await connection.execute(_REFOLD, tenant_id, row["id"], user_name_key, emails, given,
                                                 family, display, folded)
                except asyncpg.UniqueViolationError:
                    collisions.append(str(row["id"]))
            after = rows[-1]["id"]
    return collisions


def rebuilt_row(state: UserState, tenant_id: uuid.UUID, position: int, version: int) -> tuple[object, ...]:
    """The view row of a user folded from its whole stream (``position``: its last event's;
    ``version``: its count of user events, which a fold that skipped some has not counted)."""
    return _row_values(state, tenant_id, position, version)
