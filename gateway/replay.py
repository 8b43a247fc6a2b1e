"""Incident review from the event log alone: a user at a point in time, a user's timeline,
what changed between two times, what one token did, a whole tenant as of a time.

Nothing here reads a projection: events are decoded (and upcast) and folded with the
domain's ``evolve``, so the answers hold even if a view was edited or is out of date.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from domain.errors import Reason, Rejected
from domain.events import USER_EVENT_TYPES
from domain.streams import USER_PREFIX, token_stream
from domain.user import UserState, evolve
from eventstore import Envelope, EventStore
from projections import codec
from projections.audit_vocabulary import Actor, AuditEntry, Change, audit_entry

# A timeline's entries are the audit trail's vocabulary (projections/audit_vocabulary.py).
Entry = AuditEntry

# Where a userName or externalId appears in the log, now or in the past.
_IDENTITY_PROBES = [
    ("UserCreated", "user_name", {}),
    ("UserCreated", "attributes.externalId", {}),
    ("AttributeChanged", "new", {"attribute": "userName"}),
    ("AttributeChanged", "new", {"attribute": "externalId"}),
]
# The same, where the values are sealed (eventstore/crypto.py): their blind index.
_LOOKUP_PROBES = [
    ("UserCreated", "_lookup.userName", {}),
    ("UserCreated", "_lookup.externalId", {}),
    ("AttributeChanged", "_lookup.userName", {}),
    ("AttributeChanged", "_lookup.externalId", {}),
]


@dataclass(frozen=True, slots=True)
class UserAt:
    user_id: str
    state: UserState | None  # None: did not exist yet at that point
    position: int | None  # of the last event folded
    created: datetime | None  # when the user came to exist, if ever


@dataclass
class UserDiff:
    user_id: str
    user_name: str | None
    actions: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


def entry(envelope: Envelope) -> Entry:
    described = audit_entry(envelope)
    if described is None:
        raise ValueError(f"event type {envelope.type!r} is not one this gateway knows")
    return described


class Replay:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def resolve_user(self, tenant_id: uuid.UUID, text: str) -> str:
        """A user id from an id, a userName or an externalId, current or past."""
        try:
            candidate: str | None = str(uuid.UUID(text))
        except ValueError:
            candidate = None
        if candidate is not None:
            if await self.store.read_stream(tenant_id, USER_PREFIX + candidate):
                return candidate
        streams = await self.store.find_streams(tenant_id, _IDENTITY_PROBES, text)
        if self.store.cipher is not None:
            digest = await self.store.cipher.lookup(self.store.pool, tenant_id, text)
            for stream in await self.store.find_streams(tenant_id, _LOOKUP_PROBES, digest):
                # An erased person is not found by name any more: only by id.
                if not any(e.type == "UserErased" for e in await self.store.read_stream(tenant_id, stream)):
                    streams.append(stream)
        users = sorted({s.removeprefix(USER_PREFIX) for s in streams if s.startswith(USER_PREFIX)})
        if not users:
            raise Rejected(Reason.NOT_FOUND, f"no user {text!r} in this tenant's history")
        if len(users) > 1:
            raise Rejected(Reason.CONFLICT, f"{text!r} has named several users over time: {', '.join(users)}")
        return users[0]

    async def _stream(self, tenant_id: uuid.UUID, user_id: str) -> list[Envelope]:
        envelopes = await self.store.read_stream(tenant_id, USER_PREFIX + user_id)
        if not envelopes:
            raise Rejected(Reason.NOT_FOUND, f"no user with id {user_id} in this tenant")
        return envelopes

    async def user_at(self, tenant_id: uuid.UUID, user_id: str, *, at: datetime | None = None,
                      position: int | None = None) -> UserAt:
        envelopes = await self._stream(tenant_id, user_id)
        state: UserState | None = None
        last: int | None = None
        for envelope in envelopes:
            too_late = at is not None and envelope.recorded_at > at
            if too_late or (position is not None and envelope.position > position):
                break
            state = evolve(state, codec.decode(envelope), envelope.recorded_at)  # type: ignore[arg-type]
            last = envelope.position
        return UserAt(user_id, state, last, envelopes[0].recorded_at)

    async def timeline(self, tenant_id: uuid.UUID, user_id: str, *, since: datetime | None = None,
                       until: datetime | None = None) -> list[Entry]:
        """The user's events and the requests about it that were refused or changed nothing."""
        envelopes = await self._stream(tenant_id, user_id)
        probes = [(kind, "target_id", {}) for kind in ("RequestRejected", "RequestSkipped", "RequestReplayed")]
        for stream in await self.store.find_streams(tenant_id, probes, user_id):
            envelopes.extend(await self.store.read_stream(tenant_id, stream))
        envelopes.sort(key=lambda e: e.position)
        return [entry(e) for e in envelopes
                if (since is None or e.recorded_at >= since) and (until is None or e.recorded_at <= until)]

    async def token(self, tenant_id: uuid.UUID, token_id: str, *, since: datetime | None = None,
                    until: datetime | None = None) -> tuple[uuid.UUID, list[Entry]]:
        """Everything one of the tenant's tokens did, writes and refused attempts."""
        issued = await self.store.read_stream(tenant_id, token_stream(token_id))
        if not issued:
            raise Rejected(Reason.NOT_FOUND, f"no token with id {token_id}")
        entries = []
        async for batch in self.store.history(tenant_id, since=since, until=until, actor_token_id=token_id):
            entries.extend(entry(e) for e in batch)
        return tenant_id, entries

    async def diff(self, tenant_id: uuid.UUID, start: datetime, end: datetime) -> dict[Actor, list[UserDiff]]:
        """Users created, changed, deactivated, reactivated or deleted in [start, end], by actor."""
        by_actor: dict[Actor, dict[str, UserDiff]] = {}
        names: dict[str, str] = {}
        async for batch in self.store.history(tenant_id, until=end, stream_prefix=USER_PREFIX):
            for envelope in batch:
                if envelope.type not in USER_EVENT_TYPES:
                    continue
                item = entry(envelope)
                assert item.user_id is not None
                if envelope.type == "UserCreated":
                    names[item.user_id] = envelope.data["user_name"]
                elif envelope.type == "AttributeChanged" and envelope.data["attribute"] == "userName":
                    names[item.user_id] = envelope.data["new"]
                if envelope.recorded_at < start:
                    continue
                users = by_actor.setdefault(item.actor, {})
                diff = users.setdefault(item.user_id, UserDiff(item.user_id, names.get(item.user_id)))
                diff.user_name = names.get(item.user_id)
                if item.action not in diff.actions:
                    diff.actions.append(item.action)
                if item.action in ("update", "ignored_attribute"):
                    diff.changes.extend(item.changes)
        return {actor: list(users.values()) for actor, users in by_actor.items()}

    async def tenant_at(self, tenant_id: uuid.UUID, at: datetime | None) -> AsyncIterator[UserState]:
        """Every user of the tenant as of ``at``, one at a time: memory holds one user."""
        current: str | None = None
        state: UserState | None = None
        async for batch in self.store.streams(tenant_id, USER_PREFIX, until=at):
            for envelope in batch:
                if envelope.stream_id != current:
                    if state is not None and not state.deleted:
                        yield state
                    current, state = envelope.stream_id, None
                state = evolve(state, codec.decode(envelope), envelope.recorded_at)  # type: ignore[arg-type]
        if state is not None and not state.deleted:
            yield state
