"""The leaf a stored event contributes to its tenant's Merkle tree: a fixed, canonical byte
encoding of the row as stored, so anyone holding a dump can recompute it.

Never ``jsonb::text``: PostgreSQL's text form of jsonb is an output format, not a contract.
The encoding is the tag ``scim-gateway-leaf-v1`` then each field below, in this order, as a
4-byte big-endian length followed by its UTF-8 bytes:

    position, transaction_id, event_id, tenant_id, stream_id, stream_version, type,
    schema_version, data, metadata, recorded_at

Integers are decimal; UUIDs the lower-case hyphenated form; ``recorded_at`` the integer
microseconds since 1970-01-01T00:00:00Z (PostgreSQL's own precision); ``data`` and
``metadata`` canonical JSON (``canonical_json``). What is hashed is what is stored: a field
stored as ciphertext is hashed as that ciphertext, so shredding its key never breaks the proof.
``idempotency_key`` is left out: it is a retry handle, not part of the history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from eventstore.envelope import Envelope
from eventstore.merkle import leaf_hash

TAG = b"scim-gateway-leaf-v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical_json(value: Any) -> bytes:
    """Keys sorted by code point, no whitespace, UTF-8 unescaped (orjson's number forms)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def leaf_input(envelope: Envelope, *, position: int | None = None) -> bytes:
    """The canonical encoding; ``position`` overrides the row's own (to test a moved row)."""
    fields: list[bytes] = [
        str(envelope.position if position is None else position).encode(),
        str(envelope.transaction_id).encode(),
        str(envelope.event_id).encode(),
        str(envelope.tenant_id).encode(),
        envelope.stream_id.encode(),
        str(envelope.stream_version).encode(),
        envelope.type.encode(),
        str(envelope.schema_version).encode(),
        canonical_json(envelope.data),
        canonical_json(envelope.metadata),
        str(_micros(envelope.recorded_at)).encode(),
    ]
    parts = [TAG]
    for value in fields:
        parts.append(len(value).to_bytes(4, "big"))
        parts.append(value)
    return b"".join(parts)


def event_leaf_hash(envelope: Envelope, *, position: int | None = None) -> bytes:
    return leaf_hash(leaf_input(envelope, position=position))
