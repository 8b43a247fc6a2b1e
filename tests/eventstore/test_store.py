import asyncio
import uuid

import asyncpg
import pytest

from eventstore import Checkpoint, ConcurrencyError, EventStore, NewEvent

TENANT = uuid.UUID("00000000-0000-0000-0000-000000000001")
OTHER = uuid.UUID("00000000-0000-0000-0000-000000000002")


def events(*names: str) -> list[NewEvent]:
    return [NewEvent(type=name, data={"name": name}) for name in names]


async def test_append_returns_envelopes_with_consecutive_stream_versions(store: EventStore):
    stored = await store.append("s-1", 0, events("A", "B"), {"actor": "t"}, tenant_id=TENANT)

    assert [e.stream_version for e in stored] == [1, 2]
    assert [e.type for e in stored] == ["A", "B"]
    assert stored[0].position < stored[1].position
    assert stored[0].metadata == {"actor": "t"}
    assert stored[0].recorded_at is not None


async def test_read_stream_returns_the_stream_in_order(store: EventStore):
    await store.append("s-1", 0, events("A"), {}, tenant_id=TENANT)
    await store.append("other", 0, events("X"), {}, tenant_id=TENANT)
    await store.append("s-1", 1, events("B", "C"), {}, tenant_id=TENANT)

    assert [e.type for e in await store.read_stream(TENANT, "s-1")] == ["A", "B", "C"]
    assert [e.type for e in await store.read_stream(TENANT, "s-1", after_version=1)] == ["B", "C"]


async def test_stale_expected_version_raises_and_writes_nothing(store: EventStore):
    await store.append("s-1", 0, events("A"), {}, tenant_id=TENANT)

    with pytest.raises(ConcurrencyError):
        await store.append("s-1", 0, events("B", "C"), {}, tenant_id=TENANT)

    assert [e.type for e in await store.read_stream(TENANT, "s-1")] == ["A"]


async def test_expected_version_ahead_of_the_stream_is_a_conflict(store: EventStore):
    await store.append("s-1", 0, events("A"), {}, tenant_id=TENANT)

    with pytest.raises(ConcurrencyError):
        await store.append("s-1", 5, events("B"), {}, tenant_id=TENANT)


async def test_concurrent_appends_at_the_same_version_let_exactly_one_win(store: EventStore):
    await store.append("s-1", 0, events("A"), {}, tenant_id=TENANT)

    results = await asyncio.gather(
        *(store.append("s-1", 1, events(f"B{i}"), {}, tenant_id=TENANT) for i in range(6)),
        return_exceptions=True,
    )

    assert sum(isinstance(r, list) for r in results) == 1
    assert sum(isinstance(r, ConcurrencyError) for r in results) == 5
    assert len(await store.read_stream(TENANT, "s-1")) == 2


async def test_expected_version_none_appends_at_any_version(store: EventStore):
    await store.append("s-1", 0, events("A"), {}, tenant_id=TENANT)
    stored = await store.append("s-1", None, events("B"), {}, tenant_id=TENANT)
    assert stored[0].stream_version == 2


async def test_several_events_are_appended_atomically(store: EventStore, pool: asyncpg.Pool):
    duplicate_id = uuid.uuid4()
    batch = [
        NewEvent(type="A", data={}, event_id=duplicate_id),
        NewEvent(type="B", data={}, event_id=duplicate_id),
    ]
    with pytest.raises(Exception):  # noqa: B017 - any failure; the point is what is left
        await store.append("s-1", 0, batch, {}, tenant_id=TENANT)

    assert await pool.fetchval("SELECT count(*) FROM events") == 0


async def test_retried_append_with_the_same_idempotency_key_is_a_no_op(store: EventStore):
    event_id = uuid.uuid4()
    first = await store.append(
        "s-1", 0, [NewEvent("A", {}, event_id=event_id)], {},
        tenant_id=TENANT, idempotency_key="req-1",
    )
    again = await store.append(
        "s-1", 0, [NewEvent("A", {}, event_id=event_id)], {},
        tenant_id=TENANT, idempotency_key="req-1",
    )

    assert again == first
    assert len(await store.read_stream(TENANT, "s-1")) == 1


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET type = 'X'", "DELETE FROM events", "TRUNCATE events"],
)
async def test_events_table_is_append_only(store: EventStore, pool: asyncpg.Pool, statement):
    await store.append("s-1", 0, events("A"), {}, tenant_id=TENANT)

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute(statement)

    assert await pool.fetchval("SELECT count(*) FROM events") == 1


async def test_read_all_pages_through_the_log_in_order(store: EventStore):
    for i in range(5):
        await store.append(f"s-{i}", 0, events(f"E{i}"), {}, tenant_id=TENANT)

    first = await store.read_all(limit=2)
    rest = await store.read_all(first[-1].checkpoint, limit=10)

    assert [e.type for e in first + rest] == ["E0", "E1", "E2", "E3", "E4"]


async def test_catch_up_reader_never_skips_an_event_committed_late(
    store: EventStore, pool: asyncpg.Pool
):
    """A takes a smaller position than B but commits after B was read: it must still arrive.

    A and B are in different tenants: within one tenant, B would wait for A's head row (see
    tests/eventstore/test_tenant_positions.py). The global reader is what a rebuild replays
    every tenant with, so it must still never skip a late commit across tenants."""
    seen: list[str] = []
    checkpoint = Checkpoint()

    async def read() -> None:
        nonlocal checkpoint
        for envelope in await store.read_all(checkpoint):
            seen.append(envelope.type)
            checkpoint = envelope.checkpoint

    slow = await pool.acquire()
    try:
        transaction = slow.transaction()
        await transaction.start()
        slow_events = await store.append("a", 0, events("A"), {}, tenant_id=TENANT, connection=slow)

        fast_events = await store.append("b", 0, events("B"), {}, tenant_id=OTHER)
        assert slow_events[0].position < fast_events[0].position

        await read()
        assert "A" not in seen  # not committed yet

        await transaction.commit()
    finally:
        await pool.release(slow)

    await read()
    await read()
    assert sorted(seen) == ["A", "B"]
    assert len(seen) == 2


async def test_read_all_can_be_limited_to_one_tenant(store: EventStore):
    other = uuid.uuid4()
    await store.append("a", 0, events("A"), {}, tenant_id=TENANT)
    await store.append("b", 0, events("B"), {}, tenant_id=other)

    assert [e.type for e in await store.read_all(tenant_id=other)] == ["B"]


async def test_inline_projection_runs_in_the_append_transaction(pool: asyncpg.Pool):
    class Failing:
        async def apply(self, connection, envelopes):
            raise RuntimeError("projection failed")

    store = EventStore(pool, [Failing()])
    with pytest.raises(RuntimeError):
        await store.append("s-1", 0, events("A"), {}, tenant_id=TENANT)

    assert await pool.fetchval("SELECT count(*) FROM events") == 0


async def test_a_stream_id_names_one_stream_per_tenant(store: EventStore):
    other = uuid.uuid4()
    await store.append("s-1", 0, events("A"), {}, tenant_id=TENANT, idempotency_key="req-1")
    # The other tenant's stream of the same id starts at version 1 and is read apart.
    await store.append("s-1", 0, events("X", "Y"), {}, tenant_id=other, idempotency_key="req-1")

    assert [e.type for e in await store.read_stream(TENANT, "s-1")] == ["A"]
    assert [e.type for e in await store.read_stream(other, "s-1")] == ["X", "Y"]
    assert [e.type for e in await store.read_idempotent(TENANT, "req-1")] == ["A"]
    assert await store.head_position(TENANT) < await store.head_position(other)
    assert await store.head_position(uuid.uuid4()) == 0


async def test_the_constraints_the_store_translates_exist_and_start_with_the_tenant(pool: asyncpg.Pool):
    rows = await pool.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
        "WHERE conrelid = 'events'::regclass AND contype IN ('p', 'u') ORDER BY conname")
    assert {r["conname"]: r["definition"] for r in rows} == {
        "events_event_id_key": "UNIQUE (tenant_id, event_id)",
        "events_pkey": "PRIMARY KEY (tenant_id, \"position\")",
        "events_stream_version_key": "UNIQUE (tenant_id, stream_id, stream_version)",
        "events_tenant_position_key": "UNIQUE (tenant_id, tenant_position)",
    }
