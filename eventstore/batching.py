"""Point reads coalesced: the single-row reads asked for in one turn of the event loop go to
PostgreSQL as one statement.

Under load most of a point read's cost here is not PostgreSQL's work but the round trip: a
pool checkout, a send and a receive, and the wake-ups behind them. Thirty-two concurrent GETs
by id that arrive together cost one round trip instead of thirty-two. Nothing waits for a
batch to fill: the first read of a turn schedules the statement for the end of that turn
(``call_soon``), so a lone read costs what it did. Only while ``MAX_IN_FLIGHT`` statements
are already out do new reads gather, and they go as soon as one comes back (as a group
commit gathers commits behind a WAL flush). Each read still sees only rows committed after
it was asked for.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from eventstore.directory import tenant_scope

# One statement carries at most this many keys; a turn that asks for more sends several.
MAX_BATCH = 256
# Statements out at once per reader; reads asked for while they are gather into the next.
MAX_IN_FLIGHT = 2


class PointReads:
    """Rows of one table by key within a tenant.

    ``sql`` takes the tenant as ``$1`` and the keys as an array ``$2`` and returns each
    found row with its key in ``key_column``; a key with no row reads as None. Tenants are
    batched apart: one tenant's slow database (a shard) never holds another's reads.
    """

    def __init__(self, pool: Any, sql: str, key_column: str) -> None:
        self._pool = pool
        self._sql = sql
        self._key_column = key_column
        self._tenants: dict[uuid.UUID, _TenantReads] = {}

    async def fetch(self, tenant_id: uuid.UUID, key: Hashable) -> asyncpg.Record | None:
        reads = self._tenants.get(tenant_id)
        if reads is None:
            reads = self._tenants[tenant_id] = _TenantReads()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        reads.pending.setdefault(key, []).append(future)
        self._schedule(tenant_id, reads)
        return await future

    def _schedule(self, tenant_id: uuid.UUID, reads: _TenantReads) -> None:
        if reads.pending and not reads.scheduled and len(reads.in_flight) < MAX_IN_FLIGHT:
            reads.scheduled = True
            asyncio.get_running_loop().call_soon(self._flush, tenant_id, reads)

    def _flush(self, tenant_id: uuid.UUID, reads: _TenantReads) -> None:
        reads.scheduled = False
        waiting, reads.pending = reads.pending, {}
        keys = list(waiting)
        for start in range(0, len(keys), MAX_BATCH):
            chunk = {key: waiting[key] for key in keys[start:start + MAX_BATCH]}
            task = asyncio.get_running_loop().create_task(self._read(tenant_id, chunk))
            reads.in_flight.add(task)
            task.add_done_callback(lambda done: self._done(tenant_id, reads, done))

    def _done(self, tenant_id: uuid.UUID, reads: _TenantReads, task: asyncio.Task[None]) -> None:
        reads.in_flight.discard(task)
        self._schedule(tenant_id, reads)
        if not reads.in_flight and not reads.pending and self._tenants.get(tenant_id) is reads:
            del self._tenants[tenant_id]

    async def _read(self, tenant_id: uuid.UUID, waiting: dict[Hashable, list[asyncio.Future[Any]]]) -> None:
        try:
            # The batch runs in the context of whichever read scheduled it: name the tenant
            # again, so a sharded pool routes it to this tenant's database.
            with tenant_scope(tenant_id):
                rows = await self._pool.fetch(self._sql, tenant_id, list(waiting))
        except asyncio.CancelledError:  # shutting down: the readers are cancelled with us
            for future in _futures(waiting):
                future.cancel()
            raise
        except Exception as error:  # every reader gets the failure its own read would have
            for future in _futures(waiting):
                if not future.done():
                    future.set_exception(error)
            return
        found = {row[self._key_column]: row for row in rows}
        for key, futures in waiting.items():
            row = found.get(key)
            for future in futures:
                if not future.done():  # a reader that timed out or was cancelled is gone
                    future.set_result(row)


@dataclass(slots=True)
class _TenantReads:
    pending: dict[Hashable, list[asyncio.Future[Any]]] = field(default_factory=dict)
    scheduled: bool = False
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)


def _futures(waiting: dict[Hashable, list[asyncio.Future[Any]]]) -> list[asyncio.Future[Any]]:
    return [future for futures in waiting.values() for future in futures]
