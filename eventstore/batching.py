"""What concurrent requests ask of PostgreSQL at the same moment, sent together: point reads
(``PointReads``: the single-row reads asked for in one turn of the event loop go as one
statement) and one tenant's appends (``GroupAppends``: one pipeline, one commit).

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


class GroupAppends:
    """One tenant's concurrent one-statement appends (the same statement, different
    parameters), sent together as one atomic pipeline: asyncpg's ``fetchmany`` runs them in
    one implicit transaction, so they cost one round trip and one commit (one WAL flush).

    Each tenant's appends already commit one after another, behind the tenant's head row
    (eventstore 0007), so a second batch could only queue behind the first: one batch per
    tenant and statement is out at a time, and what arrives meanwhile gathers into the next.
    If the batch fails (a userName taken, say) it is rolled back as a whole, and each of its
    appends is sent again alone, so each gets exactly the answer it would have had alone.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._groups: dict[tuple[uuid.UUID, str], _Group] = {}

    async def append(self, tenant_id: uuid.UUID, sql: str, parameters: tuple[object, ...],
                     event_ids: frozenset[uuid.UUID]) -> list[asyncpg.Record]:
        """The rows ``sql`` returns for these parameters (those whose ``event_id`` is one of
        ``event_ids``), as if it had been run alone in autocommit."""
        key = (tenant_id, sql)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        future: asyncio.Future[list[asyncpg.Record]] = asyncio.get_running_loop().create_future()
        group.pending.append((parameters, event_ids, future))
        self._schedule(key, group)
        return await future

    def _schedule(self, key: tuple[uuid.UUID, str], group: _Group) -> None:
        if group.pending and not group.scheduled and group.in_flight is None:
            group.scheduled = True
            asyncio.get_running_loop().call_soon(self._flush, key, group)

    def _flush(self, key: tuple[uuid.UUID, str], group: _Group) -> None:
        group.scheduled = False
        # A writer that gave up before its turn (a request timeout) is not written.
        batch = [member for member in group.pending[:MAX_BATCH] if not member[2].done()]
        del group.pending[:MAX_BATCH]
        if not batch:
            self._schedule(key, group)
            return
        task = asyncio.get_running_loop().create_task(self._send(key[0], key[1], batch))
        group.in_flight = task
        task.add_done_callback(lambda _done: self._done(key, group))

    def _done(self, key: tuple[uuid.UUID, str], group: _Group) -> None:
        group.in_flight = None
        self._schedule(key, group)
        if group.in_flight is None and not group.pending and not group.scheduled and self._groups.get(key) is group:
            del self._groups[key]

    async def _send(self, tenant_id: uuid.UUID, sql: str, batch: list[_Member]) -> None:
        with tenant_scope(tenant_id):
            try:
                async with self._pool.acquire() as connection:
                    if len(batch) == 1:
                        await _alone(connection, sql, batch[0])
                        return
                    try:
                        rows = await connection.fetchmany(sql, [parameters for parameters, _, _ in batch])
                    except (asyncpg.PostgresError, asyncpg.InterfaceError):
                        # Rolled back as a whole: each append again on its own, for its own answer.
                        for member in batch:
                            await _alone(connection, sql, member)
                        return
            except asyncio.CancelledError:
                for _, _, future in batch:
                    future.cancel()
                raise
            except Exception as error:  # no connection, or it broke: every writer hears why
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                return
        for _, event_ids, future in batch:
            if not future.done():
                future.set_result([row for row in rows if row["event_id"] in event_ids])


_Member = tuple[tuple[object, ...], frozenset[uuid.UUID], "asyncio.Future[list[asyncpg.Record]]"]


async def _alone(connection: asyncpg.Connection, sql: str, member: _Member) -> None:
    parameters, _, future = member
    try:
        rows = await connection.fetch(sql, *parameters)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        if not future.done():
            future.set_exception(error)
        return
    if not future.done():
        future.set_result(rows)


@dataclass(slots=True)
class _Group:
    pending: list[_Member] = field(default_factory=list)
    scheduled: bool = False
    in_flight: asyncio.Task[None] | None = None
