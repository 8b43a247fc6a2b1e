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


def decode(envelope: Envelope) -> DomainEvent:
    cls = EVENT_TYPES[envelope.type]
    data = upcast(envelope.type, envelope.schema_version, envelope.data)
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    for name in ("scopes", "member_ids", "displays"):
        if name in values:
            values[name] = tuple(values[name])
    return cls(**values)
