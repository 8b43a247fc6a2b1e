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

It is bound by Python's CPU (docs/benchmarks.md, "Rebuild, rebuild-fast branch"), so it keeps
PostgreSQL busy beside it: the next page is read and the last rows are COPYed while a page is
folded, and the cyclic garbage collector is paused while it allocates.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from domain.events import USER_EVENT_TYPES, UserEvent
from domain.streams import USER_PREFIX
from domain.user import UserState, evolve
from eventstore import Checkpoint, EventStore
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
# The fresh table's indexes but its primary key (which the locked catch-up's upsert names):
# nothing reads the fresh table by them, and PostgreSQL would keep five of them (one GIN) up
# through every COPY. The live table keeps all of its own, and checks the rows against them
# when they are copied in.
_SECONDARY_INDEXES = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = to_regclass(format('%I.users_view', $1::text)) AND NOT i.indisprimary
"""
_FETCH = 5_000  # rows per cursor round trip (the first page is awaited with nothing to fold)
_COPY = 20_000  # rows per COPY
_YIELD_EVERY = 500  # records folded between turns of the event loop


def _fold(stream: Sequence[tuple[asyncpg.Record, dict[str, Any]]]) -> tuple[object, ...] | None:
    """The view row of one stream's (record, opened data) pairs, or None for a user erased (or
    never created: a refused create)."""
    if any(record["type"] == "UserErased" for record, _ in stream):
        return None
    state: UserState | None = None
    for record, data in stream:
        event: UserEvent = codec.decode_data(record["type"], record["schema_version"], data)  # type: ignore[assignment]
        at: datetime = record["recorded_at"]
        state = evolve(state, event, at)
    if state is None or state.user_name == ERASED:
        return None
    last = stream[-1][0]
    # One per user event, the overwritten ones left out of the read included.
    return rebuilt_row(state, last["tenant_id"], last["position"], last["ordinal"])


@contextlib.contextmanager
def _without_cycle_collector() -> Iterator[None]:
    """The cyclic garbage collector paused: a build allocates millions of objects (records,
    decoded documents, states, rows) that reference counting frees, and the collector would
    otherwise walk the page being folded again and again (about a third of the build's CPU).

    The pause is the whole process's. Whatever cyclic garbage the process made meanwhile (a
    server's, when a verify runs inside one) is collected as soon as the build ends, not left
    for a later moment: left, it made tests/gateway/test_shards.py's requests fail right after
    a shard was stopped.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
            gc.collect()


async def build(connection: asyncpg.Connection, store: EventStore, schema: str,
                progress: Progress | None = None) -> Checkpoint:
    """Fill ``schema``.users_view from the log; return the catch-up checkpoint it reached."""
    with _without_cycle_collector():
        return await _build(connection, store, schema, progress)


async def _build(connection: asyncpg.Connection, store: EventStore, schema: str,
                 progress: Progress | None) -> Checkpoint:
    bound, checkpoint = await read_bound(connection)
    if checkpoint is None:
        return Checkpoint()
    total = await connection.fetchval(_COUNT_BELOW, bound) if progress is not None else 0
    for index in await connection.fetch(_SECONDARY_INDEXES, schema):
        await connection.execute(f"DROP INDEX {index[0]}")
    rows: list[tuple[object, ...]] = []
    pending: list[tuple[asyncpg.Record, dict[str, Any]]] = []  # the stream still being read
    tenant_id, stream_id = None, None  # the pending stream's
    done = 0
    copying: asyncio.Future[str] | None = None  # the COPY of the rows folded before

    async def flush(final: bool) -> None:
        # A COPY runs while the next page is folded; one at a time on ``connection``.
        nonlocal rows, copying
        if rows and (final or len(rows) >= _COPY):
            if copying is not None:
                await copying
            copying = asyncio.ensure_future(connection.copy_records_to_table(
                "users_view", records=rows, columns=ROW_COLUMNS, schema_name=schema))
            rows = []
        if final and copying is not None:
            await copying

    # The log is read on a connection of the store's pool, a page ahead of the fold, and the
    # COPY on ``connection`` runs behind it: PostgreSQL produces the next page and writes the
    # last one while Python folds this one. Keys come through a third connection of the pool.
    async with store.pool.acquire() as reader, reader.transaction():
        cursor = await reader.cursor(_USER_EVENTS, bound, sorted(USER_EVENT_TYPES))
        ahead = asyncio.ensure_future(cursor.fetch(_FETCH))
        try:
            while records := await ahead:
                ahead = asyncio.ensure_future(cursor.fetch(_FETCH))
                datas = [r["data"] for r in records]
                if store.cipher is not None:
                    # Each data was decoded for this read alone: opened where it is, not copied.
                    datas = await store.cipher.open(store.pool, [(r["tenant_id"], r["event_id"], r["type"], data)
                                                                 for r, data in zip(records, datas, strict=True)],
                                                    in_place=True)
                for n, (record, data) in enumerate(zip(records, datas, strict=True)):
                    if n % _YIELD_EVERY == 0:
                        # Let the loop run the read ahead and the COPY behind (the socket
                        # reads and writes they wait on): without it they only move here.
                        await asyncio.sleep(0)
                    if record["stream_id"] != stream_id or record["tenant_id"] != tenant_id:
                        if pending and (row := _fold(pending)) is not None:
                            rows.append(row)
                        pending = []
                        tenant_id, stream_id = record["tenant_id"], record["stream_id"]
                    pending.append((record, data))
                await flush(False)
                done += len(records)
                if progress is not None:
                    progress(done, total)
        finally:
            if not ahead.done():
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ahead
            if copying is not None and not copying.done():
                # Failing mid-build: the COPY ends before ``connection`` is used again (the
                # caller drops the schema on it). On success ``flush`` awaits it again.
                with contextlib.suppress(Exception):
                    await copying
        if pending and (row := _fold(pending)) is not None:
            rows.append(row)
        await flush(True)
    if progress is not None:
        progress(total, total)  # the other events are the other projections'
    return checkpoint
