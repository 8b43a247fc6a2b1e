"""Each tenant's own dense order: assigned by the append, committed in order, never skipped."""

import asyncio
import random
import uuid
from collections import defaultdict

import asyncpg
import pytest

from eventstore import ConcurrencyError, EventStore, NewEvent
from eventstore.pool import create_pool
from eventstore.positions import tenant_head, tenant_heads

A = uuid.UUID("00000000-0000-0000-0000-00000000000a")
B = uuid.UUID("00000000-0000-0000-0000-00000000000b")


def events(*names: str) -> list[NewEvent]:
    return [NewEvent(type=name, data={"name": name}) for name in names]


async def test_each_tenant_numbers_its_events_one_by_one(store: EventStore, pool: asyncpg.Pool):
    await store.append("s", 0, events("A1", "A2"), {}, tenant_id=A)
    await store.append("s", 0, events("B1"), {}, tenant_id=B)
    await store.append("s", 2, events("A3"), {}, tenant_id=A)

    assert [(e.type, e.tenant_position) for e in await store.read_tenant(A)] == [("A1", 1), ("A2", 2), ("A3", 3)]
    assert [(e.type, e.tenant_position) for e in await store.read_tenant(B)] == [("B1", 1)]
    assert [e.type for e in await store.read_tenant(A, 1, limit=1)] == ["A2"]
    assert await tenant_heads(pool) == {A: 3, B: 1}
    assert await tenant_head(pool, uuid.uuid4()) == 0


async def test_a_failed_version_check_takes_no_number(store: EventStore, pool: asyncpg.Pool):
    await store.append("s", 0, events("A1"), {}, tenant_id=A)
    with pytest.raises(ConcurrencyError):
        await store.append("s", 0, events("again"), {}, tenant_id=A)
    await store.append("t", 0, events("A2"), {}, tenant_id=A)

    assert [e.tenant_position for e in await store.read_tenant(A)] == [1, 2]
    assert await tenant_head(pool, A) == 2


async def _waiting_on_a_lock(pool: asyncpg.Pool) -> None:
    for _ in range(500):
        if await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the second append never waited")


async def test_a_second_append_waits_and_a_rollback_gives_the_number_back(store: EventStore, pool: asyncpg.Pool):
    """The head row stays locked until the append's transaction ends: B waits for A, and when
    A rolls back B takes A's number. A reader never sees a hole."""
    slow = await pool.acquire()
    try:
        transaction = slow.transaction()
        await transaction.start()
        held = await store.append("a", 0, events("A"), {}, tenant_id=A, connection=slow)
        assert held[0].tenant_position == 1

        fast = asyncio.create_task(store.append("b", 0, events("B"), {}, tenant_id=A))
        await _waiting_on_a_lock(pool)
        assert not fast.done()
        assert await store.read_tenant(A) == []

        await transaction.rollback()
    finally:
        await pool.release(slow)

    stored = await fast
    assert [(e.type, e.tenant_position) for e in stored] == [("B", 1)]
    assert [(e.type, e.tenant_position) for e in await store.read_tenant(A)] == [("B", 1)]


class _Rollback(Exception):
    pass


async def test_32_appenders_with_rollbacks_leave_dense_positions_a_poller_reads_in_order(database_url: str):
    """32 concurrent appenders over three tenants, a third of their transactions rolled back
    after the append; a poller reading each tenant after its last position never finds a
    position other than the next one, and in the end has read exactly the committed events."""
    tenants = [uuid.uuid4() for _ in range(3)]
    writers_pool = await create_pool(database_url, min_size=32, max_size=32)
    reader_pool = await create_pool(database_url, min_size=1, max_size=2)
    store = EventStore(writers_pool)
    reader = EventStore(reader_pool)
    committed: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    seen: dict[uuid.UUID, list[tuple[int, uuid.UUID]]] = defaultdict(list)
    writing = True

    async def writer(number: int) -> None:
        rng = random.Random(number)
        for round_ in range(12):
            tenant = rng.choice(tenants)
            new = events(*(f"w{number}-{round_}-{i}" for i in range(rng.randint(1, 3))))
            async with writers_pool.acquire() as connection:
                try:
                    async with connection.transaction():
                        stored = await store.append(f"w{number}-{round_}", 0, new, {}, tenant_id=tenant,
                                                    connection=connection)
                        await asyncio.sleep(rng.random() / 200)  # hold the head a little
                        if rng.random() < 1 / 3:
                            raise _Rollback
                except _Rollback:
                    continue
            committed[tenant] |= {e.event_id for e in stored}

    async def poll_once() -> None:
        for tenant in tenants:
            after = seen[tenant][-1][0] if seen[tenant] else 0
            batch = await reader.read_tenant(tenant, after, limit=50)
            assert [e.tenant_position for e in batch] == list(range(after + 1, after + 1 + len(batch)))
            seen[tenant] += [(e.tenant_position, e.event_id) for e in batch]

    async def poller() -> None:
        while writing:
            await poll_once()
            await asyncio.sleep(0)

    try:
        polling = asyncio.create_task(poller())
        await asyncio.gather(*(writer(n) for n in range(32)))
        writing = False
        await polling
        for _ in range(20):
            await poll_once()
        for tenant in tenants:
            assert {event_id for _, event_id in seen[tenant]} == committed[tenant]
            assert [p for p, _ in seen[tenant]] == list(range(1, len(committed[tenant]) + 1))
        assert await tenant_heads(reader_pool) == {t: len(committed[t]) for t in tenants}
        assert sum(len(c) for c in committed.values()) > 100
    finally:
        await writers_pool.close()
        await reader_pool.close()
