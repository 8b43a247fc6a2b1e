"""The sealer of a serving process (docs/integrity.md)."""

from __future__ import annotations

import structlog

from eventstore import EventStore
from gateway.settings import Settings
from gateway.signing_key import load_signing_key, signing_key_path
from projections.sealer import CheckpointPolicy, Sealer, SealerRunner


def start_sealer(store: EventStore, settings: Settings) -> SealerRunner:
    """The sealer for a serving process, its key loaded (or made, on the embedded default)."""
    key, created = load_signing_key(settings)
    if created:
        structlog.get_logger("gateway.integrity").warning(
            "signing_key_created", path=str(signing_key_path(settings)),
            hint="keep it outside the database; print its public half with `scim-gateway keys public`")
    policy = CheckpointPolicy(settings.checkpoint_events, settings.checkpoint_seconds)
    return SealerRunner(store, Sealer(key, policy))
