"""Catch-up projections: read the log after a stored checkpoint, apply, advance, repeat.

The checkpoint row is locked for the length of each batch, so one process at a time
projects (whichever instance gets there), and a batch and its checkpoint commit together:
a restart mid-batch neither skips nor repeats an event.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from eventstore import Checkpoint, Envelope, EventStore, InlineProjection

log = structlog.get_logger("projections.runner")

_ENSURE = """
INSERT INTO projection_checkpoints (name, transaction_id, position) VALUES ($1, 0, 0)
ON CONFLICT (name) DO NOTHING
"""
_LOCK = "SELECT transaction_id, position FROM projection_checkpoints WHERE name = $1 FOR UPDATE"
_SAVE = """
UPDATE projection_checkpoints SET transaction_id = $2, position = $3, updated_at = now() WHERE name = $1
"""


async def read_whole_transactions(
    store: EventStore, connection: asyncpg.Connection, after: Checkpoint, limit: int, all_visible: bool = False
) -> list[Envelope]:
    """A batch that never ends in the middle of one transaction's events."""
    batch = await store.read_all(after, limit=limit, connection=connection, all_visible=all_visible)
    while len(batch) >= limit:
        more = await store.read_all(batch[-1].checkpoint, limit=limit, connection=connection,
                                    all_visible=all_visible)
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

    async def checkpoint(self) -> Checkpoint:
        row = await self.store.pool.fetchrow(
            "SELECT transaction_id, position FROM projection_checkpoints WHERE name = $1", self.name)
        return Checkpoint(row["transaction_id"], row["position"]) if row else Checkpoint()

    async def catch_up(self) -> int:
        """Project everything committed so far; return how many events were applied."""
        applied = 0
        async with self.store.pool.acquire() as connection:
            await connection.execute(_ENSURE, self.name)
            while True:
                async with connection.transaction():
                    row = await connection.fetchrow(_LOCK, self.name)
                    after = Checkpoint(row["transaction_id"], row["position"])
                    batch = await read_whole_transactions(self.store, connection, after, self.batch_size)
                    if not batch:
                        return applied
                    await self.projection.apply(connection, batch)
                    last = batch[-1].checkpoint
                    await connection.execute(_SAVE, self.name, last.transaction_id, last.position)
                    applied += len(batch)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, idle_seconds: float = 0.5, batch_seconds: float = 0.05) -> None:
        """Keep projecting until cancelled; a write in this process wakes it early, but not
        more often than every ``batch_seconds``, so a busy log is read in larger batches."""
        while True:
            await asyncio.sleep(batch_seconds)
            try:
                await self.catch_up()
            except Exception as error:  # keep serving; the next round retries from the checkpoint
                log.error("projection_failed", projection=self.name, error=type(error).__name__,
                          exc_info=error)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle_seconds)
