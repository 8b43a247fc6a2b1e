"""Where the checkpoint signing key comes from: a configured file, or one made under the data dir.

Production points ``SCIM_GATEWAY_SIGNING_KEY_FILE`` at a key kept outside the database (a
secret mount); a missing configured file is an error, never a silently new key. The embedded
default makes ``<data_dir>/checkpoint-signing.key`` on first use, once, even when several
processes start together.
"""

from __future__ import annotations

import os
from pathlib import Path

from eventstore.signed_note import NoteError, SigningKey
from gateway.settings import Settings, SettingsError

DEFAULT_FILE = "checkpoint-signing.key"
KEY_NAME = "scim-gateway"


def signing_key_path(settings: Settings) -> Path:
    return settings.signing_key_file or settings.data_dir / DEFAULT_FILE


def _read(path: Path) -> SigningKey:
    try:
        return SigningKey.parse(path.read_text())
    except NoteError as error:
        raise SettingsError(f"{path}: {error}") from None


def load_signing_key(settings: Settings, *, create: bool = True) -> tuple[SigningKey, bool]:
    """The key, and whether it was made just now."""
    path = signing_key_path(settings)
    if settings.signing_key_file is not None or not create or path.exists():
        if not path.exists():
            raise SettingsError(f"no checkpoint signing key at {path}")
        return _read(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate(KEY_NAME)
    # Written aside, then linked into place: a process starting alongside sees the whole key
    # or none, and the first link wins.
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.text() + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        return _read(path), False
    finally:
        draft.unlink()
    return key, True

