"""Domain events to and from the store's envelope ``data``, with upcasters for old shapes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from domain.events import EVENT_TYPES, DomainEvent
from eventstore import Envelope, NewEvent

# (type, schema_version) -> function turning that version's data into the next version's.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def register(function: Upcaster) -> Upcaster:
        UPCASTERS[(event_type, from_version)] = function
        return function

    return register


@upcaster("UserDeactivated", 0)
def _deactivation_reason(data: dict[str, Any]) -> dict[str, Any]:
    # Before version 1 a deactivation carried no reason; every one then came from PATCH.
    return {**data, "reason": data.get("reason", "patch")}


# Field names per event class: ``dataclasses.fields`` costs more than the encoding itself.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def encode(event: DomainEvent) -> NewEvent:
    names = _FIELD_NAMES.get(type(event))
    if names is None:
        names = _FIELD_NAMES[type(event)] = tuple(f.name for f in dataclasses.fields(event))
    data = {name: getattr(event, name) for name in names}
    return NewEvent(type=event.type, data=data, schema_version=event.schema_version)


def encode_all(events: list[DomainEvent]) -> list[NewEvent]:
    return [encode(event) for event in events]


def upcast(event_type: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
    cls = EVENT_TYPES[event_type]
    while schema_version < cls.schema_version:
        data = UPCASTERS[(event_type, schema_version)](data)
        schema_version += 1
    return data


# Each event class's field names, and those of them held as tuples (JSON has only lists):
# looked up once, not on every decode.
_FIELDS = {name: frozenset(f.name for f in dataclasses.fields(cls)) for name, cls in EVENT_TYPES.items()}
_TUPLES = {name: tuple(f for f in ("scopes", "member_ids", "displays") if f in fields)
           for name, fields in _FIELDS.items()}


def decode(envelope: Envelope) -> DomainEvent:
    return decode_data(envelope.type, envelope.schema_version, envelope.data)


def decode_data(kind: str, schema_version: int, data: dict[str, Any]) -> DomainEvent:
    """The event of type ``kind`` stored as ``data`` at ``schema_version`` (a reader holding no envelope)."""
    cls = EVENT_TYPES[kind]
    if schema_version < cls.schema_version:
        data = upcast(kind, schema_version, data)
    names = _FIELDS[kind]
    values = {k: v for k, v in data.items() if k in names}
    for name in _TUPLES[kind]:
        if name in values:
            values[name] = tuple(values[name])
    return cls(**values)
