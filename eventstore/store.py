"""Append and read events. SQL for the ``events`` table lives here and, for the append's
own statement, in ``append_sql``; nowhere else."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import asyncpg

from eventstore.append_sql import (
    APPEND_NEW_STREAMS,
    EVENT_COLUMNS,
    MOVED_TO,
    ViewWrite,
    append_statement,
)
from eventstore.batching import GroupAppends
from eventstore.crypto import FieldCipher
from eventstore.directory import tenant_scope
from eventstore.envelope import START, Checkpoint, Envelope, NewEvent
from eventstore.errors import ConcurrencyError, TenantMoved, translate
from eventstore.history import History
from eventstore.subject_keys import insert_new_keys

_COLUMNS = EVENT_COLUMNS

_BY_IDEMPOTENCY_KEY = f"""
SELECT {_COLUMNS} FROM events WHERE tenant_id = $1 AND idempotency_key = $2 ORDER BY position
"""

_READ_STREAM = f"""
SELECT {_COLUMNS} FROM events
WHERE tenant_id = $1 AND stream_id = $2 AND stream_version > $3 AND ($4::bigint IS NULL OR position <= $4)
ORDER BY stream_version
"""

# Only transactions older than the oldest one still running are read: anything at or
# above it may still commit with a smaller position than one already handed out.
# Every tenant at once: a deliberate fan-out, for what replays the whole log in one order
# (an inline projection's rebuild); catch-up projectors read each tenant in its own order.
_READ_ALL = f"""
SELECT {_COLUMNS} FROM events
WHERE (transaction_id, position) > ($1::bigint, $2::bigint)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
ORDER BY transaction_id, position
LIMIT $3
"""

# The same, for one tenant.
_READ_TENANT = f"""
SELECT {_COLUMNS} FROM events
WHERE tenant_id = $4 AND (transaction_id, position) > ($1::bigint, $2::bigint)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
ORDER BY transaction_id, position
LIMIT $3
"""

# One tenant in its own order: gap-free at any time, because the tenant's appends commit in
# tenant_position order (see _APPEND). The catch-up projectors' read.
_READ_TENANT_ORDER = f"""
SELECT {_COLUMNS} FROM events
WHERE tenant_id = $1 AND tenant_position > $2
ORDER BY tenant_position
LIMIT $3
"""

# Everything this transaction can see, late commits included: only safe while the reader
# holds off every writer that matters to it (a projection rebuild's final catch-up, which
# fans out over every tenant).
_READ_ALL_VISIBLE = f"""
SELECT {_COLUMNS} FROM events
WHERE (transaction_id, position) > ($1::bigint, $2::bigint)
ORDER BY transaction_id, position
LIMIT $3
"""

_HEAD = "SELECT coalesce(max(position), 0) FROM events WHERE tenant_id = $1"

class InlineProjection(Protocol):
    """Runs inside the append transaction, so readers see a write as soon as it is acknowledged."""

    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None: ...


async def _refuse_if_moved(connection: Any, rows: list[asyncpg.Record], tenant_id: uuid.UUID) -> None:
    """An append that wrote nothing because the tenant has moved (its head row refused) says so."""
    if not rows and (moved_to := await connection.fetchval(MOVED_TO, tenant_id)) is not None:
        raise TenantMoved(tenant_id, moved_to)


class EventStore(History):
    def __init__(
        self,
        pool: asyncpg.Pool,
        inline_projections: Sequence[InlineProjection] = (),
        on_appended: Callable[[Sequence[Envelope]], None] | None = None,
        cipher: FieldCipher | None = None,
        home_streams: tuple[str, ...] = (),
    ) -> None:
        self.pool = pool
        # Streams of reference data (tenants, tokens: prefixes) kept on the home database
        # whichever tenant they belong to, when the pool routes by tenant (directory.py), and
        # written there even after the tenant's other data moved away.
        self.home_streams = home_streams
        # Seals personal values on the way in and opens them on the way out (eventstore/crypto.py).
        self.cipher = cipher
        self.inline_projections = list(inline_projections)
        # Told about every append once its transaction is committed (metrics, wake-ups).
        self.on_appended = on_appended
        # The hot path's one-statement appends, sent together while others are out.
        self._group = GroupAppends(pool)

    async def append(
        self,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[NewEvent],
        metadata: dict[str, Any],
        *,
        tenant_id: uuid.UUID,
        idempotency_key: str | None = None,
        connection: asyncpg.Connection | None = None,
        view: ViewWrite | None = None,
    ) -> list[Envelope]:
        """Append ``events`` atomically, with the inline projections (or ``view``), and return
        their envelopes.

        ``expected_version`` is the stream's current version (0 for a new stream), or None to
        append whatever the version. A retried append with the same ``idempotency_key``
        writes nothing and returns the envelopes of the first.
        """
        if not events:
            return []
        with self._placed(stream_id):
            try:
                if connection is None and view is not None and idempotency_key is None:
                    envelopes = await self._append_grouped(stream_id, expected_version, events, metadata, tenant_id,
                                                           view)
                    self.committed(envelopes)
                    return envelopes
                if connection is not None:
                    # The caller's transaction decides when this commits; it reports nothing.
                    return await self._append(
                        connection, stream_id, expected_version, events, metadata,
                        tenant_id, idempotency_key, view,
                    )
                async with self.pool.acquire() as acquired:
                    envelopes = await self._append(
                        acquired, stream_id, expected_version, events, metadata,
                        tenant_id, idempotency_key, view,
                    )
                self.committed(envelopes)
                return envelopes
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name == "events_event_id_key" and idempotency_key is not None:
                    # A concurrent retry of the same append won the race: answer as it did.
                    return await self.read_idempotent(tenant_id, idempotency_key)
                raise translate(error, stream_id, expected_version) from error  # type: ignore[misc]
            except Exception as error:
                if (translated := translate(error)) is None:
                    raise
                raise translated from error

    def _reference(self, stream_id: str) -> bool:
        return stream_id.startswith(self.home_streams)

    def _placed(self, stream_id: str) -> AbstractContextManager[None]:
        """Where ``stream_id`` lives: the home database for reference data, else the tenant's."""
        return tenant_scope(None) if self._reference(stream_id) else nullcontext()

    def committed(self, envelopes: Sequence[Envelope]) -> None:
        """Report an append made in a caller's transaction, once that transaction committed."""
        if self.on_appended is not None and envelopes:
            self.on_appended(envelopes)

    async def _prepare(self, executor: Any, stream_id: str, expected_version: int | None,
                       events: Sequence[NewEvent], metadata: dict[str, Any], tenant_id: uuid.UUID,
                       idempotency_key: str | None, view: ViewWrite | None,
                       ) -> tuple[str, tuple[object, ...], list[tuple[str, str, bytes, bytes]]]:
        """The append's statement and parameters, personal values sealed, and the new subjects' keys."""
        datas = [event.data for event in events]
        new_keys: list[tuple[str, str, bytes, bytes]] = []
        if self.cipher is not None:
            sealed = await self.cipher.seal(executor, tenant_id, [(e.event_id, e.type, e.data) for e in events])
            datas, new_keys = sealed.datas, sealed.new_keys
        arguments = (
            stream_id,
            tenant_id,
            [event.event_id for event in events],
            [event.type for event in events],
            [event.schema_version for event in events],
            datas,
            metadata,
            idempotency_key,
            expected_version,
        )
        sql, parameters = append_statement(view, new_keys, arguments, fenced=not self._reference(stream_id))
        return sql, parameters, new_keys

    async def _append_grouped(self, stream_id: str, expected_version: int | None, events: Sequence[NewEvent],
                              metadata: dict[str, Any], tenant_id: uuid.UUID, view: ViewWrite) -> list[Envelope]:
        """The hot path: events, view row (and a new user's key) in one autocommit statement,
        sent with the tenant's other appends of the moment (``batching.GroupAppends``)."""
        statement, parameters, new_keys = await self._prepare(
            self.pool, stream_id, expected_version, events, metadata, tenant_id, None, view)
        rows = await self._group.append(tenant_id, statement, parameters, frozenset(e.event_id for e in events))
        return self._stored(tenant_id, new_keys, await self._appended_or_moved(
            self.pool, rows, stream_id, expected_version, tenant_id, events, metadata))

    async def _append(
        self,
        connection: asyncpg.Connection,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[NewEvent],
        metadata: dict[str, Any],
        tenant_id: uuid.UUID,
        idempotency_key: str | None,
        view: ViewWrite | None,
    ) -> list[Envelope]:
        statement, parameters, new_keys = await self._prepare(
            connection, stream_id, expected_version, events, metadata, tenant_id, idempotency_key, view)
        if view is not None and idempotency_key is None:
            # Events, view row (and a new user's key) in one autocommit statement, on the
            # caller's connection (in its transaction, if it opened one).
            rows = await connection.fetch(statement, *parameters)
            return self._stored(tenant_id, new_keys, await self._appended_or_moved(
                connection, rows, stream_id, expected_version, tenant_id, events, metadata))
        async with connection.transaction():
            if idempotency_key is not None:
                earlier = await connection.fetch(_BY_IDEMPOTENCY_KEY, tenant_id, idempotency_key)
                if earlier:
                    return await self._open(connection, earlier)
            envelopes = await self._appended_or_moved(
                connection, await connection.fetch(statement, *parameters), stream_id, expected_version, tenant_id,
                events, metadata)
            if view is None:
                for projection in self.inline_projections:
                    await projection.apply(connection, envelopes)
        return self._stored(tenant_id, new_keys, envelopes)

    def _stored(self, tenant_id: uuid.UUID, new_keys: list[tuple[str, str, bytes, bytes]],
                envelopes: list[Envelope]) -> list[Envelope]:
        if new_keys and self.cipher is not None:
            self.cipher.remember_new(tenant_id, new_keys)
        return envelopes

    async def _appended_or_moved(self, connection: Any, rows: list[asyncpg.Record], stream_id: str,
                                 expected_version: int | None, tenant_id: uuid.UUID,
                                 events: Sequence[NewEvent], metadata: dict[str, Any]) -> list[Envelope]:
        await _refuse_if_moved(connection, rows, tenant_id)
        return self._appended(rows, stream_id, expected_version, events, metadata, tenant_id)

    @staticmethod
    def _appended(rows: list[asyncpg.Record], stream_id: str, expected_version: int | None,
                  events: Sequence[NewEvent], metadata: dict[str, Any], tenant_id: uuid.UUID) -> list[Envelope]:
        if not rows:
            raise ConcurrencyError(stream_id, expected_version)
        # The caller's plaintext, not the sealed row: nothing above the store sees ciphertext.
        sent = {event.event_id: event for event in events}
        return sorted((Envelope.appended(row, sent[row["event_id"]], stream_id, metadata, tenant_id) for row in rows),
                      key=lambda e: e.position)

    async def _open(self, executor: asyncpg.Pool | asyncpg.Connection,
                    rows: Sequence[asyncpg.Record]) -> list[Envelope]:
        envelopes = [Envelope.from_row(row) for row in rows]
        if self.cipher is None or not envelopes:
            return envelopes
        # The rows were decoded for this read alone: each envelope's data is opened where it is.
        await self.cipher.open(executor, [(e.tenant_id, e.event_id, e.type, e.data) for e in envelopes],
                               in_place=True)
        return envelopes

    async def append_new_streams(
        self,
        streams: Sequence[tuple[str, Sequence[NewEvent]]],
        metadata: dict[str, Any],
        *,
        tenant_id: uuid.UUID,
        connection: asyncpg.Connection,
    ) -> list[Envelope]:
        """Start many streams at once, with the inline projections, in the caller's transaction.

        One statement for the events whatever their number: what a bulk import needs. A
        stream that exists already raises ConcurrencyError and the caller's transaction is
        to be rolled back.
        """
        flat = [(stream, version, event) for stream, events in streams
                for version, event in enumerate(events, start=1)]
        if not flat:
            return []
        try:
            datas = [f[2].data for f in flat]
            new_keys: list[tuple[str, str, bytes, bytes]] = []
            if self.cipher is not None:
                sealed = await self.cipher.seal(connection, tenant_id, [(e.event_id, e.type, e.data) for *_, e in flat])
                datas, new_keys = sealed.datas, sealed.new_keys
                await insert_new_keys(connection, tenant_id, new_keys)
            rows = await connection.fetch(
                APPEND_NEW_STREAMS, tenant_id, [f[0] for f in flat], [f[1] for f in flat],
                [f[2].event_id for f in flat], [f[2].type for f in flat], [f[2].schema_version for f in flat],
                metadata, datas,
            )
            await _refuse_if_moved(connection, rows, tenant_id)
            sent = {event.event_id: (stream, event) for stream, _, event in flat}
            envelopes = sorted((Envelope.appended(row, sent[row["event_id"]][1], sent[row["event_id"]][0], metadata,
                                               tenant_id) for row in rows), key=lambda e: e.position)
            for projection in self.inline_projections:
                await projection.apply(connection, envelopes)
        except Exception as error:
            if (translated := translate(error, "one of the new streams", 0)) is None:
                raise
            raise translated from error
        return self._stored(tenant_id, new_keys, envelopes)

    async def read_idempotent(self, tenant_id: uuid.UUID, idempotency_key: str) -> list[Envelope]:
        rows = await self.pool.fetch(_BY_IDEMPOTENCY_KEY, tenant_id, idempotency_key)
        return await self._open(self.pool, rows)

    async def read_stream(
        self, tenant_id: uuid.UUID, stream_id: str, *, after_version: int = 0, up_to_position: int | None = None
    ) -> list[Envelope]:
        """One of the tenant's streams in order; ``up_to_position`` cuts it at a point of the global log."""
        with self._placed(stream_id):
            rows = await self.pool.fetch(_READ_STREAM, tenant_id, stream_id, after_version, up_to_position)
            return await self._open(self.pool, rows)

    async def read_all(
        self,
        after: Checkpoint = START,
        *,
        limit: int = 1000,
        tenant_id: uuid.UUID | None = None,
        connection: asyncpg.Connection | None = None,
        all_visible: bool = False,
    ) -> list[Envelope]:
        """The next committed events after ``after``, never skipping a late commit.

        With no ``tenant_id``, every tenant's: the projectors' fan-out read.
        """
        executor = connection if connection is not None else self.pool
        if tenant_id is not None:
            if all_visible:
                raise ValueError("all_visible reads are for a rebuild of every tenant")
            rows = await executor.fetch(_READ_TENANT, after.transaction_id, after.position, limit, tenant_id)
        else:
            rows = await executor.fetch(
                _READ_ALL_VISIBLE if all_visible else _READ_ALL, after.transaction_id, after.position, limit)
        return await self._open(executor, rows)

    async def read_tenant(
        self,
        tenant_id: uuid.UUID,
        after: int = 0,
        *,
        limit: int = 1000,
        connection: asyncpg.Connection | None = None,
    ) -> list[Envelope]:
        """The tenant's next committed events after its ``tenant_position`` ``after``, in order.

        Never skips one: a tenant's appends commit in tenant_position order.
        """
        executor = connection if connection is not None else self.pool
        rows = await executor.fetch(_READ_TENANT_ORDER, tenant_id, after, limit)
        return await self._open(executor, rows)

    async def iter_all(
        self,
        after: Checkpoint = START,
        *,
        batch_size: int = 1000,
        tenant_id: uuid.UUID | None = None,
    ) -> AsyncIterator[list[Envelope]]:
        """Batches until the reader has caught up with what is committed now."""
        checkpoint = after
        while True:
            batch = await self.read_all(checkpoint, limit=batch_size, tenant_id=tenant_id)
            if not batch:
                return
            yield batch
            checkpoint = batch[-1].checkpoint

    async def head_position(self, tenant_id: uuid.UUID) -> int:
        """The position of the tenant's latest event (0 before its first)."""
        return await self.pool.fetchval(_HEAD, tenant_id)
