"""The groups view and group memberships, folded inline from the group streams."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from domain.events import GROUP_EVENT_TYPES, GroupCreated, GroupDeleted, MembersAdded, MembersRemoved
from domain.group import GroupState, evolve
from domain.identifiers import fold
from eventstore import Envelope
from projections import codec

_COLUMNS = "id, tenant_id, display_name, external_id, deleted, version, created, last_modified"
_BY_ID = f"SELECT {_COLUMNS} FROM groups_view WHERE tenant_id = $1 AND id = $2"
# display_name_folded: the key filters and lookups compare, folded by domain.identifiers.fold.
_BY_DISPLAY_NAME = (f"SELECT {_COLUMNS} FROM groups_view"
                    " WHERE tenant_id = $1 AND display_name_folded = $2 AND NOT deleted ORDER BY created")
_UPSERT = """
INSERT INTO groups_view (id, tenant_id, display_name, external_id, deleted, version, created, last_modified, position,
                         display_name_folded)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (tenant_id, id) DO UPDATE SET display_name = EXCLUDED.display_name, external_id = EXCLUDED.external_id,
    deleted = EXCLUDED.deleted, version = EXCLUDED.version, last_modified = EXCLUDED.last_modified,
    position = EXCLUDED.position, display_name_folded = EXCLUDED.display_name_folded
"""
_REFOLD_READ = "SELECT id, display_name FROM groups_view WHERE tenant_id = $1"
_REFOLD = "UPDATE groups_view SET display_name_folded = $3 WHERE tenant_id = $1 AND id = $2"
_ADD = """
INSERT INTO group_members (group_id, user_id, tenant_id, display)
SELECT $1, m.user_id, $3, m.display FROM unnest($2::uuid[], $4::text[]) AS m(user_id, display)
ON CONFLICT (tenant_id, group_id, user_id) DO NOTHING
"""
_REMOVE = "DELETE FROM group_members WHERE tenant_id = $3 AND group_id = $1 AND user_id = ANY($2::uuid[])"
_DROP_MEMBER = "DELETE FROM group_members WHERE tenant_id = $1 AND user_id = $2"
_REMOVE_ALL = "DELETE FROM group_members WHERE tenant_id = $2 AND group_id = $1"
_MEMBERS = """
SELECT group_id, user_id, display FROM group_members WHERE tenant_id = $1 AND group_id = ANY($2::uuid[])
ORDER BY user_id
"""
_USERS_AMONG = "SELECT id FROM users_view WHERE tenant_id = $1 AND NOT deleted AND id = ANY($2::uuid[])"
_MEMBERS_AMONG = """
SELECT user_id FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND user_id = ANY($3::uuid[])
"""
_ALL_MEMBER_IDS = "SELECT user_id FROM group_members WHERE tenant_id = $1 AND group_id = $2"
_GROUPS_OF = """
SELECT m.user_id, g.id, g.display_name
FROM group_members m JOIN groups_view g ON g.tenant_id = m.tenant_id AND g.id = m.group_id
WHERE m.tenant_id = $1 AND m.user_id = ANY($2::uuid[]) AND NOT g.deleted
ORDER BY g.display_name
"""


def state_from_row(row: asyncpg.Record) -> GroupState:
    return GroupState(str(row["id"]), row["version"], row["display_name"], row["external_id"], row["deleted"],
                      row["created"], row["last_modified"])


class GroupsView:
    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        for erased in (e for e in envelopes if e.type == "UserErased"):
            # An erased person is no one's member any more (the group streams keep the ids).
            await connection.execute(_DROP_MEMBER, erased.tenant_id, uuid.UUID(erased.data["user_id"]))
        batch = [e for e in envelopes if e.type in GROUP_EVENT_TYPES]
        if not batch:
            return
        states: dict[str, GroupState | None] = {}
        for envelope in batch:
            event = codec.decode(envelope)
            group_id = event.group_id  # type: ignore[union-attr]
            if group_id not in states and not isinstance(event, GroupCreated):
                row = await connection.fetchrow(_BY_ID, envelope.tenant_id, uuid.UUID(group_id))
                states[group_id] = state_from_row(row) if row is not None else None
            states[group_id] = evolve(states.get(group_id), event, envelope.recorded_at)  # type: ignore[arg-type]
            match event:
                case MembersAdded():
                    displays = list(event.displays) or [None] * len(event.member_ids)
                    await connection.execute(_ADD, uuid.UUID(group_id), [uuid.UUID(i) for i in event.member_ids],
                                             envelope.tenant_id, displays)
                case MembersRemoved():
                    await connection.execute(_REMOVE, uuid.UUID(group_id), [uuid.UUID(i) for i in event.member_ids],
                                             envelope.tenant_id)
                case GroupDeleted():
                    await connection.execute(_REMOVE_ALL, uuid.UUID(group_id), envelope.tenant_id)
            state = states[group_id]
            assert state is not None
            await connection.execute(_UPSERT, uuid.UUID(state.group_id), envelope.tenant_id, state.display_name,
                                     state.external_id, state.deleted, state.version, state.created,
                                     state.last_modified, envelope.position, fold(state.display_name))

    async def live_by_display_name(self, executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID,
                                   display_name: str) -> list[GroupState]:
        return [state_from_row(row) for row in await executor.fetch(_BY_DISPLAY_NAME, tenant_id, fold(display_name))]

    async def load(self, executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID, group_id: str,
                   *, for_update: bool = False) -> GroupState | None:
        try:
            parsed = uuid.UUID(group_id)
        except ValueError:
            return None
        row = await executor.fetchrow(_BY_ID + (" FOR UPDATE" if for_update else ""), tenant_id, parsed)
        return state_from_row(row) if row is not None else None

    async def members(self, executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID,
                      group_ids: list[str]) -> dict[str, list[dict]]:
        """Each group's members, with the ``display`` the client sent when it added them."""
        rows = await executor.fetch(_MEMBERS, tenant_id, [uuid.UUID(g) for g in group_ids])
        found: dict[str, list[dict]] = {g: [] for g in group_ids}
        for row in rows:
            member = {"value": str(row["user_id"])}
            if row["display"]:
                member["display"] = row["display"]
            found[str(row["group_id"])].append(member)
        return found

    async def facts(self, executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID, group_id: str | None,
                    ids: list[str]) -> tuple[frozenset[str], frozenset[str]]:
        """Of ``ids``: which are users of the tenant, and which are members of the group."""
        valid = []
        for i in ids:
            try:
                valid.append(uuid.UUID(i))
            except ValueError:
                continue
        if not valid:
            return frozenset(), frozenset()
        users = await executor.fetch(_USERS_AMONG, tenant_id, valid)
        members = await executor.fetch(_MEMBERS_AMONG, tenant_id, uuid.UUID(group_id), valid) if group_id else []
        return frozenset(str(r["id"]) for r in users), frozenset(str(r["user_id"]) for r in members)

    async def all_member_ids(self, executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID,
                             group_id: str) -> list[str]:
        rows = await executor.fetch(_ALL_MEMBER_IDS, tenant_id, uuid.UUID(group_id))
        return [str(r["user_id"]) for r in rows]

    async def groups_of(self, executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID,
                        user_ids: list[str]) -> dict[str, list[dict]]:
        """Each user's groups, for the read-only ``groups`` attribute of a User."""
        rows = await executor.fetch(_GROUPS_OF, tenant_id, [uuid.UUID(u) for u in user_ids])
        found: dict[str, list[dict]] = {u: [] for u in user_ids}
        for row in rows:
            found[str(row["user_id"])].append({"value": str(row["id"]), "display": row["display_name"],
                                               "type": "direct"})
        return found


async def refold(connection: asyncpg.Connection) -> None:
    """Recompute every group's folded display name, tenant by tenant (after migration 0009)."""
    for tenant in await connection.fetch("SELECT tenant_id FROM tenants ORDER BY tenant_id"):
        rows = await connection.fetch(_REFOLD_READ, tenant["tenant_id"])
        await connection.executemany(_REFOLD, [(tenant["tenant_id"], row["id"], fold(row["display_name"]))
                                               for row in rows])
