"""The users view: one row per user, folded inline from the user streams with ``evolve``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from eventstore import Envelope
from gateway.domain import codec
from gateway.domain.events import UserCreated, UserEvent
from gateway.domain.user import UserState, evolve

USER_EVENT_TYPES = frozenset(
    {"UserCreated", "AttributeChanged", "AttributeIgnored", "UserDeactivated",
     "UserReactivated", "UserDeleted"}
)

STREAM_PREFIX = "user-"

_COLUMNS = """id, tenant_id, version, attributes, active, active_assigned, deleted, login_method,
    permission_profile, created, last_modified, deactivated_at"""

_UPSERT = """
INSERT INTO users_view (id, tenant_id, user_name, user_name_lower, external_id, emails,
    given_name, family_name, display_name, active, deleted, permission_profile, login_method,
    version, created, last_modified, deactivated_at, attributes, position, active_assigned)
VALUES ($1, $2, $3, lower($3), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
        $19)
ON CONFLICT (id) DO UPDATE SET
    user_name = EXCLUDED.user_name, user_name_lower = EXCLUDED.user_name_lower,
    external_id = EXCLUDED.external_id, emails = EXCLUDED.emails,
    given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
    display_name = EXCLUDED.display_name, active = EXCLUDED.active, deleted = EXCLUDED.deleted,
    permission_profile = EXCLUDED.permission_profile, login_method = EXCLUDED.login_method,
    version = EXCLUDED.version, last_modified = EXCLUDED.last_modified,
    deactivated_at = EXCLUDED.deactivated_at, attributes = EXCLUDED.attributes,
    position = EXCLUDED.position, active_assigned = EXCLUDED.active_assigned
"""

_BY_ID = f"SELECT {_COLUMNS} FROM users_view WHERE tenant_id = $1 AND id = $2"
# Writers to one user queue on its row instead of racing and retrying.
_BY_ID_FOR_UPDATE = _BY_ID + " FOR UPDATE"


def stream_id(user_id: str) -> str:
    return f"{STREAM_PREFIX}{user_id}"


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


def _row_values(state: UserState, tenant_id: uuid.UUID, position: int) -> tuple[object, ...]:
    attributes = state.attributes
    name = attributes.get("name") if isinstance(attributes.get("name"), dict) else {}
    emails = [
        str(e["value"]).lower()
        for e in attributes.get("emails") or []  # type: ignore[union-attr]
        if isinstance(e, dict) and isinstance(e.get("value"), str)
    ]
    return (
        uuid.UUID(state.user_id), tenant_id, state.user_name, attributes.get("externalId"),
        emails, name.get("givenName"), name.get("familyName"),  # type: ignore[union-attr]
        attributes.get("displayName"), state.active, state.deleted, state.permission_profile,
        state.login_method, state.version, state.created, state.last_modified,
        state.deactivated_at, attributes, position, state.active_assigned,
    )


class UsersView:
    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        user_envelopes = [e for e in envelopes if e.type in USER_EVENT_TYPES]
        if not user_envelopes:
            return
        by_stream: dict[str, list[Envelope]] = {}
        for envelope in user_envelopes:
            by_stream.setdefault(envelope.stream_id, []).append(envelope)
        rows: list[tuple[object, ...]] = []
        for stream, batch in by_stream.items():
            events: list[UserEvent] = [codec.decode(e) for e in batch]  # type: ignore[misc]
            state: UserState | None = None
            if not isinstance(events[0], UserCreated):
                row = await connection.fetchrow(_BY_ID, batch[0].tenant_id,
                                                uuid.UUID(stream.removeprefix(STREAM_PREFIX)))
                state = state_from_row(row) if row is not None else None
            for event, envelope in zip(events, batch, strict=True):
                state = evolve(state, event, envelope.recorded_at)
            assert state is not None
            rows.append(_row_values(state, batch[-1].tenant_id, batch[-1].position))
        if len(rows) == 1:
            await connection.execute(_UPSERT, *rows[0])
        else:
            # A bulk import's batch: asyncpg pipelines these, one round trip for all.
            await connection.executemany(_UPSERT, rows)

    async def load(self, executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID,
                   user_id: str, *, for_update: bool = False) -> UserState | None:
        try:
            parsed = uuid.UUID(user_id)
        except ValueError:
            return None
        row = await executor.fetchrow(_BY_ID_FOR_UPDATE if for_update else _BY_ID, tenant_id, parsed)
        return state_from_row(row) if row is not None else None
