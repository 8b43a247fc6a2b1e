"""A tenant's log searched as history: in log order with filters, stream by stream, and the
streams whose events match a value. What replay, erasure and ``audit verify`` read; the
catch-up and append reads are ``store.EventStore``'s own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from eventstore.append_sql import EVENT_COLUMNS
from eventstore.envelope import Envelope

# History, in log order, for one tenant: optionally one stream (or a stream-id prefix), a
# time window, a cut-off position, and one actor's token id.
_HISTORY = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE tenant_id = $1 AND position > $2
  AND ($3::text IS NULL OR stream_id = $3)
  AND ($4::text IS NULL OR starts_with(stream_id, $4))
  AND ($5::timestamptz IS NULL OR recorded_at >= $5)
  AND ($6::timestamptz IS NULL OR recorded_at <= $6)
  AND ($7::bigint IS NULL OR position <= $7)
  AND ($8::text IS NULL OR metadata -> 'actor' ->> 'token_id' = $8)
ORDER BY position
LIMIT $9
"""

# One tenant's streams with a given prefix, stream by stream, each in version order.
_STREAMS = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE tenant_id = $1 AND starts_with(stream_id, $2) AND (stream_id, stream_version) > ($3, $4)
  AND ($5::timestamptz IS NULL OR recorded_at <= $5)
ORDER BY stream_id, stream_version
LIMIT $6
"""

# Streams with an event matching one of the probes: of that type, its data containing the
# probe's object, and the value (any case) at the probe's dotted path.
_FIND_STREAMS = """
SELECT DISTINCT stream_id
FROM events JOIN unnest($2::text[], $3::text[], $4::jsonb[]) AS probe(type, path, contains)
  ON events.type = probe.type
WHERE tenant_id = $1 AND data @> probe.contains
  AND lower(data #>> string_to_array(probe.path, '.')) = lower($5)
"""


class History:
    """The history reads of ``EventStore`` (which supplies the pool and opens sealed values)."""

    pool: Any

    async def _open(self, executor: asyncpg.Pool | asyncpg.Connection,
                    rows: Sequence[asyncpg.Record]) -> list[Envelope]:
        raise NotImplementedError

    async def history(
        self,
        tenant_id: uuid.UUID,
        *,
        stream_id: str | None = None,
        stream_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        up_to_position: int | None = None,
        actor_token_id: str | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[list[Envelope]]:
        """A tenant's past events in log order, in batches (memory stays bounded)."""
        after = 0
        while True:
            rows = await self.pool.fetch(
                _HISTORY, tenant_id, after, stream_id, stream_prefix, since, until, up_to_position,
                actor_token_id, batch_size,
            )
            if not rows:
                return
            yield await self._open(self.pool, rows)
            after = rows[-1]["position"]

    async def streams(
        self, tenant_id: uuid.UUID, stream_prefix: str, *, until: datetime | None = None, batch_size: int = 5000
    ) -> AsyncIterator[list[Envelope]]:
        """A tenant's streams with ``stream_prefix``, one after another, each in version order."""
        after: tuple[str, int] = ("", 0)
        while True:
            rows = await self.pool.fetch(_STREAMS, tenant_id, stream_prefix, *after, until, batch_size)
            if not rows:
                return
            yield await self._open(self.pool, rows)
            after = (rows[-1]["stream_id"], rows[-1]["stream_version"])

    async def find_streams(
        self, tenant_id: uuid.UUID, probes: Sequence[tuple[str, str, dict[str, Any]]], value: str
    ) -> list[str]:
        """Streams with an event matching a probe (type, dotted data path, data it must contain)
        whose value at that path is ``value``, compared case-insensitively."""
        rows = await self.pool.fetch(
            _FIND_STREAMS, tenant_id, [p[0] for p in probes], [p[1] for p in probes], [p[2] for p in probes], value
        )
        return sorted(row["stream_id"] for row in rows)
