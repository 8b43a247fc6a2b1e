"""Coalesced point reads (eventstore/batching.py) against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from eventstore import batching
from eventstore.batching import GroupAppends, PointReads

_SQL = "SELECT tenant_id, key, value FROM bench_points WHERE tenant_id = $1 AND key = ANY($2::text[])"


class CountingPool:
    """The real pool, with the statements it was sent counted."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.statements: list[tuple[uuid.UUID, list[str]]] = []
        self.fail: Exception | None = None

    async def fetch(self, sql: str, tenant_id: uuid.UUID, keys: list[str]) -> list[Any]:
        self.statements.append((tenant_id, keys))
        if self.fail is not None:
            raise self.fail
        return await self.pool.fetch(sql, tenant_id, keys)


TENANT_A = uuid.UUID(int=1)
TENANT_B = uuid.UUID(int=2)


@pytest.fixture
async def points(pool: asyncpg.Pool) -> CountingPool:
    await pool.execute("CREATE TABLE bench_points (tenant_id uuid, key text, value text, PRIMARY KEY (tenant_id, key))")
    await pool.executemany("INSERT INTO bench_points VALUES ($1, $2, $3)",
                           [(TENANT_A, f"k{i}", f"a{i}") for i in range(50)]
                           + [(TENANT_B, "k0", "b0")])
    return CountingPool(pool)


async def test_reads_asked_in_one_turn_go_as_one_statement(points: CountingPool) -> None:
    reads = PointReads(points, _SQL, "key")
    rows = await asyncio.gather(*(reads.fetch(TENANT_A, f"k{i}") for i in range(50)))
    assert [row["value"] for row in rows] == [f"a{i}" for i in range(50)]
    assert len(points.statements) == 1
    assert sorted(points.statements[0][1]) == sorted(f"k{i}" for i in range(50))


async def test_a_missing_key_reads_none_and_a_repeated_key_is_asked_once(points: CountingPool) -> None:
    reads = PointReads(points, _SQL, "key")
    first, missing, again = await asyncio.gather(reads.fetch(TENANT_A, "k7"), reads.fetch(TENANT_A, "nope"),
                                                 reads.fetch(TENANT_A, "k7"))
    assert (first["value"], missing, again["value"]) == ("a7", None, "a7")
    assert points.statements == [(TENANT_A, ["k7", "nope"])]


async def test_tenants_are_read_apart_and_see_only_their_own_rows(points: CountingPool) -> None:
    reads = PointReads(points, _SQL, "key")
    a, b, b_missing = await asyncio.gather(reads.fetch(TENANT_A, "k0"), reads.fetch(TENANT_B, "k0"),
                                           reads.fetch(TENANT_B, "k1"))
    assert (a["value"], b["value"], b_missing) == ("a0", "b0", None)
    assert sorted(points.statements) == [(TENANT_A, ["k0"]), (TENANT_B, ["k0", "k1"])]


async def test_a_lone_read_does_not_wait_and_sees_what_was_committed_before_it(points: CountingPool) -> None:
    reads = PointReads(points, _SQL, "key")
    assert await reads.fetch(TENANT_A, "new") is None
    await points.pool.execute("INSERT INTO bench_points VALUES ($1, 'new', 'fresh')", TENANT_A)
    assert (await reads.fetch(TENANT_A, "new"))["value"] == "fresh"
    assert len(points.statements) == 2


async def test_reads_asked_while_statements_are_out_gather_into_the_next(points: CountingPool) -> None:
    reads = PointReads(points, _SQL, "key")
    # Start batching.MAX_IN_FLIGHT statements, one read each, then ask for ten more at once.
    first = []
    for i in range(batching.MAX_IN_FLIGHT):
        first.append(asyncio.create_task(reads.fetch(TENANT_A, f"k{i}")))
        await asyncio.sleep(0)  # the read is asked for ...
        await asyncio.sleep(0)  # ... and its statement goes out alone
    later = [asyncio.create_task(reads.fetch(TENANT_A, f"k{i}")) for i in range(10, 20)]
    await asyncio.gather(*first, *later)
    assert [len(keys) for _, keys in points.statements] == [1] * batching.MAX_IN_FLIGHT + [10]


async def test_a_failed_statement_fails_every_read_in_it_and_the_next_batch_reads_again(
        points: CountingPool) -> None:
    reads = PointReads(points, _SQL, "key")
    points.fail = asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout")
    results = await asyncio.gather(reads.fetch(TENANT_A, "k1"), reads.fetch(TENANT_A, "k2"), return_exceptions=True)
    assert [type(result) for result in results] == [asyncpg.exceptions.QueryCanceledError] * 2
    points.fail = None
    assert (await reads.fetch(TENANT_A, "k1"))["value"] == "a1"


async def test_a_reader_that_gave_up_leaves_the_others_their_rows(points: CountingPool) -> None:
    reads = PointReads(points, _SQL, "key")
    impatient = asyncio.create_task(reads.fetch(TENANT_A, "k3"))
    patient = asyncio.create_task(reads.fetch(TENANT_A, "k3"))
    await asyncio.sleep(0)
    impatient.cancel()
    assert (await patient)["value"] == "a3"
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_a_turn_asking_more_than_a_statement_carries_is_split(points: CountingPool,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "MAX_BATCH", 16)
    reads = PointReads(points, _SQL, "key")
    rows = await asyncio.gather(*(reads.fetch(TENANT_A, f"k{i}") for i in range(40)))
    assert [row["value"] for row in rows] == [f"a{i}" for i in range(40)]
    assert [len(keys) for _, keys in points.statements] == [16, 16, 8]


# GroupAppends ---------------------------------------------------------------------------------

_INSERT = "INSERT INTO grouped (tenant_id, event_id, name) VALUES ($1, $2, $3) RETURNING event_id, txid_current() AS tx"


@pytest.fixture
async def grouped(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.execute("CREATE TABLE grouped (tenant_id uuid, event_id uuid, name text, UNIQUE (tenant_id, name))")
    return pool


def _member(tenant_id: uuid.UUID, name: str) -> tuple[tuple[object, ...], frozenset[uuid.UUID]]:
    event_id = uuid.uuid4()
    return (tenant_id, event_id, name), frozenset({event_id})


async def test_concurrent_appends_of_a_tenant_commit_together_each_with_its_own_rows(grouped: asyncpg.Pool) -> None:
    appends = GroupAppends(grouped)
    members = [_member(TENANT_A, f"n{i}") for i in range(10)]
    results = await asyncio.gather(*(appends.append(TENANT_A, _INSERT, p, ids) for p, ids in members))
    assert [{row["event_id"] for row in rows} for rows in results] == [ids for _, ids in members]
    assert len({row["tx"] for rows in results for row in rows}) == 1  # one transaction, one commit
    assert await grouped.fetchval("SELECT count(*) FROM grouped") == 10


async def test_a_failing_append_is_refused_alone_and_the_others_are_committed(grouped: asyncpg.Pool) -> None:
    await grouped.execute("INSERT INTO grouped VALUES ($1, $2, 'taken')", TENANT_A, uuid.uuid4())
    appends = GroupAppends(grouped)
    members = [_member(TENANT_A, name) for name in ("a", "taken", "b")]
    results = await asyncio.gather(*(appends.append(TENANT_A, _INSERT, p, ids) for p, ids in members),
                                   return_exceptions=True)
    assert isinstance(results[1], asyncpg.UniqueViolationError)
    assert [{row["event_id"] for row in results[i]} for i in (0, 2)] == [members[0][1], members[2][1]]
    assert sorted(await grouped.fetch("SELECT name FROM grouped")) == [("a",), ("b",), ("taken",)]


async def test_tenants_commit_apart(grouped: asyncpg.Pool) -> None:
    appends = GroupAppends(grouped)
    a, b = _member(TENANT_A, "same"), _member(TENANT_B, "same")
    rows_a, rows_b = await asyncio.gather(appends.append(TENANT_A, _INSERT, *a), appends.append(TENANT_B, _INSERT, *b))
    assert rows_a[0]["tx"] != rows_b[0]["tx"]


async def test_appends_arriving_while_a_batch_is_out_go_in_the_next(grouped: asyncpg.Pool) -> None:
    appends = GroupAppends(grouped)
    first = asyncio.create_task(appends.append(TENANT_A, _INSERT, *_member(TENANT_A, "first")))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first batch is out
    later = [_member(TENANT_A, f"later{i}") for i in range(5)]
    results = await asyncio.gather(first, *(appends.append(TENANT_A, _INSERT, p, ids) for p, ids in later))
    transactions = [rows[0]["tx"] for rows in results]
    assert transactions[0] != transactions[1] and len(set(transactions[1:])) == 1


async def test_an_append_given_up_before_its_turn_is_not_written(grouped: asyncpg.Pool) -> None:
    appends = GroupAppends(grouped)
    kept = asyncio.create_task(appends.append(TENANT_A, _INSERT, *_member(TENANT_A, "kept")))
    dropped = asyncio.create_task(appends.append(TENANT_A, _INSERT, *_member(TENANT_A, "dropped")))
    await asyncio.sleep(0)
    dropped.cancel()
    await kept
    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert await grouped.fetch("SELECT name FROM grouped") == [("kept",)]
