"""The sealer: a catch-up projection that gives each event a leaf in its tenant's Merkle tree
and signs checkpoints of the tree's root (docs/integrity.md).

It runs off the write path, under ``CatchUpRunner``: writers take no lock for it, and the
runner's row lock on its checkpoint makes one process at a time the sealer (the others wait
their turn per batch). It reads the log with the same gap-free reader as every projection, so
a late-committing transaction is sealed after the ones before it, never skipped. SQL for
``event_seals``, ``integrity_heads`` and ``integrity_checkpoints`` is written here only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from eventstore import Envelope, EventStore
from eventstore.leaf import event_leaf_hash
from eventstore.merkle import Frontier
from eventstore.signed_note import CheckpointBody, SigningKey
from projections.runner import CatchUpRunner

NAME = "sealer"

_ALREADY_SEALED = "SELECT event_id FROM event_seals WHERE event_id = ANY($1::uuid[])"
_HEADS = """
SELECT tenant_id, tree_size, frontier, checkpoint_size FROM integrity_heads
WHERE tenant_id = ANY($1::uuid[]) FOR UPDATE
"""
_SAVE_HEAD = """
INSERT INTO integrity_heads (tenant_id, tree_size, frontier) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id) DO UPDATE SET tree_size = excluded.tree_size, frontier = excluded.frontier
"""
# Heads due a checkpoint: N unsigned leaves, or any unsigned leaf and T seconds since the last.
_DUE = """
SELECT tenant_id, tree_size, frontier FROM integrity_heads
WHERE tree_size > checkpoint_size
  AND (tree_size - checkpoint_size >= $1 OR checkpoint_at <= now() - make_interval(secs => $2))
  AND ($3::uuid[] IS NULL OR tenant_id = ANY($3::uuid[]))
FOR UPDATE
"""
_SIGNED = """
INSERT INTO integrity_checkpoints (tenant_id, tree_size, root_hash, note) VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant_id, tree_size) DO NOTHING
"""
_SIGNED_HEAD = "UPDATE integrity_heads SET checkpoint_size = $2, checkpoint_at = now() WHERE tenant_id = $1"
# One process signs time-due checkpoints at a time; the others skip the round (the projector's
# checkpoints are per tenant now, so there is no single row to lock for this).
_LEADER = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))"


def origin(key_name: str, tenant_id: uuid.UUID) -> str:
    """The checkpoint's origin line: one log per tenant, named under the signing key."""
    return f"{key_name}/{tenant_id}"


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    every_events: int = 1000
    every_seconds: float = 60.0


class Sealer:
    """The projection ``CatchUpRunner`` drives; signs when a tenant's checkpoint is due."""

    def __init__(self, signing_key: SigningKey | None, policy: CheckpointPolicy = CheckpointPolicy()) -> None:
        # Without a key the sealer still seals; checkpoints wait until one is configured.
        self.signing_key = signing_key
        self.policy = policy

    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        # Idempotent by event: a reset checkpoint re-reads sealed events and leaves them be.
        sealed = {row["event_id"] for row in await connection.fetch(
            _ALREADY_SEALED, [e.event_id for e in envelopes])}
        fresh = [e for e in envelopes if e.event_id not in sealed]
        if not fresh:
            return
        tenants = list(dict.fromkeys(e.tenant_id for e in fresh))
        frontiers = {row["tenant_id"]: Frontier.decode(row["tree_size"], row["frontier"])
                     for row in await connection.fetch(_HEADS, tenants)}
        rows = []
        for envelope in fresh:
            frontier = frontiers.setdefault(envelope.tenant_id, Frontier())
            leaf = event_leaf_hash(envelope)
            rows.append((envelope.tenant_id, frontier.size, envelope.position, envelope.transaction_id,
                         envelope.event_id, leaf))
            frontier.append(leaf)
        await connection.copy_records_to_table(
            "event_seals", records=rows,
            columns=("tenant_id", "seq", "position", "transaction_id", "event_id", "leaf_hash"))
        await connection.executemany(_SAVE_HEAD, [
            (tenant, frontiers[tenant].size, frontiers[tenant].encode()) for tenant in tenants])
        await self._sign(connection, tenants)

    async def sign_due(self, connection: asyncpg.Connection) -> int:
        """Sign every tenant whose checkpoint is due by time; as the leader, so once."""
        async with connection.transaction():
            if not await connection.fetchval(_LEADER, f"{NAME}-signing"):
                return 0
            return await self._sign(connection, None)

    async def _sign(self, connection: asyncpg.Connection, tenants: list[uuid.UUID] | None) -> int:
        if self.signing_key is None:
            return 0
        due = await connection.fetch(_DUE, self.policy.every_events, self.policy.every_seconds, tenants)
        for row in due:
            frontier = Frontier.decode(row["tree_size"], row["frontier"])
            root_hash = frontier.root()
            body = CheckpointBody(origin(self.signing_key.name, row["tenant_id"]), frontier.size, root_hash)
            await connection.execute(_SIGNED, row["tenant_id"], frontier.size, root_hash,
                                     self.signing_key.sign(body.text()))
            await connection.execute(_SIGNED_HEAD, row["tenant_id"], frontier.size)
        return len(due)


class SealerRunner(CatchUpRunner):
    """The sealer's catch-up loop; it also signs checkpoints that fall due by time."""

    def __init__(self, store: EventStore, sealer: Sealer, batch_size: int = 2000) -> None:
        # Leaves cover the rows as stored, personal values sealed: read them without the cipher
        # whatever store is passed, so shredding a key never changes what a leaf covers.
        super().__init__(EventStore(store.pool), NAME, sealer, batch_size)
        self.sealer = sealer
        # Time-due checkpoints are looked for a few times per interval, not every round.
        self.sign_every = min(sealer.policy.every_seconds / 4, 5.0)
        self._signed_at = float("-inf")

    async def catch_up(self, *, wait_for_others: bool = True) -> int:
        applied = await super().catch_up(wait_for_others=wait_for_others)
        now = time.monotonic()
        if now - self._signed_at >= self.sign_every:
            self._signed_at = now
            async with self.store.pool.acquire() as connection:
                await self.sealer.sign_due(connection)
        return applied

    async def run(self, idle_seconds: float = 2.0, batch_seconds: float = 1.0) -> None:
        """Rounds a second apart under load: more events per batch, far fewer round trips
        beside the writers' (bench/sealing.py), and a second is small beside the checkpoint
        interval that bounds how long an alteration can go unnoticed."""
        await super().run(idle_seconds, batch_seconds)


# Reading seals and checkpoints (the HTTP API, the export, proofs) ------------------------

_CHECKPOINTS = """
SELECT tree_size, root_hash, note, signed_at FROM integrity_checkpoints
WHERE tenant_id = $1 AND tree_size > $2 ORDER BY tree_size LIMIT $3
"""
_LATEST_CHECKPOINT = """
SELECT tree_size, root_hash, note, signed_at FROM integrity_checkpoints
WHERE tenant_id = $1 ORDER BY tree_size DESC LIMIT 1
"""
_SEAL_OF = "SELECT seq, position, leaf_hash FROM event_seals WHERE tenant_id = $1 AND event_id = $2"
_LEAVES = "SELECT leaf_hash FROM event_seals WHERE tenant_id = $1 AND seq < $2 ORDER BY seq"
_TREE_SIZE = "SELECT tree_size FROM integrity_heads WHERE tenant_id = $1"


async def checkpoints(executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID,
                      after_size: int = 0, limit: int | None = None) -> list[asyncpg.Record]:
    return await executor.fetch(_CHECKPOINTS, tenant_id, after_size, limit)


async def latest_checkpoint(executor: asyncpg.Pool | asyncpg.Connection,
                            tenant_id: uuid.UUID) -> asyncpg.Record | None:
    return await executor.fetchrow(_LATEST_CHECKPOINT, tenant_id)


async def seal_of(executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID,
                  event_id: uuid.UUID) -> asyncpg.Record | None:
    return await executor.fetchrow(_SEAL_OF, tenant_id, event_id)


async def tree_size(executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID) -> int:
    return await executor.fetchval(_TREE_SIZE, tenant_id) or 0


async def leaves(executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID, size: int) -> list[bytes]:
    """The first ``size`` leaf hashes of the tenant's tree (O(size): proofs are computed from them)."""
    return [bytes(row["leaf_hash"]) for row in await executor.fetch(_LEAVES, tenant_id, size)]
