"""Rebuild projections from the log into a scratch schema; compare with, or copy over, the live tables.

The scratch tables are created by the projection's own migrations under a ``search_path``
that puts the scratch schema first, so the projection's unqualified SQL writes there while
``events`` still resolves to the live log. The final catch-up, comparison and copy happen
with the live tables locked against writers (readers carry on), so nothing committed in
between is missed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from eventstore import Checkpoint, EventStore
from eventstore.pool import init_connection
from projections.catalog import PROJECTIONS, ProjectionSpec
from projections.runner import read_whole_transactions

Progress = Callable[[int, int], None]  # (events applied so far, log head position)

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
                 progress: Progress | None, batch_size: int = 5000) -> Checkpoint:
    await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    await connection.execute(f"CREATE SCHEMA {schema}")
    for ddl in spec.ddl():
        await connection.execute(ddl)
    return await _catch_up(connection, store, spec, Checkpoint(), progress, batch_size)


async def _catch_up(connection: asyncpg.Connection, store: EventStore, spec: ProjectionSpec,
                    after: Checkpoint, progress: Progress | None, batch_size: int = 5000,
                    all_visible: bool = False, until: Checkpoint | None = None) -> Checkpoint:
    projection = spec.factory()
    head = await connection.fetchval("SELECT coalesce(max(position), 0) FROM public.events")
    applied = 0
    while True:
        async with connection.transaction():
            batch = await read_whole_transactions(store, connection, after, batch_size, all_visible)
            if until is not None:
                batch = [e for e in batch if e.checkpoint <= until]
            if not batch:
                return after
            await projection.apply(connection, batch)
        after = batch[-1].checkpoint
        applied += len(batch)
        if progress is not None:
            progress(applied, head)


async def _lock_live(connection: asyncpg.Connection, spec: ProjectionSpec) -> Checkpoint | None:
    """Hold writers off the live tables; for a catch-up projection, hold its projector off."""
    if spec.inline:
        tables = ", ".join(f"public.{t}" for t in spec.tables)
        await connection.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
        return None
    await connection.execute(
        "INSERT INTO public.projection_checkpoints (name, transaction_id, position) VALUES ($1, 0, 0) "
        "ON CONFLICT (name) DO NOTHING", spec.name)
    row = await connection.fetchrow(
        "SELECT transaction_id, position FROM public.projection_checkpoints WHERE name = $1 FOR UPDATE", spec.name)
    return Checkpoint(row["transaction_id"], row["position"])


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
                         live: Checkpoint) -> Checkpoint:
    """Bring a catch-up projection's live tables to the head, in the caller's locked transaction."""
    projection = spec.factory()
    await connection.execute("SET LOCAL search_path = public")
    try:
        while True:
            batch = await read_whole_transactions(store, connection, live, 5000)
            if not batch:
                break
            await projection.apply(connection, batch)
            live = batch[-1].checkpoint
    finally:
        await connection.execute("RESET search_path")
    await connection.execute(
        "UPDATE public.projection_checkpoints SET transaction_id = $2, position = $3, updated_at = now() "
        "WHERE name = $1", spec.name, live.transaction_id, live.position)
    return live


async def verify(dsn: str, store: EventStore, name: str, progress: Progress | None = None) -> list[Difference]:
    """Rebuild ``name`` in a scratch schema and compare it row by row with the live tables."""
    spec = PROJECTIONS[name]
    schema = f"verify_{name}_{secrets.token_hex(4)}"
    connection = await _scratch_connection(dsn, schema)
    try:
        checkpoint = await _build(connection, store, spec, schema, progress)
        async with connection.transaction():
            live = await _lock_live(connection, spec)
            if live is None:
                await _catch_up(connection, store, spec, checkpoint, None, all_visible=True)
            else:
                # Both sides stop at the same point of the log.
                until = await _catch_up_live(connection, store, spec, live)
                await _catch_up(connection, store, spec, checkpoint, None, until=until)
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
        checkpoint = await _build(connection, store, spec, schema, progress)
        async with connection.transaction():
            await _lock_live(connection, spec)
            checkpoint = await _catch_up(connection, store, spec, checkpoint, None, all_visible=spec.inline)
            rows = 0
            # Children before parents on delete (tokens reference tenants), the reverse to insert.
            for table in reversed(spec.tables):
                await connection.execute(f"DELETE FROM public.{table}")
            for table in spec.tables:
                columns = await _columns(connection, table)
                status = await connection.execute(
                    f"INSERT INTO public.{table} ({columns}) SELECT {columns} FROM {schema}.{table}")
                rows += int(status.split()[-1])
            if not spec.inline:
                await connection.execute(
                    "UPDATE public.projection_checkpoints SET transaction_id = $2, position = $3, "
                    "updated_at = now() WHERE name = $1", spec.name, checkpoint.transaction_id, checkpoint.position)
        return rows
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.close()
