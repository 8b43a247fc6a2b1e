import asyncio
import uuid

import asyncpg
import pytest

from eventstore import EventStore, NewEvent
from eventstore.leaf import event_leaf_hash
from eventstore.merkle import root
from eventstore.signed_note import CheckpointBody, Signature, SigningKey, open_note
from projections import sealer
from projections.sealer import CheckpointPolicy, Sealer, SealerRunner

TENANT = uuid.UUID("00000000-0000-0000-0000-00000000000a")
OTHER = uuid.UUID("00000000-0000-0000-0000-00000000000b")
KEY = SigningKey.generate("scim-gateway")


async def append(store: EventStore, tenant: uuid.UUID, stream: str, count: int = 1):
    return await store.append(stream, None, [NewEvent("UserCreated", {"userName": f"{stream}-{i}"})
                                             for i in range(count)], {"actor": {"owner": "t"}}, tenant_id=tenant)


def runner(store: EventStore, every_events: int = 1000, every_seconds: float = 3600.0) -> SealerRunner:
    return SealerRunner(store, Sealer(KEY, CheckpointPolicy(every_events, every_seconds)))


async def seals(store: EventStore, tenant: uuid.UUID):
    return await store.pool.fetch("SELECT * FROM event_seals WHERE tenant_id = $1 ORDER BY seq", tenant)


async def test_each_tenant_gets_dense_sequence_numbers_in_log_order(store):
    a1 = await append(store, TENANT, "a", 2)
    b1 = await append(store, OTHER, "b", 1)
    a2 = await append(store, TENANT, "c", 1)
    await runner(store).catch_up()

    assert [(r["seq"], r["event_id"]) for r in await seals(store, TENANT)] == [
        (i, e.event_id) for i, e in enumerate([*a1, *a2])]
    assert [(r["seq"], r["event_id"]) for r in await seals(store, OTHER)] == [(0, b1[0].event_id)]


async def test_the_leaf_is_the_hash_of_the_stored_row(store):
    [stored] = await append(store, TENANT, "a")
    await runner(store).catch_up()
    [reread] = await store.read_stream(TENANT, "a")

    [seal] = await seals(store, TENANT)
    assert bytes(seal["leaf_hash"]) == event_leaf_hash(reread) == event_leaf_hash(stored)


async def test_a_checkpoint_is_signed_once_n_events_are_unsigned(store):
    await append(store, TENANT, "a", 2)
    await runner(store, every_events=3).catch_up()
    assert await sealer.checkpoints(store.pool, TENANT) == []

    await append(store, TENANT, "b", 2)
    await runner(store, every_events=3).catch_up()
    [checkpoint] = await sealer.checkpoints(store.pool, TENANT)
    leaves = [bytes(r["leaf_hash"]) for r in await seals(store, TENANT)]
    body, signature = open_note(checkpoint["note"], KEY.verifier)
    assert signature is Signature.VALID
    assert CheckpointBody.parse(body) == CheckpointBody(f"scim-gateway/{TENANT}", 4, root(leaves))


async def test_a_checkpoint_is_signed_when_the_interval_has_passed(store):
    await append(store, TENANT, "a", 1)
    await runner(store).catch_up()
    assert await sealer.checkpoints(store.pool, TENANT) == []

    # The last checkpoint was "an hour ago": the next round signs the one unsigned leaf.
    await store.pool.execute("UPDATE integrity_heads SET checkpoint_at = now() - interval '2 hours'")
    await runner(store).catch_up()
    assert [c["tree_size"] for c in await sealer.checkpoints(store.pool, TENANT)] == [1]


async def test_resealing_from_a_reset_checkpoint_changes_nothing(store):
    await append(store, TENANT, "a", 3)
    await runner(store, every_events=1).catch_up()
    before = [dict(r) for r in await seals(store, TENANT)]
    await store.pool.execute("UPDATE projection_checkpoints SET transaction_id = 0, position = 0 WHERE name = 'sealer'")

    await runner(store, every_events=1).catch_up()
    assert [dict(r) for r in await seals(store, TENANT)] == before


async def test_two_sealers_at_once_seal_every_event_once(store):
    for i in range(20):
        await append(store, TENANT, f"s{i}", 3)
    await asyncio.gather(runner(store).catch_up(), runner(store).catch_up())
    assert [r["seq"] for r in await seals(store, TENANT)] == list(range(60))


@pytest.mark.parametrize("statement", ["UPDATE event_seals SET leaf_hash = leaf_hash", "DELETE FROM event_seals",
                                       "TRUNCATE event_seals", "UPDATE integrity_checkpoints SET note = note",
                                       "DELETE FROM integrity_checkpoints", "TRUNCATE integrity_checkpoints"])
async def test_seals_and_checkpoints_are_append_only(store, statement):
    await append(store, TENANT, "a", 2)
    await runner(store, every_events=1).catch_up()
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="is append-only"):
        await store.pool.execute(statement)
