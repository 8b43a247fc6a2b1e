"""Catch-up projections: read each tenant's events after its stored checkpoint, apply, advance.

A checkpoint is kept per (projection, tenant), as a tenant_position. A projector claims a
tenant's checkpoint row with ``FOR UPDATE SKIP LOCKED`` for the length of one batch, so
several projector processes share the tenants (whichever gets there), one tenant is projected
by one of them at a time, in its own order, and a batch and its checkpoint commit together: a
restart mid-batch neither skips nor repeats an event. Reading in tenant order never skips a
late commit: a tenant's appends commit in tenant_position order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid

import asyncpg
import structlog

from eventstore import Checkpoint, Envelope, EventStore, InlineProjection
from eventstore.errors import unavailable

log = structlog.get_logger("projections.runner")

# While its database is down a runner retries at most this far apart.
MAX_RETRY_SECONDS = 5.0

# The tenants whose log is ahead of this projection: a deliberate fan-out over the heads.
_BEHIND = """
SELECT h.tenant_id FROM tenant_heads AS h
LEFT JOIN projection_tenant_checkpoints AS c ON c.tenant_id = h.tenant_id AND c.name = $1
WHERE h.position > coalesce(c.tenant_position, 0)
"""
_ENSURE = """
INSERT INTO projection_tenant_checkpoints (tenant_id, name, tenant_position)
SELECT tenant_id, $2, 0 FROM unnest($1::uuid[]) AS t(tenant_id)
ON CONFLICT (tenant_id, name) DO NOTHING
"""
_CLAIM = """
SELECT tenant_position FROM projection_tenant_checkpoints WHERE tenant_id = $1 AND name = $2
FOR UPDATE SKIP LOCKED
"""
_WAIT = """
SELECT tenant_position FROM projection_tenant_checkpoints WHERE tenant_id = $1 AND name = $2 FOR UPDATE
"""
_SAVE = """
UPDATE projection_tenant_checkpoints SET tenant_position = $3, updated_at = now()
WHERE tenant_id = $1 AND name = $2
"""
_POSITIONS = "SELECT tenant_id, tenant_position FROM projection_tenant_checkpoints WHERE name = $1"


async def read_whole_transactions(
    store: EventStore, connection: asyncpg.Connection, after: Checkpoint, limit: int, all_visible: bool = False
) -> list[Envelope]:
    """A batch of the global log that never ends in the middle of one transaction's events."""
    batch = await store.read_all(after, limit=limit, connection=connection, all_visible=all_visible)
    while len(batch) >= limit:
        more = await store.read_all(batch[-1].checkpoint, limit=limit, connection=connection,
                                    all_visible=all_visible)
        tail = [e for e in more if e.transaction_id == batch[-1].transaction_id]
        batch.extend(tail)
        if len(tail) < len(more) or not more:
            break
    return batch


async def read_whole_appends(store: EventStore, connection: asyncpg.Connection, tenant_id: uuid.UUID,
                             after: int, limit: int) -> list[Envelope]:
    """A batch of one tenant's order that never ends in the middle of one append's events
    (the audit projection folds an append into one provisioning row)."""
    batch = await store.read_tenant(tenant_id, after, limit=limit, connection=connection)
    while len(batch) >= limit:
        more = await store.read_tenant(tenant_id, batch[-1].tenant_position, limit=limit, connection=connection)
        tail = [e for e in more if e.transaction_id == batch[-1].transaction_id]
        batch.extend(tail)
        if len(tail) < len(more) or not more:
            break
    return batch


class CatchUpRunner:
    def __init__(self, store: EventStore, name: str, projection: InlineProjection,
                 batch_size: int = 2000) -> None:
        self.store = store
        self.name = name
        self.projection = projection
        self.batch_size = batch_size
        self._wake = asyncio.Event()

    async def positions(self) -> dict[uuid.UUID, int]:
        """Each tenant's checkpoint: the tenant_position projected so far."""
        rows = await self.store.pool.fetch(_POSITIONS, self.name)
        return {row["tenant_id"]: row["tenant_position"] for row in rows}

    async def catch_up(self, *, wait_for_others: bool = True) -> int:
        """Project everything committed so far; return how many events this call applied.

        Tenants another projector holds are skipped at first; with ``wait_for_others`` they
        are then waited for, so that on return everything committed before the call is
        projected (what a reader of the projection needs). The background loop does not wait:
        the other projector is doing that work.
        """
        applied = 0
        async with self.store.pool.acquire() as connection:
            while True:
                behind = [row["tenant_id"] for row in await connection.fetch(_BEHIND, self.name)]
                if not behind:
                    return applied
                await connection.execute(_ENSURE, behind, self.name)
                # Each projector walks the tenants from its own random start: fewer collisions.
                random.shuffle(behind)
                progressed = 0
                for tenant_id in behind:
                    progressed += await self._batch(connection, tenant_id, wait=False)
                if not progressed:
                    if not wait_for_others:
                        return applied  # what is left is claimed by other projectors
                    for tenant_id in behind:
                        progressed += await self._batch(connection, tenant_id, wait=True)
                    if not progressed:
                        return applied
                applied += progressed

    async def catch_up_tenant(self, tenant_id: uuid.UUID) -> int:
        """Project one tenant up to what is committed now, waiting for a projector that holds it."""
        applied = 0
        async with self.store.pool.acquire() as connection:
            await connection.execute(_ENSURE, [tenant_id], self.name)
            while applied_now := await self._batch(connection, tenant_id, wait=True):
                applied += applied_now
        return applied

    async def _batch(self, connection: asyncpg.Connection, tenant_id: uuid.UUID, *, wait: bool) -> int:
        async with connection.transaction():
            after = await connection.fetchval(_WAIT if wait else _CLAIM, tenant_id, self.name)
            if after is None:
                return 0
            batch = await read_whole_appends(self.store, connection, tenant_id, after, self.batch_size)
            if not batch:
                return 0
            await self.projection.apply(connection, batch)
            await connection.execute(_SAVE, tenant_id, self.name, batch[-1].tenant_position)
            return len(batch)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, idle_seconds: float = 0.5, batch_seconds: float = 0.05) -> None:
        """Keep projecting until cancelled; a write in this process wakes it early, but not
        more often than every ``batch_seconds``, so a busy log is read in larger batches.

        While its database cannot be reached it says so once and retries on a backoff, deaf to
        wake-ups: every write to the other databases would otherwise send it to fail again (and
        log a traceback) while it is down."""
        down_for = 0.0
        while True:
            await asyncio.sleep(batch_seconds)
            try:
                await self.catch_up(wait_for_others=False)
            except Exception as error:  # keep serving; the next round retries from the checkpoint
                if not unavailable(error):
                    log.error("projection_failed", projection=self.name, error=type(error).__name__,
                              exc_info=error)
                else:
                    if not down_for:
                        log.warning("projection_database_unavailable", projection=self.name,
                                    error=type(error).__name__)
                    down_for = min(max(down_for * 2, idle_seconds), MAX_RETRY_SECONDS)
                    await asyncio.sleep(down_for)
                    continue
            if down_for:
                log.info("projection_database_back", projection=self.name)
                down_for = 0.0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle_seconds)
