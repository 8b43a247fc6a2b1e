"""Tamper evidence: each attack by a database superuser (the append-only trigger bypassed with
``session_replication_role = replica``) yields exactly the expected finding, where it happened.

The fixture's tenant has eight events, sealed and checkpointed one at a time (checkpoints of
tree size 1 to 8), beside another tenant whose log nobody touches.
"""

import uuid

import asyncpg
import pytest

from eventstore import Envelope, EventStore, NewEvent
from eventstore.leaf import event_leaf_hash
from eventstore.merkle import Frontier
from eventstore.signed_note import CheckpointBody, SigningKey
from projections import sealer
from projections.integrity import verify_tenant
from projections.sealer import CheckpointPolicy, Sealer, SealerRunner

TENANT = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
OTHER = uuid.UUID("00000000-0000-0000-0000-0000000000b2")
KEY = SigningKey.generate("scim-gateway")


async def seal(store: EventStore, key: SigningKey = KEY) -> None:
    await SealerRunner(store, Sealer(key, CheckpointPolicy(every_events=1))).catch_up()


@pytest.fixture
async def log(store: EventStore) -> list[Envelope]:
    envelopes = []
    for i in range(8):
        [envelope] = await store.append(
            f"user-{i}", 0, [NewEvent("UserCreated", {"userName": f"user{i}@example.com", "n": i})],
            {"actor": {"token_id": "t", "owner": "scim-bot@example.com"}}, tenant_id=TENANT)
        envelopes.append(envelope)
        if i < 3:
            await store.append(f"other-{i}", 0, [NewEvent("UserCreated", {"userName": "x"})], {}, tenant_id=OTHER)
        await seal(store)
    return envelopes


async def as_superuser(pool: asyncpg.Pool, *statements: tuple) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SET LOCAL session_replication_role = replica")
        for sql, *args in statements:
            await connection.execute(sql, *args)


async def findings(store: EventStore, outside: list[tuple[str, str]] = ()) -> list[tuple]:
    report = await verify_tenant(store, TENANT, KEY.verifier, outside)
    other = await verify_tenant(store, OTHER, KEY.verifier)
    assert other.findings == []
    return [(f.kind, f.seq, f.position, f.event_id) for f in report.findings]


async def notes(store: EventStore) -> list[tuple[str, str]]:
    """The SIEM's copies of every checkpoint, taken before the attack."""
    return [("siem", row["note"]) for row in await sealer.checkpoints(store.pool, TENANT)]


async def test_an_untouched_log_has_no_findings(store, log):
    report = await verify_tenant(store, TENANT, KEY.verifier, await notes(store))
    assert (report.findings, report.sealed, report.events, report.checkpoints, report.unsealed) == ([], 8, 8, 8, 0)


async def test_updating_a_row_is_found_as_modified(store, log):
    await as_superuser(store.pool, ("UPDATE events SET data = data || '{\"userName\": \"evil\"}' WHERE position = $1",
                                    log[3].position))
    assert await findings(store) == [("modified", 3, log[3].position, log[3].event_id)]


async def test_a_changed_time_is_found_as_modified(store, log):
    await as_superuser(store.pool, ("UPDATE events SET recorded_at = recorded_at - interval '1 day' WHERE position = $1",
                                    log[5].position))
    assert await findings(store) == [("modified", 5, log[5].position, log[5].event_id)]


async def test_deleting_a_row_is_found_as_deleted(store, log):
    await as_superuser(store.pool, ("DELETE FROM events WHERE position = $1", log[2].position))
    assert await findings(store) == [("deleted", 2, log[2].position, log[2].event_id)]


async def test_a_forged_insert_is_found_as_inserted(store, log):
    forged = uuid.uuid4()
    # Slipped in as part of an old, already sealed transaction, with a position of its own.
    await as_superuser(store.pool, (
        """INSERT INTO events (position, transaction_id, event_id, tenant_id, stream_id, stream_version, type, data,
                               tenant_position)
           OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, 'user-x', 1, 'UserCreated', '{"userName": "ghost"}', $1)""",
        1000, log[4].transaction_id, forged, TENANT))
    assert await findings(store) == [("inserted", None, 1000, forged)]


async def test_swapping_two_rows_is_found_as_reordered(store, log):
    a, b = log[2], log[5]
    swap = """INSERT INTO events (position, transaction_id, event_id, tenant_id, stream_id, stream_version, type,
                                  schema_version, data, metadata, recorded_at, tenant_position)
              OVERRIDING SYSTEM VALUE
              SELECT $2, transaction_id, event_id, tenant_id, stream_id, stream_version, type, schema_version,
                     data, metadata, recorded_at, tenant_position FROM moved WHERE position = $1"""
    await as_superuser(
        store.pool,
        ("CREATE TEMP TABLE moved ON COMMIT DROP AS SELECT * FROM events WHERE position = ANY($1::bigint[])",
         [a.position, b.position]),
        ("DELETE FROM events WHERE position = ANY($1::bigint[])", [a.position, b.position]),
        (swap, a.position, b.position),
        (swap, b.position, a.position),
    )
    assert await findings(store) == [("reordered", 2, a.position, a.event_id),
                                     ("reordered", 5, b.position, b.event_id)]


async def test_cutting_the_tail_of_the_events_is_found_as_truncated(store, log):
    await as_superuser(store.pool, ("DELETE FROM events WHERE position >= $1 AND tenant_id = $2", log[6].position, TENANT))
    report = await verify_tenant(store, TENANT, KEY.verifier)
    assert [(f.kind, f.seq, f.position, f.event_id, f.extra) for f in report.findings] == [
        ("truncated", 6, log[6].position, log[6].event_id, {"missing": 2})]


async def test_cutting_the_tail_with_its_leaves_and_checkpoints_is_found_from_a_kept_checkpoint(store, log):
    kept = await notes(store)
    await as_superuser(
        store.pool,
        ("DELETE FROM events WHERE position >= $1 AND tenant_id = $2", log[6].position, TENANT),
        ("DELETE FROM event_seals WHERE tenant_id = $1 AND seq >= 6", TENANT),
        ("DELETE FROM integrity_checkpoints WHERE tenant_id = $1 AND tree_size > 6", TENANT),
    )
    assert await findings(store) == []  # the database alone is consistent now
    assert await findings(store, kept) == [("truncated", 6, None, None)]


async def test_rewriting_a_leaf_over_an_intact_event_is_found_as_leaves_tampered(store, log):
    await as_superuser(store.pool, ("UPDATE event_seals SET leaf_hash = $2 WHERE tenant_id = $1 AND seq = 4",
                                    TENANT, bytes(32)))
    assert await findings(store) == [("leaves_tampered", 4, log[4].position, log[4].event_id)]


async def _rewrite_history(store: EventStore, log: list[Envelope], seq: int) -> None:
    """Change an event and make the leaf table agree with it, the way a careful attacker would."""
    await as_superuser(store.pool, ("UPDATE events SET data = '{\"userName\": \"evil\"}' WHERE position = $1",
                                    log[seq].position))
    [changed] = [e for e in await store.read_stream(TENANT, f"user-{seq}")]
    await as_superuser(store.pool, ("UPDATE event_seals SET leaf_hash = $2 WHERE tenant_id = $1 AND seq = $3",
                                    TENANT, event_leaf_hash(changed), seq))


async def test_a_changed_event_with_its_leaf_rewritten_is_found_as_leaves_tampered(store, log):
    await _rewrite_history(store, log, 3)
    assert await findings(store) == [("leaves_tampered", 3, log[3].position, log[3].event_id)]


async def _resign(store: EventStore, key: SigningKey) -> None:
    leaves = [bytes(r["leaf_hash"]) for r in await store.pool.fetch(
        "SELECT leaf_hash FROM event_seals WHERE tenant_id = $1 ORDER BY seq", TENANT)]
    frontier = Frontier()
    for size, leaf in enumerate(leaves, 1):
        frontier.append(leaf)
        note = key.sign(CheckpointBody(f"scim-gateway/{TENANT}", size, frontier.root()).text())
        await as_superuser(store.pool, ("UPDATE integrity_checkpoints SET note = $3, root_hash = $4 "
                                        "WHERE tenant_id = $1 AND tree_size = $2", TENANT, size, note, frontier.root()))


async def test_checkpoints_resigned_with_a_foreign_key_are_found_as_signature_invalid(store, log):
    kept = await notes(store)
    await _rewrite_history(store, log, 3)
    await _resign(store, SigningKey.generate("scim-gateway"))

    assert await findings(store) == [("signature_invalid", seq, log[seq].position, log[seq].event_id)
                                     for seq in range(8)]
    # With the SIEM's copies the rewritten leaf is pinned too.
    assert await findings(store, kept) == sorted(
        [("signature_invalid", seq, log[seq].position, log[seq].event_id) for seq in range(8)]
        + [("leaves_tampered", 3, log[3].position, log[3].event_id)], key=lambda f: (f[1], f[2], f[0]))


async def test_history_resigned_with_the_real_key_is_a_fork_of_the_kept_checkpoints(store, log):
    kept = [note for note in await notes(store) if CheckpointBody.parse(note[1].split("\n\n")[0] + "\n").tree_size == 4]
    await _rewrite_history(store, log, 3)
    await _resign(store, KEY)  # the key was stolen: everything in the database agrees again

    assert await findings(store) == []
    assert await findings(store, kept) == [("fork", 3, log[3].position, log[3].event_id)]


async def test_every_finding_is_reported_not_only_the_first(store, log):
    await as_superuser(
        store.pool,
        ("UPDATE events SET data = '{}' WHERE position = $1", log[1].position),
        ("DELETE FROM events WHERE position = $1", log[4].position),
    )
    assert await findings(store) == [("modified", 1, log[1].position, log[1].event_id),
                                     ("deleted", 4, log[4].position, log[4].event_id)]


async def test_events_not_sealed_yet_are_counted_not_reported(store, log):
    await store.append("late", 0, [NewEvent("UserCreated", {"userName": "late"})], {}, tenant_id=TENANT)
    report = await verify_tenant(store, TENANT, KEY.verifier)
    assert (report.findings, report.unsealed) == ([], 1)


async def test_a_deleted_seal_row_shows_as_tampered_leaves_and_an_unsealed_event(store, log):
    await as_superuser(store.pool, ("DELETE FROM event_seals WHERE tenant_id = $1 AND seq = 2", TENANT))
    assert await findings(store) == [("inserted", None, log[2].position, log[2].event_id),
                                     ("leaves_tampered", 2, None, None)]
