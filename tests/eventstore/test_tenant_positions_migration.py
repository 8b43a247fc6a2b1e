"""eventstore 0007 and projections 0012 on a log written before per-tenant order."""

import uuid

import asyncpg

from eventstore.migrate import EVENTSTORE_MIGRATIONS, Migration, MigrationSource, migrate
from projections import MIGRATIONS as PROJECTION_MIGRATIONS
from tests.conftest import _admin, with_database

A = uuid.UUID("00000000-0000-0000-0000-00000000000a")
B = uuid.UUID("00000000-0000-0000-0000-00000000000b")


class _Before(MigrationSource):
    """A source's migrations below a version: the schema as an older release left it."""

    def __init__(self, name, folder, below: int) -> None:
        super().__init__(name, folder)
        object.__setattr__(self, "below", below)

    def migrations(self) -> list[Migration]:
        return [m for m in super().migrations() if m.version < self.below]  # type: ignore[attr-defined]


_INSERT = ("INSERT INTO events (event_id, tenant_id, stream_id, stream_version, type, data) "
           "VALUES (gen_random_uuid(), $1, $2, 1, 'E', '{}') RETURNING transaction_id, position")


async def test_an_existing_log_is_numbered_per_tenant_in_the_old_readers_order(server_dsn: str):
    name = f"old_{uuid.uuid4().hex[:12]}"
    await _admin(server_dsn, f"CREATE DATABASE {name}")
    connection = await asyncpg.connect(with_database(server_dsn, name))
    try:
        await migrate(connection, [_Before("eventstore", EVENTSTORE_MIGRATIONS, 7),
                                   _Before("projections", PROJECTION_MIGRATIONS, 12)])
        # A's second event takes a position before B's first but commits after it.
        late = connection.transaction()
        await late.start()
        first_a = await connection.fetchrow(_INSERT, A, "a1")
        other = await asyncpg.connect(with_database(server_dsn, name))
        try:
            await other.fetchrow(_INSERT, B, "b1")
            await late.commit()
            await other.fetchrow(_INSERT, A, "a2")
            await other.fetchrow(_INSERT, B, "b2")
            # The old audit projector had read everything up to A's first event.
            await other.execute("INSERT INTO projection_checkpoints (name, transaction_id, position) "
                                "VALUES ('audit', $1, $2)", first_a["transaction_id"], first_a["position"])
        finally:
            await other.close()

        await migrate(connection, [MigrationSource("eventstore", EVENTSTORE_MIGRATIONS),
                                   MigrationSource("projections", PROJECTION_MIGRATIONS)])

        rows = await connection.fetch("SELECT tenant_id, stream_id, tenant_position FROM events "
                                      "ORDER BY tenant_id, tenant_position")
        assert [(r["tenant_id"], r["stream_id"], r["tenant_position"]) for r in rows] == [
            (A, "a1", 1), (A, "a2", 2), (B, "b1", 1), (B, "b2", 2)]
        heads = await connection.fetch("SELECT tenant_id, position FROM tenant_heads ORDER BY tenant_id")
        assert [(r["tenant_id"], r["position"]) for r in heads] == [(A, 2), (B, 2)]
        checkpoints = await connection.fetch(
            "SELECT tenant_id, name, tenant_position FROM projection_tenant_checkpoints ORDER BY tenant_id")
        assert [(r["tenant_id"], r["name"], r["tenant_position"]) for r in checkpoints] == [(A, "audit", 1)]
    finally:
        await connection.close()
        await _admin(server_dsn, f"DROP DATABASE {name}")
