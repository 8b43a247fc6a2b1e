"""Where the key-encryption key (KEK) comes from, and the cipher the store seals with.

Production points ``SCIM_GATEWAY_KEK_FILE`` at a key kept outside the database (a secret
mount); a missing configured file is an error, never a silently new key. The embedded
default makes ``<data_dir>/kek.key`` on first use and says so. ``keys rotate`` writes a new
KEK, re-wraps every data key with it and moves the old one aside as
``kek-<id>.retired``: destroy that file once the backups taken before the rotation have
expired (docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from eventstore.crypto import FieldCipher
from eventstore.keyring import Keyring, kek_id
from gateway.settings import Settings, SettingsError
from projections.personal import PersonalData

DEFAULT_FILE = "kek.key"


def kek_path(settings: Settings) -> Path:
    return settings.kek_file or settings.data_dir / DEFAULT_FILE


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise SettingsError(f"{where}: the key-encryption key is not base64") from None
    if len(key) != 32:
        raise SettingsError(f"{where}: a key-encryption key is 32 bytes, base64")
    return key


def _read(path: Path) -> bytes:
    try:
        text = path.read_text()
    except OSError as error:
        raise SettingsError(f"{path}: cannot read the key-encryption key ({error.strerror})") from None
    return _decode(text, str(path))


def _write_new(path: Path, key: bytes) -> bool:
    """Write ``key`` at ``path`` unless one is there; False if another process won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        return False
    finally:
        draft.unlink()
    return True


def load_keyring(settings: Settings, *, create: bool = True) -> tuple[Keyring, bool]:
    """The keyring, and whether its KEK was made just now. A half-done rotation's new key
    (``kek.key.next``) is held too, so the keys it already re-wrapped still open."""
    if settings.kek is not None:
        return Keyring(_decode(settings.kek, "SCIM_GATEWAY_KEK")), False
    path = kek_path(settings)
    made = False
    if not path.exists():
        if settings.kek_file is not None or not create:
            raise SettingsError(f"no key-encryption key at {path}")
        made = _write_new(path, os.urandom(32))
    current = _read(path)
    pending = path.with_name(path.name + ".next")
    return Keyring(current, [_read(pending)] if pending.exists() else []), made


# How often a process looks at the key files for a rotation; ``keys rotate`` waits longer
# than this before its last pass.
CHECK_SECONDS = 1.0


def _stamp(current: str, pending: str) -> tuple[int, int]:
    stamps = []
    for name in (current, pending):
        try:
            stamps.append(os.stat(name).st_mtime_ns)
        except FileNotFoundError:
            stamps.append(0)
    return stamps[0], stamps[1]


def make_cipher(settings: Settings) -> tuple[FieldCipher, bool]:
    keyring, made = load_keyring(settings)
    refresh = None
    if settings.kek is None:
        path = kek_path(settings)
        names = (str(path), str(path.with_name(path.name + ".next")))
        seen = [_stamp(*names), time.monotonic()]

        def refresh() -> Keyring | None:
            """The key files again if ``keys rotate`` changed them since they were read."""
            now = time.monotonic()
            if now - seen[1] < CHECK_SECONDS:
                return None
            stamp = _stamp(*names)
            seen[1] = now
            if stamp == seen[0] or stamp[0] == 0:
                return None
            seen[0] = stamp
            return load_keyring(settings, create=False)[0]

    return FieldCipher(keyring, PersonalData(), rolling_days=settings.refused_key_days, refresh=refresh), made


def cli_cipher(settings: Settings) -> FieldCipher:
    """The cipher for a command-line run; a key made now is announced on stderr."""
    cipher, made = make_cipher(settings)
    if made:
        print(f"made a new key-encryption key at {kek_path(settings)}; keep a copy outside the database "
              "(production: SCIM_GATEWAY_KEK_FILE)", file=sys.stderr, flush=True)
    return cipher


async def rotate(settings: Settings, pools: Sequence[asyncpg.Pool]) -> tuple[int, Path]:
    """Re-wrap every data key of every database (the home one and each shard: one KEK for
    all) under a new KEK; returns how many and where the old KEK went."""
    if settings.kek is not None:
        raise SettingsError("keys rotate works on a key file: set SCIM_GATEWAY_KEK_FILE instead of SCIM_GATEWAY_KEK")
    path = kek_path(settings)
    cipher, _ = make_cipher(settings)
    pending = path.with_name(path.name + ".next")
    if not pending.exists():
        _write_new(pending, os.urandom(32))
    new, old = _read(pending), _read(path)
    both = Keyring(new, [old])
    count = sum([await cipher.rotate(pool, both) for pool in pools])
    retired = path.with_name(f"kek-{kek_id(old)}.retired")
    if not retired.exists():
        os.link(path, retired)
    os.replace(pending, path)
    # A process that made a key under the old KEK while the rows were re-wrapped (before it
    # saw the new file): re-wrap those too, so destroying the retired KEK loses nothing.
    await asyncio.sleep(2 * CHECK_SECONDS)
    count += sum([await cipher.rotate(pool, both) for pool in pools])
    return count, retired
