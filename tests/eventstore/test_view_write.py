"""A view write made in the append's own statement: one round trip, all or nothing."""

import uuid

import asyncpg
import pytest

from eventstore import VIEW_PARAMS_START, ConcurrencyError, EventStore, NewEvent, ProjectionConflict, ViewWrite

TENANT = uuid.UUID("00000000-0000-0000-0000-000000000001")

P = VIEW_PARAMS_START
# A toy read model: one row per stream with the latest event's name, unique per name.
UPSERT = f"""
INSERT INTO toy_view (stream_id, name, position)
SELECT ${P}, ${P + 1}, (SELECT max(position) FROM appended) WHERE EXISTS (SELECT 1 FROM appended)
ON CONFLICT (stream_id) DO UPDATE SET name = EXCLUDED.name, position = EXCLUDED.position
"""


@pytest.fixture
async def toy(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.execute("CREATE TABLE toy_view (stream_id text PRIMARY KEY, name text UNIQUE, position bigint)")
    return pool


def write(stream: str, name: str) -> ViewWrite:
    return ViewWrite(UPSERT, (stream, name))


async def test_events_and_view_row_are_written_together(store: EventStore, toy: asyncpg.Pool):
    [envelope] = await store.append("s-1", 0, [NewEvent("A", {})], {}, tenant_id=TENANT, view=write("s-1", "a"))

    row = await toy.fetchrow("SELECT name, position FROM toy_view WHERE stream_id = 's-1'")
    assert (row["name"], row["position"]) == ("a", envelope.position)


async def test_a_stale_expected_version_writes_neither(store: EventStore, toy: asyncpg.Pool):
    await store.append("s-1", 0, [NewEvent("A", {})], {}, tenant_id=TENANT, view=write("s-1", "a"))

    with pytest.raises(ConcurrencyError):
        await store.append("s-1", 0, [NewEvent("B", {})], {}, tenant_id=TENANT, view=write("s-1", "b"))

    assert await toy.fetchval("SELECT name FROM toy_view") == "a"
    assert await toy.fetchval("SELECT count(*) FROM events") == 1


async def test_a_view_constraint_refuses_the_events_too(store: EventStore, toy: asyncpg.Pool):
    await store.append("s-1", 0, [NewEvent("A", {})], {}, tenant_id=TENANT, view=write("s-1", "taken"))

    with pytest.raises(ProjectionConflict) as refused:
        await store.append("s-2", 0, [NewEvent("A", {})], {}, tenant_id=TENANT, view=write("s-2", "taken"))

    assert refused.value.constraint == "toy_view_name_key"
    assert await toy.fetchval("SELECT count(*) FROM events") == 1


async def test_with_a_view_write_the_inline_projections_do_not_run(pool: asyncpg.Pool, toy: asyncpg.Pool):
    class Counting:
        calls = 0

        async def apply(self, connection, envelopes) -> None:
            Counting.calls += 1

    store = EventStore(pool, [Counting()])
    await store.append("s-1", 0, [NewEvent("A", {})], {}, tenant_id=TENANT, view=write("s-1", "a"))
    await store.append("s-2", 0, [NewEvent("A", {})], {}, tenant_id=TENANT)

    assert Counting.calls == 1
