"""Copying one tenant's log to another database, and fencing it off on the old one.

The tenant's ``tenant_heads`` row is the fence: every append of the tenant takes it, so the
mover's lock on it holds every writer of the tenant at the door, and once it is marked moved
the append refuses the tenant (``TenantMoved``). See projections/moves.py for the whole move.
"""

from __future__ import annotations

import uuid

import asyncpg

_COPIED_COLUMNS = """event_id, tenant_id, stream_id, stream_version, type, schema_version, data, metadata,
    idempotency_key, recorded_at, tenant_position"""

# The tenant's events after a tenant_position, as stored (global positions are each database's own).
_SOURCE = f"""
SELECT {_COPIED_COLUMNS} FROM events WHERE tenant_id = $1 AND tenant_position > $2
ORDER BY tenant_position LIMIT $3
"""
_COPIED = "SELECT coalesce(max(tenant_position), 0) FROM events WHERE tenant_id = $1"
_EVENT_AT = "SELECT event_id FROM events WHERE tenant_id = $1 AND tenant_position = $2"
_INSERT = f"""
INSERT INTO events ({_COPIED_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""
_SET_HEAD = """
INSERT INTO tenant_heads (tenant_id, position) VALUES ($1, $2)
ON CONFLICT (tenant_id) DO UPDATE SET position = EXCLUDED.position
"""
# Make sure the fence exists (a tenant with no events yet has no head row), then hold it.
_ENSURE_HEAD = "INSERT INTO tenant_heads (tenant_id, position) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING"
_FENCE = "SELECT moved_to FROM tenant_heads WHERE tenant_id = $1 FOR UPDATE"
_MARK_MOVED = "UPDATE tenant_heads SET moved_to = $2 WHERE tenant_id = $1"


async def copy_tenant(source: asyncpg.Connection, target: asyncpg.Connection, tenant_id: uuid.UUID,
                      batch_size: int = 1000) -> int:
    """Copy what the target lacks of the tenant's committed events, in tenant order; return
    the tenant_position the target now has. Safe to repeat: it resumes where the target is.

    What the target holds of the tenant must be a copy of the source's first events (an earlier,
    interrupted copy). A database the tenant lived on, or holding its tenant and token events
    (the home database), numbers them its own way: copying after them would skip events, so it
    is refused, with nothing written."""
    copied = await target.fetchval(_COPIED, tenant_id)
    if copied and await target.fetchval(_EVENT_AT, tenant_id, copied) != await source.fetchval(
            _EVENT_AT, tenant_id, copied):
        raise ValueError(f"the target holds {copied} event(s) of tenant {tenant_id} that are not a copy of the "
                         "source's: a tenant cannot be moved back to a database it lived on, nor to the home "
                         "database once it has left it")
    while rows := await source.fetch(_SOURCE, tenant_id, copied, batch_size):
        async with target.transaction():
            await target.executemany(_INSERT, [tuple(row) for row in rows])
            copied = rows[-1]["tenant_position"]
            await target.execute(_SET_HEAD, tenant_id, copied)
    return copied


# The tenant's data keys go with its events (eventstore/crypto.py): without them the target
# could not open a sealed value. Wrapped by the same key-encryption key on every database.
_KEYS = "SELECT subject, kek_id, wrapped FROM subject_keys WHERE tenant_id = $1"
_INSERT_KEY = """
INSERT INTO subject_keys (tenant_id, subject, kek_id, wrapped) VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant_id, subject) DO NOTHING
"""


async def copy_keys(source: asyncpg.Connection, target: asyncpg.Connection, tenant_id: uuid.UUID) -> None:
    rows = await source.fetch(_KEYS, tenant_id)
    if rows:
        await target.executemany(_INSERT_KEY, [(tenant_id, *tuple(row)) for row in rows])


async def fence(source: asyncpg.Connection, tenant_id: uuid.UUID) -> None:
    """In the caller's transaction: hold every writer of the tenant on ``source``."""
    await source.execute(_ENSURE_HEAD, tenant_id)
    moved_to = await source.fetchval(_FENCE, tenant_id)
    if moved_to is not None:
        raise ValueError(f"tenant {tenant_id} has already moved to {moved_to!r}")


async def mark_moved(source: asyncpg.Connection, tenant_id: uuid.UUID, target: str) -> None:
    """In the fencing transaction: the tenant's appends on ``source`` are refused from its commit on."""
    await source.execute(_MARK_MOVED, tenant_id, target)
