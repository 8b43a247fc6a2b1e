"""A PostgreSQL event store: append-only envelopes, optimistic concurrency, gap-free catch-up.

It knows nothing about SCIM: callers hand it typed JSON payloads and read them back.
"""

from eventstore.append_sql import VIEW_PARAMS_START, ViewWrite
from eventstore.envelope import Checkpoint, Envelope, NewEvent
from eventstore.errors import ConcurrencyError, EventStoreError, ProjectionConflict
from eventstore.store import EventStore, InlineProjection

__all__ = [
    "VIEW_PARAMS_START",
    "Checkpoint",
    "ConcurrencyError",
    "Envelope",
    "EventStore",
    "EventStoreError",
    "InlineProjection",
    "NewEvent",
    "ProjectionConflict",
    "ViewWrite",
]
