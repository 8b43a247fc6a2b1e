"""Rebuild projections from the log into a scratch schema; compare with, or copy over, the live tables.

The scratch tables are created by the projection's own migrations under a ``search_path``
that puts the scratch schema first, so the projection's unqualified SQL writes there while
``events`` still resolves to the live log. The final catch-up, comparison and copy happen
with the live tables locked against writers (readers carry on), so nothing committed in
between is missed.

An inline projection is replayed in the global log's order; a catch-up projection tenant by
tenant, each in its own order (tenant_position), as its projectors apply it.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import get_args

import asyncpg

from domain.events import GROUP_EVENT_TYPES, TenantEvent
from eventstore import Checkpoint, Envelope, EventStore
from eventstore.pool import init_connection
from eventstore.positions import tenant_heads
from projections import users_view_rebuild
from projections.catalog import PROJECTIONS, ProjectionSpec
from projections.rebuild_bound import read_bound
from projections.runner import read_whole_appends, read_whole_transactions

Progress = Callable[[int, int], None]  # (events applied so far, log head position)

Positions = dict[uuid.UUID, int]  # a catch-up projection's place: tenant -> tenant_position

# A catch-up projection's checkpoints, every tenant's: read and written with its projectors held off.
_LIVE_POSITIONS = "SELECT tenant_id, tenant_position FROM public.projection_tenant_checkpoints WHERE name = $1"
_SAVE_POSITIONS = """
INSERT INTO public.projection_tenant_checkpoints (tenant_id, name, tenant_position)
SELECT tenant_id, $3, tenant_position FROM unnest($1::uuid[], $2::bigint[]) AS p(tenant_id, tenant_position)
ON CONFLICT (tenant_id, name) DO UPDATE SET tenant_position = EXCLUDED.tenant_position, updated_at = now()
"""

# Projections built set-based (each stream folded once, rows written with COPY) instead of by
# replaying the log through the projection in batches; the locked catch-up is the same.
_SET_BASED: dict[str, Callable[[asyncpg.Connection, EventStore, str, Progress | None], Awaitable[Checkpoint]]] = {
    "users_view": users_view_rebuild.build,
}
# Inline projections that read a few event types of a log that is mostly user events: their
# build reads only those, in the log's order (what their ``apply`` keeps of a batch).
_READS: dict[str, frozenset[str]] = {
    "tenancy": frozenset(cls.type for cls in get_args(TenantEvent)),
    "groups": GROUP_EVENT_TYPES | {"UserErased"},  # an erased person leaves every group
}
_OF_TYPES = """
SELECT position, transaction_id, event_id, tenant_id, stream_id, stream_version, type, schema_version, data,
       metadata, recorded_at, tenant_position
FROM public.events WHERE type = ANY($2::text[]) AND transaction_id < $1
ORDER BY transaction_id, position
"""

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class Difference:
    table: str
    only_live: int
    only_rebuilt: int


async def _scratch_connection(dsn: str, schema: str) -> asyncpg.Connection:
    if not _SCHEMA.match(schema):
        raise ValueError(f"bad schema name {schema!r}")
    connection = await asyncpg.connect(dsn, server_settings={"search_path": f"{schema}, public"})
    await init_connection(connection)
    return connection


async def _build(connection: asyncpg.Connection, store: EventStore, spec: ProjectionSpec, schema: str,
                 progress: Progress | None, batch_size: int = 5000) -> Checkpoint | Positions:
    await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    await connection.execute(f"CREATE SCHEMA {schema}")
    for ddl in spec.ddl():
        await connection.execute(ddl)
    if spec.name in _SET_BASED:
        return await _SET_BASED[spec.name](connection, store, schema, progress)
    if spec.name in _READS:
        return await _build_of_types(connection, store, spec, _READS[spec.name], progress, batch_size)
    if spec.inline:
        return await _catch_up(connection, store, spec, Checkpoint(), progress, batch_size)
    return await _catch_up_tenants(connection, store, spec, {}, progress, batch_size)


async def _build_of_types(connection: asyncpg.Connection, store: EventStore, spec: ProjectionSpec,
                          types: frozenset[str], progress: Progress | None, batch_size: int) -> Checkpoint:
    """Apply only the events of ``types``, in the catch-up reader's order, up to its bound."""
    bound, checkpoint = await read_bound(connection)
    if checkpoint is None:
        return Checkpoint()
    projection = spec.factory()
    applied = 0
    async with store.pool.acquire() as reader, reader.transaction():
        cursor = await reader.cursor(_OF_TYPES, bound, sorted(types))
        while rows := await cursor.fetch(batch_size):
            datas = [row["data"] for row in rows]
            if store.cipher is not None:
                datas = await store.cipher.open(connection, [(r["tenant_id"], r["event_id"], r["type"], r["data"])
                                                             for r in rows])
            envelopes = [Envelope(r["position"], r["transaction_id"], r["event_id"], r["tenant_id"], r["stream_id"],
                                  r["stream_version"], r["type"], r["schema_version"], data, r["metadata"],
                                  r["recorded_at"], r["tenant_position"]) for r, data in zip(rows, datas, strict=True)]
            async with connection.transaction():
                await projection.apply(connection, envelopes)
            applied += len(envelopes)
            if progress is not None:
                progress(applied, 0)  # of an unknown total: the log's other events are skipped
    return checkpoint


async def _catch_up_tenants(connection: asyncpg.Connection, store: EventStore, spec: ProjectionSpec,
                            after: Positions, progress: Progress | None, batch_size: int = 5000,
                            until: Positions | None = None) -> Positions:
    """Apply each tenant's events after ``after`` up to ``until`` (default: every tenant's head now)."""
    projection = spec.factory()
    targets = until if until is not None else await tenant_heads(connection)
    positions = dict(after)
    total = sum(targets.values())
    applied = 0
    for tenant_id, target in targets.items():
        while positions.get(tenant_id, 0) < target:
            async with connection.transaction():
                batch = await read_whole_appends(store, connection, tenant_id, positions.get(tenant_id, 0), batch_size)
                batch = [e for e in batch if e.tenant_position <= target]
                if not batch:
                    break
                await projection.apply(connection, batch)
            positions[tenant_id] = batch[-1].tenant_position
            applied += len(batch)
            if progress is not None:
                progress(applied, total)
    return positions


async def _catch_up(connection: asyncpg.Connection, store: EventStore, spec: ProjectionSpec,
                    after: Checkpoint, progress: Progress | None, batch_size: int = 5000,
                    all_visible: bool = False) -> Checkpoint:
    projection = spec.factory()
    head = await connection.fetchval("SELECT coalesce(max(position), 0) FROM public.events")
    applied = 0
    while True:
        async with connection.transaction():
            batch = await read_whole_transactions(store, connection, after, batch_size, all_visible)
            if not batch:
                return after
            await projection.apply(connection, batch)
        after = batch[-1].checkpoint
        applied += len(batch)
        if progress is not None:
            progress(applied, head)


async def _lock_live(connection: asyncpg.Connection, spec: ProjectionSpec) -> Positions | None:
    """Hold writers off the live tables; for a catch-up projection, hold its projectors off."""
    if spec.inline:
        tables = ", ".join(f"public.{t}" for t in spec.tables)
        await connection.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
        return None
    # Exclusive: no projector can claim or create a checkpoint row until this commits.
    await connection.execute("LOCK TABLE public.projection_tenant_checkpoints IN EXCLUSIVE MODE")
    rows = await connection.fetch(_LIVE_POSITIONS, spec.name)
    return {row["tenant_id"]: row["tenant_position"] for row in rows}


async def _save_positions(connection: asyncpg.Connection, name: str, positions: Positions) -> None:
    tenants = list(positions)
    await connection.execute(_SAVE_POSITIONS, tenants, [positions[t] for t in tenants], name)


async def _columns(connection: asyncpg.Connection, table: str) -> str:
    rows = await connection.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
        "ORDER BY ordinal_position", table)
    return ", ".join(f'"{r["column_name"]}"' for r in rows)


async def _compare(connection: asyncpg.Connection, spec: ProjectionSpec, schema: str) -> list[Difference]:
    differences = []
    for table in spec.tables:
        columns = await _columns(connection, table)
        only_live = await connection.fetchval(
            f"SELECT count(*) FROM (SELECT {columns} FROM public.{table} EXCEPT ALL "
            f"SELECT {columns} FROM {schema}.{table}) AS d")
        only_rebuilt = await connection.fetchval(
            f"SELECT count(*) FROM (SELECT {columns} FROM {schema}.{table} EXCEPT ALL "
            f"SELECT {columns} FROM public.{table}) AS d")
        if only_live or only_rebuilt:
            differences.append(Difference(table, only_live, only_rebuilt))
    return differences


async def _catch_up_live(connection: asyncpg.Connection, store: EventStore, spec: ProjectionSpec,
                         live: Positions) -> Positions:
    """Bring a catch-up projection's live tables to every tenant's head, in the caller's locked
    transaction."""
    await connection.execute("SET LOCAL search_path = public")
    try:
        live = await _catch_up_tenants(connection, store, spec, live, None, 5000)
    finally:
        await connection.execute("RESET search_path")
    await _save_positions(connection, spec.name, live)
    return live


async def verify(dsn: str, store: EventStore, name: str, progress: Progress | None = None) -> list[Difference]:
    """Rebuild ``name`` in a scratch schema and compare it row by row with the live tables."""
    spec = PROJECTIONS[name]
    schema = f"verify_{name}_{secrets.token_hex(4)}"
    connection = await _scratch_connection(dsn, schema)
    try:
        built = await _build(connection, store, spec, schema, progress)
        async with connection.transaction():
            live = await _lock_live(connection, spec)
            if isinstance(built, Checkpoint):
                await _catch_up(connection, store, spec, built, None, all_visible=True)
            else:
                # Both sides stop at the same point of each tenant's order.
                until = await _catch_up_live(connection, store, spec, live or {})
                await _catch_up_tenants(connection, store, spec, built, None, until=until)
            return await _compare(connection, spec, schema)
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.close()


async def rebuild(dsn: str, store: EventStore, name: str, progress: Progress | None = None) -> int:
    """Rebuild ``name`` from the log into fresh tables and swap their content in; return row count."""
    spec = PROJECTIONS[name]
    schema = f"rebuild_{name}_{secrets.token_hex(4)}"
    connection = await _scratch_connection(dsn, schema)
    try:
        built = await _build(connection, store, spec, schema, progress)
        async with connection.transaction():
            await _lock_live(connection, spec)
            if isinstance(built, Checkpoint):
                await _catch_up(connection, store, spec, built, None, all_visible=True)
            else:
                built = await _catch_up_tenants(connection, store, spec, built, None)
            rows = 0
            # Children before parents on delete (tokens reference tenants), the reverse to insert.
            for table in reversed(spec.tables):
                await connection.execute(f"DELETE FROM public.{table}")
            for table in spec.tables:
                columns = await _columns(connection, table)
                status = await connection.execute(
                    f"INSERT INTO public.{table} ({columns}) SELECT {columns} FROM {schema}.{table}")
                rows += int(status.split()[-1])
            if not isinstance(built, Checkpoint):
                await _save_positions(connection, spec.name, built)
        return rows
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.close()
