"""The sealer of a serving process (docs/integrity.md)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import structlog

from eventstore import EventStore
from gateway.settings import Settings
from gateway.signing_key import load_signing_key, signing_key_path
from projections.sealer import CheckpointPolicy, Sealer, SealerRunner


def start_sealers(stores: Sequence[EventStore], settings: Settings) -> list[SealerRunner]:
    """The sealers of a serving process, one per database, with the one signing key loaded (or
    made, on the embedded default)."""
    key, created = load_signing_key(settings)
    if created:
        structlog.get_logger("gateway.integrity").warning(
            "signing_key_created", path=str(signing_key_path(settings)),
            hint="keep it outside the database; print its public half with `scim-gateway keys public`")
    policy = CheckpointPolicy(settings.checkpoint_events, settings.checkpoint_seconds)
    return [SealerRunner(store, Sealer(key, policy)) for store in stores]


def check_signing_key(settings: Settings) -> None:
    """Before logging is configured and before anything listens: a missing or unreadable key
    stops the start here, with its path; a key made now (the embedded default) is announced."""
    _, created = load_signing_key(settings)
    if created:
        print(f"Made a checkpoint signing key under {settings.data_dir}; keep a copy of its public half "
              "(`scim-gateway keys public`) away from the database.", file=sys.stderr, flush=True)
