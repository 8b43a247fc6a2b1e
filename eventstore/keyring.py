"""The key-encryption keys (KEK) of this process: the current one wraps a subject's data key,
any of them unwraps one (a rotation keeps the older keys until every data key is rewrapped).
The KEK lives outside the database; ``subject_keys`` holds only wrapped data keys."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KeyUnavailable(Exception):
    """A key-encryption key that is missing or does not open a data key."""


def kek_id(kek: bytes) -> str:
    return hashlib.sha256(b"scim-gateway kek id\x00" + kek).hexdigest()[:16]


class Keyring:
    """The key-encryption keys this process holds: the current one wraps, any of them unwraps."""

    def __init__(self, current: bytes, older: Sequence[bytes] = ()) -> None:
        for key in (current, *older):
            if len(key) != 32:
                raise KeyUnavailable("a key-encryption key is 32 bytes")
        self.current_id = kek_id(current)
        self._keys = {kek_id(key): AESGCM(key) for key in (current, *older)}

    @staticmethod
    def _aad(tenant_id: uuid.UUID, subject: str) -> bytes:
        return f"scim-gateway data key\x1f{tenant_id}\x1f{subject}".encode()

    def wrap(self, data_key: bytes, tenant_id: uuid.UUID, subject: str) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return self.current_id, nonce + self._keys[self.current_id].encrypt(nonce, data_key,
                                                                            self._aad(tenant_id, subject))

    def unwrap(self, key_id: str, wrapped: bytes, tenant_id: uuid.UUID, subject: str) -> bytes:
        kek = self._keys.get(key_id)
        if kek is None:
            raise KeyUnavailable(f"no key-encryption key {key_id} in this process's keyring")
        try:
            return kek.decrypt(wrapped[:12], wrapped[12:], self._aad(tenant_id, subject))
        except InvalidTag:
            raise KeyUnavailable(f"key-encryption key {key_id} does not open the data key of {subject}") from None
