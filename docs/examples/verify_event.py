"""Check one event against a signed checkpoint without any scim-gateway code (docs/integrity.md).

    python verify_event.py DSN EVENT_ID inclusion.json checkpoint.note acme.pub

Reads the event's row from the database (or a restored dump), recomputes its leaf from the
documented encoding, walks the inclusion proof (RFC 9162 section 2.1.3.2) to a root, and checks
that root and the Ed25519 signature on the checkpoint (C2SP signed note). Needs asyncpg and
cryptography only.
"""

import asyncio
import base64
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_input(row) -> bytes:
    delta = row["recorded_at"] - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    fields = [str(row["position"]), str(row["transaction_id"]), str(row["event_id"]), str(row["tenant_id"]),
              row["stream_id"], str(row["stream_version"]), row["type"], str(row["schema_version"])]
    encoded = [f.encode() for f in fields]
    encoded += [canonical(json.loads(row["data"])), canonical(json.loads(row["metadata"])), str(micros).encode()]
    return b"scim-gateway-leaf-v1" + b"".join(len(f).to_bytes(4, "big") + f for f in encoded)


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    node = lambda left, right: hashlib.sha256(b"\x01" + left + right).digest()  # noqa: E731
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


async def fetch_row(dsn: str, event_id: str) -> asyncpg.Record:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchrow("SELECT * FROM events WHERE event_id = $1", event_id)
    finally:
        await connection.close()


def main(dsn: str, event_id: str, proof_file: str, note_file: str, key_file: str) -> int:
    row = asyncio.run(fetch_row(dsn, event_id))
    proof = json.loads(Path(proof_file).read_text())
    leaf = hashlib.sha256(b"\x00" + leaf_input(row)).digest()
    print("leaf recomputed from the row matches the proof:", base64.b64encode(leaf).decode() == proof["leafHash"])
    root = root_from_path(proof["leafIndex"], proof["treeSize"], leaf,
                          [base64.b64decode(p) for p in proof["inclusionPath"]])

    note = Path(note_file).read_text()
    body, _, signatures = note.rpartition("\n\n")
    body += "\n"
    origin, size, root_b64 = body.splitlines()
    name, key_hash, key_b64 = Path(key_file).read_text().strip().split("+", 2)
    public = base64.b64decode(key_b64)[1:]
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    assert key_id.hex() == key_hash
    signed = False
    for line in signatures.splitlines():
        signer, raw = line.removeprefix("\u2014 ").split(" ")
        raw = base64.b64decode(raw)
        if signer == name and raw[:4] == key_id:
            Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], body.encode())  # raises if forged
            signed = True
    print("checkpoint signed by", f"{name}+{key_hash}:", signed)
    print(f"root from the inclusion path matches the checkpoint ({origin}, size {size}):",
          int(size) == proof["treeSize"] and root is not None and base64.b64encode(root).decode() == root_b64)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
