"""Crypto-shredding: personal values in ``events.data`` sealed under per-subject data keys.

The store calls ``FieldCipher.seal`` on the way in and ``FieldCipher.open`` on the way out,
so everything above the store reads plaintext and only ``events.data`` holds ciphertext.
Which values are personal, and whose, is the caller's knowledge (a ``Classifier``): this
module knows nothing of SCIM.

A sealed value is replaced in place by ``[sealed]``; ``data["_sealed"]`` holds, per subject,
``{"s": subject, "p": [paths], "c": base64(nonce || AES-GCM ciphertext)}`` of the JSON list
of its values (one AES-GCM message per subject and event: a create's dozen values cost one
call). The associated data binds tenant, subject, event id and the JSON paths, so a
ciphertext copied to another event or place does not open. ``data["_lookup"]`` holds keyed
hashes (a blind index) of the values a reader must be able to find an event by. Each data key is 256 bits, stored in
``subject_keys`` wrapped (AES-GCM) by a key-encryption key (KEK) that lives outside the
database. Destroying a subject's row makes every value sealed under it read ``[erased]``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from binascii import a2b_base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eventstore.keyring import Keyring
from eventstore.subject_keys import (
    ALL_KEYS,
    ANNOUNCE,
    DESTROY,
    GET,
    GET_OR_MAKE,
    REWRAP,
    SHRED_ROLLING,
    KeyCache,
)

ERASED = "[erased]"
SEALED = "_sealed"
PLACEHOLDER = "[sealed]"  # where a sealed value was, in the stored row
LOOKUP = "_lookup"
INDEX_SUBJECT = "index"
ROLLING_PREFIX = "refused:"

Path = tuple[str | int, ...]

@dataclass(frozen=True, slots=True)
class Plan:
    """What of one event to seal: (subject or None for the tenant's rolling key, path) pairs,
    and the values to index by name (a blind index a reader can search).

    ``born`` names a subject this event begins (a new user): its key is made without a
    lookup and inserted by the append's own statement, so a create costs no extra round trip.
    """

    fields: list[tuple[str | None, Path]] = field(default_factory=list)
    lookups: dict[str, str] = field(default_factory=dict)
    born: str | None = None


@dataclass(frozen=True, slots=True)
class Sealed:
    datas: list[dict[str, Any]]
    # Keys made for subjects born in these events: (subject, kek id, wrapped key, key).
    new_keys: list[tuple[str, str, bytes, bytes]] = field(default_factory=list)


class Classifier(Protocol):
    def plan(self, event_type: str, data: Mapping[str, Any]) -> Plan: ...

    def erased_subject(self, event_type: str, data: Mapping[str, Any]) -> str | None:
        """The subject an event says was erased (its keys must leave every cache)."""
        ...


def _set(data: Any, path: Sequence[str | int], value: Any) -> None:
    for step in path[:-1]:
        data = data[step]
    data[path[-1]] = value


def _blind(index: hmac.HMAC, value: str) -> str:
    """The blind-index digest of ``value`` (any case) under ``index`` (``FieldCipher._index``)."""
    digest = index.copy()
    digest.update(value.lower().encode())
    return digest.hexdigest()[:32]


def _aad_head(tenant_id: uuid.UUID | str, subject: str, event_id: uuid.UUID | str) -> bytes:
    """Associated data up to the path (the same for every value of one subject in one event)."""
    return f"{tenant_id}\x1f{subject}\x1f{event_id}\x1f".encode()


def _aad(head: bytes, paths: Sequence[Sequence[str | int]]) -> bytes:
    return head + orjson.dumps(paths)


class FieldCipher:
    def __init__(self, keyring: Keyring, classifier: Classifier, *, rolling_days: int = 30,
                 cache_size: int = 100_000, cache_seconds: float = 300.0,
                 refresh: Callable[[], Keyring | None] | None = None) -> None:
        self._keyring = keyring
        # Asked before each use of the keyring: a new one once ``keys rotate`` changed the key
        # files, so running processes follow a rotation without a restart.
        self._refresh = refresh
        self.classifier = classifier
        self.rolling_days = rolling_days
        self._cache = KeyCache(cache_size, cache_seconds)
        self._indexes: dict[bytes, hmac.HMAC] = {}

    @property
    def keyring(self) -> Keyring:
        if self._refresh is not None and (fresh := self._refresh()) is not None:
            self._keyring = fresh
        return self._keyring

    @keyring.setter
    def keyring(self, keyring: Keyring) -> None:
        self._keyring = keyring

    # The cache ----------------------------------------------------------------------------

    def has(self, tenant_id: uuid.UUID, subject: str) -> bool:
        return self._cache.get(tenant_id, subject) is not None

    def offer(self, tenant_id: uuid.UUID, subject: str, key_id: str | None, wrapped: bytes | None) -> None:
        """A wrapped key a caller read along with its own row (no round trip of its own)."""
        if key_id is not None and wrapped is not None:
            self._cache.put(tenant_id, subject, self.keyring.unwrap(key_id, wrapped, tenant_id, subject))

    def forget(self, tenant_id: uuid.UUID, subject: str) -> None:
        self._cache.drop(tenant_id, subject)

    # Keys ---------------------------------------------------------------------------------

    async def _keys(self, connection: asyncpg.Connection, tenant_id: uuid.UUID,
                    subjects: set[str]) -> dict[str, tuple[AESGCM, bytes]]:
        """Data keys for ``subjects``, made where missing."""
        found: dict[str, tuple[AESGCM, bytes]] = {}
        missing = []
        for subject in subjects:
            cached = self._cache.get(tenant_id, subject)
            if cached is None:
                missing.append(subject)
            else:
                found[subject] = cached
        while missing:
            if any(s.startswith(ROLLING_PREFIX) for s in missing):
                await connection.execute(SHRED_ROLLING, tenant_id, self.rolling_days, ROLLING_PREFIX)
            fresh = [os.urandom(32) for _ in missing]
            wrapped = [self.keyring.wrap(key, tenant_id, s) for key, s in zip(fresh, missing, strict=True)]
            rows = await connection.fetch(GET_OR_MAKE, tenant_id, missing, [w[0] for w in wrapped],
                                          [w[1] for w in wrapped])
            for row in rows:
                key = self.keyring.unwrap(row["kek_id"], row["wrapped"], tenant_id, row["subject"])
                found[row["subject"]] = self._cache.put(tenant_id, row["subject"], key)
            missing = [s for s in missing if s not in found]
        return found

    async def lookup(self, executor: asyncpg.Pool | asyncpg.Connection, tenant_id: uuid.UUID, value: str) -> str:
        """The blind-index digest ``value`` (any case) is stored under in ``_lookup``."""
        if isinstance(executor, asyncpg.Pool):
            async with executor.acquire() as connection:
                keys = await self._keys(connection, tenant_id, {INDEX_SUBJECT})
        else:
            keys = await self._keys(executor, tenant_id, {INDEX_SUBJECT})
        return self._digest(keys[INDEX_SUBJECT][1], value)

    def _digest(self, key: bytes, value: str) -> str:
        return _blind(self._index(key), value)

    def _index(self, key: bytes) -> hmac.HMAC:
        """The blind index's HMAC keyed once per index key (copied per value: half the cost
        of keying it again)."""
        index = self._indexes.get(key)
        if index is None:
            if len(self._indexes) >= 1024:  # one key per tenant; a bound all the same
                self._indexes.clear()
            index = self._indexes[key] = hmac.new(key, digestmod=hashlib.sha256)
        return index

    async def destroy(self, connection: asyncpg.Connection, tenant_id: uuid.UUID, subject: str) -> bool:
        """Shred ``subject``'s data key (in the caller's transaction); False if there was none."""
        self.forget(tenant_id, subject)
        if await connection.fetchval(DESTROY, tenant_id, subject) is None:
            return False
        await connection.execute(ANNOUNCE, tenant_id, subject)
        return True

    def heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        """A key shredded by another process (a ``KEYS_CHANNEL`` notice): drop this one's copy."""
        tenant_id, _, subject = payload.partition(" ")
        self.forget(uuid.UUID(tenant_id), subject)

    def forget_all(self) -> None:
        """Drop every cached key: shreddings may have gone unannounced to this process."""
        self._cache.clear()

    async def rotate(self, pool: asyncpg.Pool, new: Keyring) -> int:
        """Re-wrap every data key not yet under ``new``'s current KEK; returns how many."""
        async with pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(ALL_KEYS, new.current_id)
            updates = []
            for row in rows:
                key = new.unwrap(row["kek_id"], row["wrapped"], row["tenant_id"], row["subject"])
                updates.append((row["tenant_id"], row["subject"], *new.wrap(key, row["tenant_id"], row["subject"])))
            await connection.executemany(REWRAP, updates)
        return len(updates)

    # Sealing and opening ------------------------------------------------------------------

    def remember_new(self, tenant_id: uuid.UUID, new_keys: Sequence[tuple[str, str, bytes, bytes]]) -> None:
        """Cache the keys of born subjects once the append that stored them succeeded."""
        for subject, _, _, key in new_keys:
            self._cache.put(tenant_id, subject, key)

    async def seal(self, connection: asyncpg.Connection, tenant_id: uuid.UUID,
                   events: Sequence[tuple[uuid.UUID, str, dict[str, Any]]]) -> Sealed:
        """Each (event id, type, data) with its personal values sealed."""
        plans = [self.classifier.plan(kind, data) for _, kind, data in events]
        if not any(plan.fields for plan in plans):
            return Sealed([data for _, _, data in events])
        rolling = ROLLING_PREFIX + datetime.now(UTC).date().isoformat()
        subjects, born, new_keys = self._born(tenant_id, plans, rolling)
        keys = born | await self._keys(connection, tenant_id, subjects - born.keys())
        return Sealed(self._sealed(tenant_id, events, plans, keys, rolling), new_keys)

    def seal_held(self, tenant_id: uuid.UUID, events: Sequence[tuple[uuid.UUID, str, dict[str, Any]]]) -> Sealed:
        """``seal`` with no database: every key is born in these events or held (``hold``), so
        it can run in another process (a bulk import's workers). A key not held is a KeyError."""
        plans = [self.classifier.plan(kind, data) for _, kind, data in events]
        rolling = ROLLING_PREFIX + datetime.now(UTC).date().isoformat()
        subjects, born, new_keys = self._born(tenant_id, plans, rolling)
        held = {}
        for subject in subjects - born.keys():
            cached = self._cache.get(tenant_id, subject)
            if cached is None:
                raise KeyError(subject)
            held[subject] = cached
        return Sealed(self._sealed(tenant_id, events, plans, born | held, rolling), new_keys)

    async def held_keys(self, connection: asyncpg.Connection, tenant_id: uuid.UUID,
                        subjects: set[str]) -> dict[str, bytes]:
        """The data keys of ``subjects`` (made where missing), for a process that seals with
        ``seal_held``: the blind index's key (``INDEX_SUBJECT``) for a bulk import."""
        return {subject: key for subject, (_, key) in (await self._keys(connection, tenant_id, subjects)).items()}

    def hold(self, tenant_id: uuid.UUID, subject: str, key: bytes) -> None:
        """Cache a data key another process read (``held_keys``)."""
        self._cache.put(tenant_id, subject, key)

    def _born(self, tenant_id: uuid.UUID, plans: list[Plan], rolling: str,
              ) -> tuple[set[str], dict[str, tuple[AESGCM, bytes]], list[tuple[str, str, bytes, bytes]]]:
        """The subjects ``plans`` seal under, and fresh keys for those they begin."""
        subjects = {subject or rolling for plan in plans for subject, _ in plan.fields}
        if any(plan.lookups for plan in plans):
            subjects.add(INDEX_SUBJECT)
        new_keys = []
        born: dict[str, tuple[AESGCM, bytes]] = {}
        for plan in plans:
            if plan.born is not None and plan.born in subjects and plan.born not in born:
                key = os.urandom(32)
                new_keys.append((plan.born, *self.keyring.wrap(key, tenant_id, plan.born), key))
                born[plan.born] = (AESGCM(key), key)
        return subjects, born, new_keys

    def _sealed(self, tenant_id: uuid.UUID, events: Sequence[tuple[uuid.UUID, str, dict[str, Any]]],
                plans: list[Plan], keys: Mapping[str, tuple[AESGCM, bytes]], rolling: str) -> list[dict[str, Any]]:
        sealed_all = []
        tenant = str(tenant_id)  # once per call: str(UUID) is slow
        for (event_id, _, data), plan in zip(events, plans, strict=True):
            if not plan.fields:
                sealed_all.append(data)
                continue
            sealed = orjson.loads(orjson.dumps(data))  # the caller keeps its plaintext
            by_subject: dict[str, list[Path]] = {}
            for subject, path in plan.fields:
                by_subject.setdefault(subject or rolling, []).append(path)
            record = []
            event = str(event_id)
            # One AES-GCM message per subject and event: its values in path order, the paths
            # in the associated data. Each value's place keeps a placeholder. (Paths stay
            # tuples: JSON writes them as the lists ``open`` reads back, byte for byte.)
            for subject, paths in by_subject.items():
                values = []
                for path in paths:
                    parent = sealed
                    for step in path[:-1]:
                        parent = parent[step]
                    values.append(parent[path[-1]])
                    parent[path[-1]] = PLACEHOLDER
                nonce = os.urandom(12)
                cipher = keys[subject][0].encrypt(nonce, orjson.dumps(values),
                                                  _aad(_aad_head(tenant, subject, event), paths))
                record.append({"s": subject, "p": paths, "c": base64.b64encode(nonce + cipher).decode()})
            sealed[SEALED] = record
            if plan.lookups:
                index = self._index(keys[INDEX_SUBJECT][1])
                sealed[LOOKUP] = {name: _blind(index, value) for name, value in plan.lookups.items()}
            sealed_all.append(sealed)
        return sealed_all

    async def open(self, executor: asyncpg.Pool | asyncpg.Connection,
                   rows: Sequence[tuple[uuid.UUID, uuid.UUID, str, dict[str, Any]]],
                   *, in_place: bool = False) -> list[dict[str, Any]]:
        """Each (tenant, event id, type, data) with its sealed values opened, or ``[erased]``
        where the subject's key is gone.

        ``in_place``: the caller hands its ``data`` over (decoded for this call, read by no one
        else), so a sealed one is opened where it is instead of in a copy.
        """
        for tenant_id, _, kind, data in rows:
            erased = self.classifier.erased_subject(kind, data)
            if erased is not None:
                self.forget(tenant_id, erased)
        wanted = {(tenant_id, entry["s"]) for tenant_id, _, _, data in rows if SEALED in data
                  for entry in data[SEALED]}
        if not wanted:
            return [data for _, _, _, data in rows]
        keys: dict[tuple[uuid.UUID, str], AESGCM] = {}
        missing = []
        for tenant_id, subject in wanted:
            cached = self._cache.get(tenant_id, subject)
            if cached is None:
                missing.append((tenant_id, subject))
            else:
                keys[tenant_id, subject] = cached[0]
        if missing:
            found = await executor.fetch(GET, [m[0] for m in missing], [m[1] for m in missing])
            for row in found:
                key = self.keyring.unwrap(row["kek_id"], row["wrapped"], row["tenant_id"], row["subject"])
                keys[row["tenant_id"], row["subject"]] = self._cache.put(row["tenant_id"], row["subject"], key)[0]
        opened = []
        tenants: dict[uuid.UUID, str] = {}  # str(uuid) is slow, and a batch has few tenants
        for tenant_id, event_id, _, data in rows:
            if SEALED not in data:
                opened.append(data)
                continue
            if in_place:
                plain = data
                entries = plain.pop(SEALED)
                plain.pop(LOOKUP, None)
            else:
                entries = data[SEALED]
                plain = {k: v for k, v in data.items() if k not in (SEALED, LOOKUP)}
                plain = orjson.loads(orjson.dumps(plain))
            tenant = tenants.get(tenant_id)
            if tenant is None:
                tenant = tenants[tenant_id] = str(tenant_id)
            for entry in entries:
                subject, paths = entry["s"], entry["p"]
                key = keys.get((tenant_id, subject))
                values: list[Any] = [ERASED] * len(paths)
                if key is not None:
                    raw = a2b_base64(entry["c"])
                    try:
                        opened_values = orjson.loads(key.decrypt(
                            raw[:12], raw[12:], _aad(_aad_head(tenant, subject, event_id), paths)))
                        if len(opened_values) == len(paths):
                            values = opened_values
                    except InvalidTag:
                        pass
                for path, value in zip(paths, values, strict=True):
                    _set(plain, path, value)
            opened.append(plain)
        return opened
