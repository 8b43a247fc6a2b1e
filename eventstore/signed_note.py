"""Signed checkpoints: the C2SP tlog-checkpoint body inside a C2SP signed note, Ed25519.

A checkpoint body is three lines, each ending in a newline: the origin (the log's name),
the tree size in decimal, and the base64 root hash (c2sp.org/tlog-checkpoint). A signed note
is that body, a blank line, and one line per signature: an em dash (U+2014), a space, the
key name, a space, and base64 of the 4-byte key id followed by the 64-byte Ed25519 signature
over the body (newline included). The key id is the first four bytes of
SHA-256(key name || 0x0A || 0x01 || public key), 0x01 naming Ed25519 (c2sp.org/signed-note).

Keys are written in the text forms of Go's golang.org/x/mod/sumdb/note, so the public key
this prints can be handed to the Go tooling as it is:
``PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || seed)>`` and
``<name>+<key id hex>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALGORITHM_ED25519 = b"\x01"
SIGNATURE_PREFIX = "\u2014 "


class NoteError(ValueError):
    """A note, checkpoint or key that cannot be parsed."""


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ALGORITHM_ED25519 + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"a key name must be non-empty, without spaces or '+': {name!r}")


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def text(self) -> str:
        encoded = base64.b64encode(ALGORITHM_ED25519 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        try:
            name, hash_hex, encoded = text.strip().split("+", 2)  # base64 may hold "+"
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError("not a verifier key (<name>+<key id hex>+<base64 key>)") from None
        _check_name(name)
        if len(raw) != 33 or raw[:1] != ALGORITHM_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key")
        verifier = cls(name, raw[1:])
        if verifier.key_id.hex() != hash_hex.lower():
            raise NoteError("the verifier key's id does not match its name and key")
        return verifier

    def valid(self, body: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, body)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        _check_name(name)
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        private = Ed25519PrivateKey.generate()
        return cls(name, private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @property
    def verifier(self) -> Verifier:
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        return Verifier(self.name, public.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def text(self) -> str:
        encoded = base64.b64encode(ALGORITHM_ED25519 + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("not a signing key (PRIVATE+KEY+<name>+<key id hex>+<base64 key>)")
        try:
            raw = base64.b64decode(parts[4], validate=True)
        except binascii.Error:
            raise NoteError("the signing key is not valid base64") from None
        _check_name(parts[2])
        if len(raw) != 33 or raw[:1] != ALGORITHM_ED25519:
            raise NoteError("the signing key is not an Ed25519 key")
        key = cls(parts[2], raw[1:])
        if key.verifier.key_id.hex() != parts[3].lower():
            raise NoteError("the signing key's id does not match its name and key")
        return key

    def sign(self, body: str) -> str:
        """``body`` as a signed note with this key's signature line."""
        if not body.endswith("\n") or "\n\n" in body:
            raise NoteError("a note body ends in one newline and has no blank lines")
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(body.encode())
        line = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{body}\n{SIGNATURE_PREFIX}{self.name} {line}\n"


class Signature(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"  # a line names the key but its signature does not verify
    MISSING = "missing"  # no line by this key (signed by someone else, or not at all)


def open_note(note: str, verifier: Verifier) -> tuple[str, Signature]:
    """The note's body and what its signature by ``verifier`` says about it."""
    body, separator, signatures = note.rpartition("\n\n")
    if not separator:
        raise NoteError("a signed note has a blank line before its signatures")
    body += "\n"
    found = Signature.MISSING
    for line in signatures.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"not a signature line: {line!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX):].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise NoteError(f"a signature that is not base64: {line!r}") from None
        if len(raw) < 5:
            raise NoteError(f"a signature too short to carry a key id: {line!r}")
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue
        # The first line by this key decides, as in Go's note.Open.
        return body, Signature.VALID if verifier.valid(body.encode(), raw[4:]) else Signature.INVALID
    return body, found


@dataclass(frozen=True, slots=True)
class CheckpointBody:
    origin: str
    tree_size: int
    root_hash: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.tree_size}\n{base64.b64encode(self.root_hash).decode()}\n"

    @classmethod
    def parse(cls, body: str) -> CheckpointBody:
        lines = body.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint has an origin, a tree size and a root hash, one per line")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
            raise NoteError(f"the tree size is not a decimal number: {size_text!r}")
        try:
            root_hash = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise NoteError("the root hash is not base64") from None
        if len(root_hash) != 32:
            raise NoteError("the root hash is not 32 bytes")
        return cls(origin, int(size_text), root_hash)
