"""The users view rebuilt set-based: every user stream read once, in stream order, folded in
memory with the domain's ``evolve``, and written with COPY into the fresh table.

The catch-up rebuild applies the log in global order, batch by batch, and so reads each user's
row back whenever the user's stream spans two batches, and upserts it once per batch. Here a
stream is folded from its first event to its last in one go and written once: no per-event or
per-user round trip. Sealed values are opened with the store's cipher, as every reader does;
an erased user (a ``UserErased``, or values whose key is gone) gets no row, as in the live view.

It reads what the gap-free catch-up reader would return now (transactions below the oldest
running one) and returns that reader's checkpoint, so the caller's locked catch-up continues
exactly after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg

from domain.events import USER_EVENT_TYPES, UserEvent
from domain.streams import USER_PREFIX
from domain.user import UserState, evolve
from eventstore import Checkpoint, Envelope, EventStore
from eventstore.crypto import ERASED
from projections import codec
from projections.rebuild_bound import read_bound
from projections.users_view import ROW_COLUMNS, rebuilt_row

Progress = Callable[[int, int], None]

_COUNT_BELOW = "SELECT count(*) FROM public.events WHERE transaction_id < $1"
# Stream order, by the (tenant_id, stream_id, stream_version) index; ``^@`` is starts_with.
# An AttributeChanged that the stream's next user event overwrites (the same attribute, and
# neither value null) is left out: ``with_value(with_value(d, p, x), p, y)`` equals
# ``with_value(d, p, y)`` for non-null x and y, and the later event sets ``last_modified``
# again, so all the fold loses is the one it adds to ``version``, which the caller restores
# from ``ordinal`` (the event's place among the stream's user events). "active" is kept:
# its fold reads the state before it. Null is never sealed (eventstore/crypto.py), so
# ``'null'`` compares in the stored row as in the opened one.
_USER_EVENTS = f"""
SELECT position, event_id, tenant_id, stream_id, type, schema_version, data, recorded_at, ordinal
FROM (
    SELECT position, event_id, tenant_id, stream_id, stream_version, type, schema_version, data, recorded_at,
           row_number() OVER stream AS ordinal,
           lead(type) OVER stream AS next_type,
           lead(data -> 'attribute') OVER stream AS next_attribute,
           lead(data -> 'new') OVER stream AS next_new
    FROM public.events
    WHERE stream_id ^@ '{USER_PREFIX}' AND type = ANY($2::text[]) AND transaction_id < $1
    WINDOW stream AS (PARTITION BY tenant_id, stream_id ORDER BY stream_version)
) AS e
WHERE next_type IS NULL  -- the stream's last event (the comparisons below would be null)
   OR NOT (type = 'AttributeChanged' AND next_type = 'AttributeChanged'
           AND data -> 'attribute' = next_attribute AND data ->> 'attribute' <> 'active'
           AND data -> 'new' <> 'null'::jsonb AND next_new <> 'null'::jsonb)
ORDER BY tenant_id, stream_id, stream_version
"""
_FETCH = 20_000  # rows per cursor round trip
_COPY = 20_000  # rows per COPY


def _envelope(row: asyncpg.Record, data: dict[str, Any]) -> Envelope:
    # Without metadata: the view does not read it, and decoding it is a large part of a read.
    # ``stream_version`` carries the ordinal among the stream's user events (what ``version`` counts).
    return Envelope(position=row["position"], transaction_id=0, event_id=row["event_id"],
                    tenant_id=row["tenant_id"], stream_id=row["stream_id"], stream_version=row["ordinal"],
                    type=row["type"], schema_version=row["schema_version"], data=data, metadata={},
                    recorded_at=row["recorded_at"])


def _fold(stream: Sequence[Envelope]) -> tuple[object, ...] | None:
    """The stream's view row, or None for a user erased (or never created: a refused create)."""
    if any(e.type == "UserErased" for e in stream):
        return None
    state: UserState | None = None
    for envelope in stream:
        event: UserEvent = codec.decode(envelope)  # type: ignore[assignment]
        at: datetime = envelope.recorded_at
        state = evolve(state, event, at)
    if state is None or state.user_name == ERASED:
        return None
    # One per user event, the overwritten ones left out of the read included.
    state = replace(state, version=stream[-1].stream_version)
    return rebuilt_row(state, stream[-1].tenant_id, stream[-1].position)


async def build(connection: asyncpg.Connection, store: EventStore, schema: str,
                progress: Progress | None = None) -> Checkpoint:
    """Fill ``schema``.users_view from the log; return the catch-up checkpoint it reached."""
    bound, checkpoint = await read_bound(connection)
    if checkpoint is None:
        return Checkpoint()
    total = await connection.fetchval(_COUNT_BELOW, bound) if progress is not None else 0
    rows: list[tuple[object, ...]] = []
    pending: list[Envelope] = []  # the stream still being read
    done = 0

    async def flush(final: bool) -> None:
        if rows and (final or len(rows) >= _COPY):
            await connection.copy_records_to_table("users_view", records=rows, columns=ROW_COLUMNS,
                                                   schema_name=schema)
            rows.clear()

    # The log is read on a connection of the store's pool, a page ahead of the fold and the
    # COPY on ``connection``: PostgreSQL produces the next page while Python folds this one.
    async with store.pool.acquire() as reader, reader.transaction():
        cursor = await reader.cursor(_USER_EVENTS, bound, sorted(USER_EVENT_TYPES))
        ahead = asyncio.ensure_future(cursor.fetch(_FETCH))
        try:
            while records := await ahead:
                ahead = asyncio.ensure_future(cursor.fetch(_FETCH))
                datas = [r["data"] for r in records]
                if store.cipher is not None:
                    datas = await store.cipher.open(connection, [(r["tenant_id"], r["event_id"], r["type"], r["data"])
                                                                 for r in records])
                for record, data in zip(records, datas, strict=True):
                    envelope = _envelope(record, data)
                    if pending and (envelope.stream_id != pending[0].stream_id
                                    or envelope.tenant_id != pending[0].tenant_id):
                        if (row := _fold(pending)) is not None:
                            rows.append(row)
                        pending = []
                    pending.append(envelope)
                await flush(False)
                done += len(records)
                if progress is not None:
                    progress(done, total)
        finally:
            if not ahead.done():
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ahead
        if pending and (row := _fold(pending)) is not None:
            rows.append(row)
        await flush(True)
    if progress is not None:
        progress(total, total)  # the other events are the other projections'
    return checkpoint
