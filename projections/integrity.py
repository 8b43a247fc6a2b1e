"""Checking a tenant's stored history against its seals and signed checkpoints.

Every finding is reported, not only the first, in the shape of CloudTrail's digest validation:
what is wrong, and where (the leaf's ``seq``, the event's ``position`` and ``event_id``).

- ``modified``: an event's row no longer hashes to its leaf.
- ``deleted``: a sealed event is gone (``truncated`` when the gone events are the tail).
- ``inserted``: an event the sealer has read past carries no seal (it was put there later).
- ``reordered``: a sealed event is found at another position than it was sealed at.
- ``truncated``: the tail of the events, or of the leaves a checkpoint signed, is gone.
- ``leaves_tampered``: the leaf table no longer gives the root a valid checkpoint signed.
- ``signature_invalid``: a checkpoint whose signature does not verify with the public key.
- ``fork``: two validly signed checkpoints that cannot both describe one append-only log.

A signed checkpoint localises a rewritten leaf to the leaves it added over the checkpoint
before it; when the events themselves are intact the leaf is pinned exactly.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from eventstore import EventStore
from eventstore.leaf import event_leaf_hash
from eventstore.merkle import Frontier, root
from eventstore.signed_note import CheckpointBody, NoteError, Signature, Verifier, open_note
from projections.sealer import NAME as SEALER
from projections.sealer import origin

KINDS = ("modified", "deleted", "inserted", "reordered", "truncated", "leaves_tampered",
         "signature_invalid", "fork")

_SEALS = """
SELECT seq, position, transaction_id, event_id, leaf_hash FROM event_seals WHERE tenant_id = $1 ORDER BY seq
"""
_CHECKPOINT_NOTES = "SELECT tree_size, note FROM integrity_checkpoints WHERE tenant_id = $1 ORDER BY tree_size"
# How far the sealer has read the tenant (its per-tenant checkpoint), and how far the tenant's
# appends have numbered: an unsealed event inside the first, or beyond the second, was written
# around the log.
_SEALER_CHECKPOINT = """
SELECT coalesce((SELECT tenant_position FROM projection_tenant_checkpoints WHERE name = $1 AND tenant_id = $2), 0)
       AS sealed_through,
       coalesce((SELECT position FROM tenant_heads WHERE tenant_id = $2), 0) AS head
"""
_SEALED_TENANTS = "SELECT tenant_id FROM integrity_heads"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    tenant_id: uuid.UUID
    seq: int | None
    position: int | None
    event_id: uuid.UUID | None
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"finding": self.kind, "tenant_id": str(self.tenant_id), "seq": self.seq,
                "position": self.position, "event_id": str(self.event_id) if self.event_id else None,
                "detail": self.detail, **self.extra}


@dataclass(frozen=True, slots=True)
class Seal:
    seq: int
    position: int
    transaction_id: int
    event_id: uuid.UUID
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int
    transaction_id: int
    leaf_hash: bytes
    tenant_position: int = 0


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    tree_size: int
    root_hash: bytes
    source: str  # "database" or the file it came from


@dataclass(slots=True)
class TenantReport:
    tenant_id: uuid.UUID
    sealed: int = 0
    events: int = 0
    unsealed: int = 0
    checkpoints: int = 0
    signed_size: int = 0
    findings: list[Finding] = field(default_factory=list)


async def sealed_tenants(pool: asyncpg.Pool) -> list[uuid.UUID]:
    return [row["tenant_id"] for row in await pool.fetch(_SEALED_TENANTS)]


async def verify_tenant(store: EventStore, tenant_id: uuid.UUID, verifier: Verifier,
                        outside_notes: Sequence[tuple[str, str]] = ()) -> TenantReport:
    """Check one tenant. ``outside_notes`` are (source, signed note) pairs kept elsewhere, a
    SIEM's copies; those whose origin is another tenant's are ignored."""
    report = TenantReport(tenant_id)
    pool = store.pool
    seals = [Seal(r["seq"], r["position"], r["transaction_id"], r["event_id"], bytes(r["leaf_hash"]))
             for r in await pool.fetch(_SEALS, tenant_id)]
    report.sealed = len(seals)
    stored_notes = [("database", row["note"]) for row in await pool.fetch(_CHECKPOINT_NOTES, tenant_id)]
    checkpoints = _signed_checkpoints(report, seals, verifier, [*stored_notes, *outside_notes])
    report.checkpoints = len(checkpoints)
    report.signed_size = max((c.tree_size for c in checkpoints), default=0)

    events: dict[uuid.UUID, StoredEvent] = {}
    # The rows as stored (personal values sealed), as the sealer hashed them: never decrypted.
    async for batch in EventStore(pool).history(tenant_id, batch_size=5000):
        for envelope in batch:
            events[envelope.event_id] = StoredEvent(envelope.position, envelope.transaction_id,
                                                    event_leaf_hash(envelope), envelope.tenant_position)
    report.events = len(events)

    gaps = sorted(set(range(seals[-1].seq + 1)) - {seal.seq for seal in seals}) if seals else []
    for seq in gaps:
        # Without a dense leaf table no root can be recomputed: report the hole, and check
        # the events against the seals that remain.
        report.findings.append(Finding("leaves_tampered", tenant_id, seq, None, None,
                                       "the seal row of this leaf is gone"))
    pinned = set() if gaps else _check_leaves(report, seals, checkpoints, events)
    _check_events(report, seals, events, pinned)
    row = await pool.fetchrow(_SEALER_CHECKPOINT, SEALER, tenant_id)
    _check_unsealed(report, seals, events, row["sealed_through"], row["head"])
    report.findings.sort(key=lambda f: (f.seq if f.seq is not None else -1, f.position or 0, f.kind))
    return report


def _at(report: TenantReport, seals: Sequence[Seal], kind: str, seq: int, detail: str, **extra: Any) -> Finding:
    # seals[i].seq == i unless seal rows were deleted; then verify_tenant checks no leaves.
    seal = seals[seq] if 0 <= seq < len(seals) and seals[seq].seq == seq else None
    return Finding(kind, report.tenant_id, seq, seal.position if seal else None,
                   seal.event_id if seal else None, detail, extra)


def _signed_checkpoints(report: TenantReport, seals: Sequence[Seal], verifier: Verifier,
                        notes: Sequence[tuple[str, str]]) -> list[SignedCheckpoint]:
    """The checkpoints whose signature verifies; the others become findings."""
    expected_origin = origin(verifier.name, report.tenant_id)
    valid: dict[tuple[int, bytes], SignedCheckpoint] = {}
    for source, note in notes:
        try:
            body_text, signature = open_note(note, verifier)
            body = CheckpointBody.parse(body_text)
        except NoteError as error:
            if source == "database":
                report.findings.append(Finding("signature_invalid", report.tenant_id, None, None, None,
                                               f"a stored checkpoint cannot be read: {error}", {"source": source}))
            continue
        if body.origin != expected_origin:
            if source == "database":
                report.findings.append(_at(report, seals, "signature_invalid", body.tree_size - 1,
                                           f"a stored checkpoint names another log: {body.origin}",
                                           tree_size=body.tree_size, source=source))
            continue
        if signature is not Signature.VALID:
            reason = "does not verify" if signature is Signature.INVALID else "is not signed by this key"
            report.findings.append(_at(report, seals, "signature_invalid", body.tree_size - 1,
                                       f"the checkpoint of tree size {body.tree_size} {reason}",
                                       tree_size=body.tree_size, source=source))
            continue
        valid.setdefault((body.tree_size, body.root_hash), SignedCheckpoint(body.tree_size, body.root_hash, source))
    return sorted(valid.values(), key=lambda c: c.tree_size)


def _prefix_roots(leaves: Sequence[bytes], sizes: set[int]) -> dict[int, bytes]:
    roots = {}
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
        if frontier.size in sizes:
            roots[frontier.size] = frontier.root()
    return roots


def _check_leaves(report: TenantReport, seals: Sequence[Seal], checkpoints: Sequence[SignedCheckpoint],
                  events: dict[uuid.UUID, StoredEvent]) -> set[int]:
    """Compare the leaf table with every signed checkpoint; return the seqs whose leaf was
    pinned as rewritten (their events are intact, so they are not also ``modified``)."""
    leaves = [seal.leaf_hash for seal in seals]
    within = [c for c in checkpoints if c.tree_size <= len(leaves)]
    beyond = [c for c in checkpoints if c.tree_size > len(leaves)]
    if beyond:
        largest = beyond[-1]
        report.findings.append(Finding(
            "truncated", report.tenant_id, len(leaves), None, None,
            f"a checkpoint signed {largest.tree_size} leaves; {len(leaves)} remain",
            {"tree_size": largest.tree_size, "missing": largest.tree_size - len(leaves)}))
    roots = _prefix_roots(leaves, {c.tree_size for c in within})
    matched = [c for c in within if roots[c.tree_size] == c.root_hash]
    mismatched = [c for c in within if roots[c.tree_size] != c.root_hash]
    tampered: SignedCheckpoint | None = None
    for checkpoint in mismatched:
        later = [c for c in matched if c.tree_size >= checkpoint.tree_size]
        if later:
            report.findings.append(_at(
                report, seals, "fork", checkpoint.tree_size - 1,
                f"the checkpoint of tree size {checkpoint.tree_size} ({checkpoint.source}) is not a prefix of "
                f"the signed tree of size {later[0].tree_size} ({later[0].source})",
                tree_size=checkpoint.tree_size, other_tree_size=later[0].tree_size))
        elif tampered is None:
            tampered = checkpoint
    if tampered is None:
        return set()
    low = max((c.tree_size for c in matched if c.tree_size < tampered.tree_size), default=0)
    high = tampered.tree_size - 1
    # Where the event still hashes to something else than its leaf, and putting the event's
    # hash back restores the signed root, the leaf was rewritten over an intact event.
    repaired = list(leaves[:tampered.tree_size])
    pinned = set()
    for seq in range(low, high + 1):
        event = events.get(seals[seq].event_id)
        if event is not None and event.position == seals[seq].position and event.leaf_hash != leaves[seq]:
            repaired[seq] = event.leaf_hash
            pinned.add(seq)
    if pinned and root(repaired) == tampered.root_hash:
        for seq in sorted(pinned):
            report.findings.append(_at(
                report, seals, "leaves_tampered", seq,
                f"the leaf was rewritten: the event still hashes to the leaf the checkpoint of tree size "
                f"{tampered.tree_size} signed", tree_size=tampered.tree_size))
        return pinned
    finding = _at(report, seals, "leaves_tampered", low,
                  f"the leaves {low}..{high} no longer give the root the checkpoint of tree size "
                  f"{tampered.tree_size} signed", tree_size=tampered.tree_size, seq_last=high)
    if low != high:
        finding = Finding(finding.kind, finding.tenant_id, low, None, None, finding.detail, finding.extra)
    report.findings.append(finding)
    return set()


def _check_events(report: TenantReport, seals: Sequence[Seal], events: dict[uuid.UUID, StoredEvent],
                  pinned: set[int]) -> None:
    missing: list[int] = []
    for seal in seals:
        event = events.get(seal.event_id)
        if event is None:
            missing.append(seal.seq)
        elif event.position != seal.position:
            report.findings.append(_at(report, seals, "reordered", seal.seq,
                                       f"sealed at position {seal.position}, now at {event.position}",
                                       found_at_position=event.position))
        elif event.leaf_hash != seal.leaf_hash and seal.seq not in pinned:
            report.findings.append(_at(report, seals, "modified", seal.seq,
                                       "the stored row no longer hashes to its sealed leaf"))
    # Missing events that run to the end of the sealed leaves are a cut tail, reported once.
    end = seals[-1].seq + 1 if seals else 0
    tail = end
    while missing and missing[-1] == tail - 1:
        tail = missing.pop()
    if tail < end:
        report.findings.append(_at(report, seals, "truncated", tail,
                                   f"the last {end - tail} sealed event(s) are gone", missing=end - tail))
    for seq in missing:
        report.findings.append(_at(report, seals, "deleted", seq, "a sealed event is gone"))


def _check_unsealed(report: TenantReport, seals: Sequence[Seal], events: dict[uuid.UUID, StoredEvent],
                    sealed_through: int, head: int) -> None:
    sealed_ids = {seal.event_id for seal in seals}
    for event_id, event in sorted(events.items(), key=lambda item: item[1].position):
        if event_id in sealed_ids:
            continue
        if event.tenant_position <= sealed_through or event.tenant_position > head:
            report.findings.append(Finding(
                "inserted", report.tenant_id, None, event.position, event_id,
                "an event the sealer has read past carries no seal: it was written around the log"))
        else:
            report.unsealed += 1
