"""One vocabulary: every event type gets the same action word in the audit trail as in a
replay timeline, old shapes are upcast before they are described, and every word of the
trail is documented."""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path
from typing import get_args

from domain.events import EVENT_TYPES, REQUEST_EVENT_TYPES, DomainEvent
from eventstore import Envelope, EventStore, NewEvent
from gateway.replay import entry
from projections import codec
from projections.audit import AuditProjection
from projections.audit_vocabulary import REQUEST_ACTIONS, TRAIL_ACTIONS
from projections.runner import CatchUpRunner

DOCS = Path(__file__).resolve().parents[2] / "docs" / "audit.md"
METADATA = {"request_id": "req-1", "actor": {"token_id": "tok-1", "owner": "bot@example.com",
                                             "token_description": "SCIM Token"}}


def _value(annotation: str) -> object:
    """A plausible value for a field of that annotation (ids must be UUIDs: the trail keys by them)."""
    match annotation:
        case "str" | "str | None":
            return str(uuid.uuid4())
        case "bool":
            return True
        case "int":
            return 400
        case "JsonObject":
            return {"externalId": "ext-1", "name": {"givenName": "Ann"}}
        case "JsonValue":
            return "value"
        case "tuple[str, ...]" | "tuple[str | None, ...]":
            return (str(uuid.uuid4()),)
    raise AssertionError(f"no sample for a field of type {annotation}: teach _value about it")


def sample(cls: type) -> DomainEvent:
    return cls(**{f.name: _value(str(f.type)) for f in dataclasses.fields(cls)})


async def _append_each_type(store: EventStore, tenant_id: uuid.UUID) -> list[Envelope]:
    envelopes = []
    for number, cls in enumerate(get_args(DomainEvent)):
        stream = f"sample-{number}"
        await store.append(stream, 0, [codec.encode(sample(cls))], METADATA, tenant_id=tenant_id)
        envelopes += await store.read_stream(tenant_id, stream)
    return envelopes


async def test_every_event_type_has_one_action_word_in_the_trail_and_in_replay(store: EventStore):
    tenant_id = uuid.uuid4()
    envelopes = await _append_each_type(store, tenant_id)
    await CatchUpRunner(store, "audit", AuditProjection()).catch_up()
    rows = await store.pool.fetch("SELECT event_id, action FROM audit_trail WHERE tenant_id = $1", tenant_id)
    trail = {row["event_id"]: row["action"] for row in rows}

    assert {e.type for e in envelopes} == set(EVENT_TYPES)
    for envelope in envelopes:
        replayed = entry(envelope)
        if envelope.type in REQUEST_EVENT_TYPES:  # the provisioning log's, not the trail's
            assert envelope.event_id not in trail and replayed.action == REQUEST_ACTIONS[envelope.type]
        else:
            assert trail[envelope.event_id] == replayed.action, envelope.type
    assert set(trail.values()) == TRAIL_ACTIONS


async def test_an_old_event_shape_is_upcast_before_it_is_described(store: EventStore):
    tenant_id, user_id = uuid.uuid4(), str(uuid.uuid4())
    # Before schema version 1 a deactivation carried no reason (projections/codec.py).
    await store.append(f"user-{user_id}", 0, [NewEvent("UserDeactivated", {"user_id": user_id}, schema_version=0)],
                       METADATA, tenant_id=tenant_id)
    [envelope] = await store.read_stream(tenant_id, f"user-{user_id}")
    await CatchUpRunner(store, "audit", AuditProjection()).catch_up()
    row = await store.pool.fetchrow("SELECT action, attribute, old_value, new_value FROM audit_trail "
                                    "WHERE tenant_id = $1", tenant_id)
    described = entry(envelope)
    assert (described.action, described.detail) == ("deactivate", "via patch")
    assert tuple(row) == (described.action, "active", True, False)


def test_every_action_word_of_the_trail_is_documented():
    documented = set(re.findall(r"`([a-z_.]+)`", DOCS.read_text()))
    assert TRAIL_ACTIONS <= documented, sorted(TRAIL_ACTIONS - documented)
