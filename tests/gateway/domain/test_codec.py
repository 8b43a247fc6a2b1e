import uuid
from datetime import UTC, datetime

from domain.events import TokenIssued, UserDeactivated
from eventstore import Envelope
from projections.codec import decode, encode


def envelope(type_: str, schema_version: int, data: dict) -> Envelope:
    return Envelope(1, 1, uuid.uuid4(), uuid.uuid4(), "s", 1, type_, schema_version, data, {},
                    datetime.now(UTC))


def test_events_round_trip_through_the_envelope():
    event = TokenIssued("t", "x", "o@x.y", "d", ("scim:read",), "ab")
    new = encode(event)
    assert decode(envelope(new.type, new.schema_version, new.data)) == event


def test_event_ids_are_the_servers_own_and_never_repeat():
    event = UserDeactivated("u", "patch")
    assert encode(event).event_id != encode(event).event_id


def test_an_old_deactivation_without_a_reason_is_upcast():
    assert decode(envelope("UserDeactivated", 0, {"user_id": "u"})) == UserDeactivated("u", "patch")
