"""The ``subject_keys`` table (each subject's data key, wrapped by the KEK) and a process's
cache of unwrapped keys. ``crypto.FieldCipher`` is their one user; the append and a bulk
import write a new subject's key with ``new_keys_cte`` and ``insert_new_keys``."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Get or make keys in one round trip. A key made by a concurrent transaction after this
# statement's snapshot is not returned: the caller reads again.
GET_OR_MAKE = """
WITH wanted AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::bytea[]) AS w(subject, kek_id, wrapped)
), made AS (
    INSERT INTO subject_keys (tenant_id, subject, kek_id, wrapped)
    SELECT $1, subject, kek_id, wrapped FROM wanted
    ON CONFLICT (tenant_id, subject) DO NOTHING
    RETURNING subject, kek_id, wrapped
)
SELECT subject, kek_id, wrapped FROM made
UNION ALL
SELECT k.subject, k.kek_id, k.wrapped FROM subject_keys k JOIN wanted w ON w.subject = k.subject
WHERE k.tenant_id = $1
"""
GET = """
SELECT k.tenant_id, k.subject, k.kek_id, k.wrapped
FROM subject_keys k JOIN unnest($1::uuid[], $2::text[]) AS w(tenant_id, subject)
  ON k.tenant_id = w.tenant_id AND k.subject = w.subject
"""
DESTROY = "DELETE FROM subject_keys WHERE tenant_id = $1 AND subject = $2 RETURNING subject"
# A shredded key is announced here, at the shredding's commit, so every process that listens
# drops its cached copy at once rather than when its cache entry expires.
KEYS_CHANNEL = "scim_gateway_keys"
ANNOUNCE = f"SELECT pg_notify('{KEYS_CHANNEL}', $1::uuid::text || ' ' || $2)"
# Rolling keys for refusals with no subject yet: shredded once older than the retention.
SHRED_ROLLING = """
DELETE FROM subject_keys
WHERE tenant_id = $1 AND starts_with(subject, $3) AND created < now() - make_interval(days => $2)
"""
# Re-wrapping touches every tenant's keys: a deliberate fan-out, run by an operator.
ALL_KEYS = """
SELECT tenant_id, subject, kek_id, wrapped FROM subject_keys WHERE kek_id <> $1 ORDER BY tenant_id, subject FOR UPDATE
"""
REWRAP = "UPDATE subject_keys SET kek_id = $3, wrapped = $4 WHERE tenant_id = $1 AND subject = $2"


# Sealed.new_keys written on their own, inside the caller's transaction (a bulk import, whose
# events are inserted by one statement of their own right after).
_INSERT_NEW_KEYS = """
INSERT INTO subject_keys (tenant_id, subject, kek_id, wrapped)
SELECT $1, k.subject, k.kek_id, k.wrapped
FROM unnest($2::text[], $3::text[], $4::bytea[]) AS k(subject, kek_id, wrapped)
"""


async def insert_new_keys(connection: Any, tenant_id: uuid.UUID,
                          new_keys: Sequence[tuple[str, str, bytes, bytes]]) -> None:
    if new_keys:
        await connection.execute(_INSERT_NEW_KEYS, tenant_id, [k[0] for k in new_keys], [k[1] for k in new_keys],
                                 [k[2] for k in new_keys])


def new_keys_cte(first: int) -> str:
    """The body of a data-modifying CTE inserting ``Sealed.new_keys``, parameters from ``$first``, written
    only if the append wrote its events (``appended``); tenant is the append's ``$2``. A key
    already there fails the statement: never a sealed value without its key."""
    return (f"INSERT INTO subject_keys (tenant_id, subject, kek_id, wrapped) "
            f"SELECT $2, k.subject, k.kek_id, k.wrapped "
            f"FROM unnest(${first}::text[], ${first + 1}::text[], ${first + 2}::bytea[]) "
            f"AS k(subject, kek_id, wrapped) "
            f"WHERE EXISTS (SELECT 1 FROM appended)")


class KeyCache:
    """Unwrapped data keys by (tenant, subject), least recently used first out. Another
    process's erasure reaches it by ``drop`` (a notice, or reading the erasure event), or
    when the entry expires after ``seconds`` at the latest."""

    def __init__(self, size: int, seconds: float) -> None:
        self.size = size
        self.seconds = seconds
        self._entries: OrderedDict[tuple[uuid.UUID, str], tuple[AESGCM, bytes, float]] = OrderedDict()

    def get(self, tenant_id: uuid.UUID, subject: str) -> tuple[AESGCM, bytes] | None:
        entry = self._entries.get((tenant_id, subject))
        if entry is None:
            return None
        if entry[2] < time.monotonic():
            del self._entries[tenant_id, subject]
            return None
        self._entries.move_to_end((tenant_id, subject))
        return entry[0], entry[1]

    def put(self, tenant_id: uuid.UUID, subject: str, key: bytes) -> tuple[AESGCM, bytes]:
        self._entries[tenant_id, subject] = (AESGCM(key), key, time.monotonic() + self.seconds)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return self._entries[tenant_id, subject][:2]

    def drop(self, tenant_id: uuid.UUID, subject: str) -> None:
        self._entries.pop((tenant_id, subject), None)

    def clear(self) -> None:
        self._entries.clear()
