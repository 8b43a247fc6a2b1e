"""Append and read events. SQL for the ``events`` table lives here and nowhere else."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import asyncpg

from eventstore.envelope import START, Checkpoint, Envelope, NewEvent
from eventstore.errors import ConcurrencyError, DatabaseUnavailable, ProjectionConflict

_COLUMNS = """position, transaction_id, event_id, tenant_id, stream_id, stream_version,
    type, schema_version, data, metadata, recorded_at"""

# One statement: read the stream's head, and insert only if it is the expected version.
# Two writers that both pass the check collide on (stream_id, stream_version).
_APPEND = f"""
WITH head AS (
    SELECT coalesce(max(stream_version), 0) AS version FROM events WHERE stream_id = $1
)
INSERT INTO events (event_id, tenant_id, stream_id, stream_version, type, schema_version,
                    data, metadata, idempotency_key)
SELECT e.event_id, $2, $1, head.version + e.ord, e.type, e.schema_version, e.data, $7, $8
FROM head,
     unnest($3::uuid[], $4::text[], $5::integer[], $6::jsonb[])
         WITH ORDINALITY AS e(event_id, type, schema_version, data, ord)
WHERE $9::integer IS NULL OR head.version = $9::integer
RETURNING {_COLUMNS}
"""

_BY_IDEMPOTENCY_KEY = f"""
SELECT {_COLUMNS} FROM events WHERE idempotency_key = $1 ORDER BY position
"""

_READ_STREAM = f"""
SELECT {_COLUMNS} FROM events
WHERE stream_id = $1 AND stream_version > $2 AND ($3::bigint IS NULL OR position <= $3)
ORDER BY stream_version
"""

# Only transactions older than the oldest one still running are read: anything at or
# above it may still commit with a smaller position than one already handed out.
_READ_ALL = f"""
SELECT {_COLUMNS} FROM events
WHERE (transaction_id, position) > ($1::bigint, $2::bigint)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
  AND ($4::uuid IS NULL OR tenant_id = $4)
ORDER BY transaction_id, position
LIMIT $3
"""

# Everything this transaction can see, late commits included: only safe while the reader
# holds off every writer that matters to it (a projection rebuild's final catch-up).
_READ_ALL_VISIBLE = f"""
SELECT {_COLUMNS} FROM events
WHERE (transaction_id, position) > ($1::bigint, $2::bigint)
  AND ($4::uuid IS NULL OR tenant_id = $4)
ORDER BY transaction_id, position
LIMIT $3
"""

_HEAD = "SELECT coalesce(max(position), 0) FROM events"


class InlineProjection(Protocol):
    """Runs inside the append transaction, so readers see a write as soon as it is acknowledged."""

    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None: ...


def _envelope(row: asyncpg.Record) -> Envelope:
    return Envelope(
        position=row["position"],
        transaction_id=row["transaction_id"],
        event_id=row["event_id"],
        tenant_id=row["tenant_id"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        type=row["type"],
        schema_version=row["schema_version"],
        data=row["data"],
        metadata=row["metadata"],
        recorded_at=row["recorded_at"],
    )


class EventStore:
    def __init__(
        self, pool: asyncpg.Pool, inline_projections: Sequence[InlineProjection] = ()
    ) -> None:
        self.pool = pool
        self.inline_projections = list(inline_projections)

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
    ) -> list[Envelope]:
        """Append ``events`` atomically, with the inline projections, and return their envelopes.

        ``expected_version`` is the stream's current version (0 for a new stream), or None to
        append whatever the version. A retried append with the same ``idempotency_key``
        writes nothing and returns the envelopes of the first.
        """
        if not events:
            return []
        try:
            if connection is not None:
                return await self._append(
                    connection, stream_id, expected_version, events, metadata,
                    tenant_id, idempotency_key,
                )
            async with self.pool.acquire() as acquired:
                return await self._append(
                    acquired, stream_id, expected_version, events, metadata,
                    tenant_id, idempotency_key,
                )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == "events_stream_version_key":
                raise ConcurrencyError(stream_id, expected_version) from error
            if error.constraint_name == "events_event_id_key" and idempotency_key is not None:
                # A concurrent retry of the same append won the race: answer as it did.
                return await self.read_idempotent(idempotency_key)
            raise ProjectionConflict(error.constraint_name or "", error.detail or "") from error
        except (OSError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError) as error:
            raise DatabaseUnavailable(str(error)) from error

    async def _append(
        self,
        connection: asyncpg.Connection,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[NewEvent],
        metadata: dict[str, Any],
        tenant_id: uuid.UUID,
        idempotency_key: str | None,
    ) -> list[Envelope]:
        async with connection.transaction():
            if idempotency_key is not None:
                earlier = await connection.fetch(_BY_IDEMPOTENCY_KEY, idempotency_key)
                if earlier:
                    return [_envelope(row) for row in earlier]
            rows = await connection.fetch(
                _APPEND,
                stream_id,
                tenant_id,
                [event.event_id for event in events],
                [event.type for event in events],
                [event.schema_version for event in events],
                [event.data for event in events],
                metadata,
                idempotency_key,
                expected_version,
            )
            if not rows:
                raise ConcurrencyError(stream_id, expected_version)
            envelopes = sorted((_envelope(row) for row in rows), key=lambda e: e.position)
            for projection in self.inline_projections:
                await projection.apply(connection, envelopes)
            return envelopes

    async def read_idempotent(self, idempotency_key: str) -> list[Envelope]:
        rows = await self.pool.fetch(_BY_IDEMPOTENCY_KEY, idempotency_key)
        return [_envelope(row) for row in rows]

    async def read_stream(
        self, stream_id: str, *, after_version: int = 0, up_to_position: int | None = None
    ) -> list[Envelope]:
        """One stream in order; ``up_to_position`` cuts it at a point of the global log."""
        rows = await self.pool.fetch(_READ_STREAM, stream_id, after_version, up_to_position)
        return [_envelope(row) for row in rows]

    async def read_all(
        self,
        after: Checkpoint = START,
        *,
        limit: int = 1000,
        tenant_id: uuid.UUID | None = None,
        connection: asyncpg.Connection | None = None,
        all_visible: bool = False,
    ) -> list[Envelope]:
        """The next committed events after ``after``, never skipping a late commit."""
        executor = connection if connection is not None else self.pool
        rows = await executor.fetch(
            _READ_ALL_VISIBLE if all_visible else _READ_ALL,
            after.transaction_id, after.position, limit, tenant_id,
        )
        return [_envelope(row) for row in rows]

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

    async def head_position(self) -> int:
        return await self.pool.fetchval(_HEAD)
