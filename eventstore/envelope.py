"""The one event envelope: what the store writes and what every reader gets back."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event not yet stored.

    Its id is random and the server's own: nothing a caller sends (an ``X-Request-Id``, say)
    decides an event's identity, so no caller can collide with another tenant's events.
    Retries are made safe by explicit idempotency (a key, or a recognised replay), not by ids.
    """

    type: str
    # A Fragment is JSON encoded already (a bulk import's prepared events), stored as it is;
    # only a store without a cipher takes one (there is nothing to seal in it).
    data: dict[str, Any] | orjson.Fragment
    schema_version: int = 1
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A stored event with its place in the log."""

    position: int
    transaction_id: int
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    # The event's place in its tenant's own dense order (1, 2, 3...): what catch-up readers follow.
    tenant_position: int = 0

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.transaction_id, self.position)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Envelope:
        """A stored event as a read of ``events`` returns it (``append_sql.EVENT_COLUMNS``)."""
        return cls(row["position"], row["transaction_id"], row["event_id"], row["tenant_id"], row["stream_id"],
                   row["stream_version"], row["type"], row["schema_version"], row["data"], row["metadata"],
                   row["recorded_at"], tenant_position=row["tenant_position"])

    @classmethod
    def appended(cls, row: Mapping[str, Any], event: NewEvent, stream_id: str, metadata: dict[str, Any],
                 tenant_id: uuid.UUID) -> Envelope:
        """An appended event's envelope: what the caller sent, with what the append returned
        (``append_sql.APPENDED_COLUMNS``)."""
        return cls(row["position"], row["transaction_id"], event.event_id, tenant_id, stream_id,
                   row["stream_version"], event.type, event.schema_version, event.data, metadata,
                   row["recorded_at"], tenant_position=row["tenant_position"])


@dataclass(frozen=True, slots=True, order=True)
class Checkpoint:
    """A catch-up reader's place in the log: (transaction id, position).

    Ordering by transaction id first is what makes the catch-up read gap-free: a position
    taken by a transaction that commits late still sorts after everything read before it.
    """

    transaction_id: int = 0
    position: int = 0

    def encode(self) -> str:
        return f"{self.transaction_id}:{self.position}"

    @classmethod
    def decode(cls, text: str) -> Checkpoint:
        txid, _, position = text.partition(":")
        return cls(int(txid), int(position))


START = Checkpoint()
