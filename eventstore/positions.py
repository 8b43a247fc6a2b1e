"""Each tenant's head in its own order: the ``tenant_heads`` table's reads.

The append (eventstore/store.py ``_APPEND``) moves a tenant's head in the same statement
that inserts its events; nothing else writes it.
"""

from __future__ import annotations

import uuid

import asyncpg

_HEAD = "SELECT coalesce((SELECT position FROM tenant_heads WHERE tenant_id = $1), 0)"

# Every tenant's head at once: a deliberate fan-out, for projectors looking for work and a
# rebuild deciding where each tenant ends.
_HEADS = "SELECT tenant_id, position FROM tenant_heads"

Executor = asyncpg.Connection | asyncpg.Pool


async def tenant_head(executor: Executor, tenant_id: uuid.UUID) -> int:
    """The tenant_position of the tenant's latest committed event (0 before its first)."""
    return await executor.fetchval(_HEAD, tenant_id)


async def tenant_heads(executor: Executor) -> dict[uuid.UUID, int]:
    """Every tenant's head, as committed now."""
    return {row["tenant_id"]: row["position"] for row in await executor.fetch(_HEADS)}
