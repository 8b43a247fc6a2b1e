"""What every write shares: the request it came in, If-Match, the one write loop, and the record
of its outcome."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import orjson
import structlog
from asyncpg import Connection

from domain.events import DomainEvent as Event
from domain.events import RequestRejected, RequestReplayed, RequestSkipped
from domain.streams import request_stream
from eventstore import ConcurrencyError, Envelope, EventStore, ProjectionConflict, ViewWrite
from eventstore.errors import DatabaseUnavailable
from gateway.scim.errors import ScimError
from gateway.scim.resource import etag
from gateway.tenancy import Principal
from projections.codec import encode, encode_all

log = structlog.get_logger("gateway.writes")

# Concurrent writers to one resource without If-Match: retry the decide/append cycle this often.
MAX_ATTEMPTS = 8

@dataclass(frozen=True, slots=True)
class RequestContext:
    # The gateway's own id for the request: unique, server-generated, never the caller's.
    request_id: str
    method: str
    path: str
    source_ip: str | None
    user_agent: str | None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The caller's X-Request-Id, kept only to correlate with its logs: never a key.
    client_request_id: str | None = None

    def metadata(self, principal: Principal) -> dict[str, object]:
        metadata: dict[str, object] = {
            "actor": principal.actor(),
            "request_id": self.request_id,
            "method": self.method,
            "path": storable(self.path),
            "source_ip": self.source_ip,
            "user_agent": storable(self.user_agent),
            "received_at": self.received_at.isoformat(),
        }
        if self.client_request_id is not None:
            metadata["client_request_id"] = self.client_request_id
        return metadata


def storable(text: str | None) -> str | None:
    """Text a refusal record can hold whatever the request carried: PostgreSQL's jsonb takes no
    NUL, and JSON no lone surrogate, so both are written as visible escapes."""
    if text is None:
        return None
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


async def record_outcome(store: EventStore, principal: Principal, ctx: RequestContext,
                         event: RequestRejected | RequestSkipped | RequestReplayed) -> None:
    """Refused, replayed and no-op writes become events, so the provisioning log shows them.

    Best effort: the answer to the client does not depend on this record.
    """
    try:
        await store.append(request_stream(ctx.request_id), None, [encode(event)], ctx.metadata(principal),
                           tenant_id=principal.tenant_id)
    except (DatabaseUnavailable, ConcurrencyError, OSError, TimeoutError) as failure:
        log.warning("request_outcome_not_recorded", error=type(failure).__name__)


async def record_refusal(store: EventStore, principal: Principal, ctx: RequestContext,
                         resource_type: str, target_id: str | None, error: ScimError) -> None:
    """The one place a refused write is put on record, whatever refused it (scope, body limit,
    parser, policy, a lost race): called by the HTTP edge for every failed write request."""
    await record_outcome(store, principal, ctx, RequestRejected(
        ctx.method, storable(ctx.path) or "", resource_type, storable(target_id), error.status,
        error.scim_type, storable(error.detail) or ""))


def check_if_match(version: int, if_match: str | None) -> None:
    if if_match is None:
        return
    tags = {tag.strip() for tag in if_match.split(",")}
    if "*" in tags:
        return
    current = etag(version)
    # Weak comparison (RFC 7232 section 2.3.2): W/"3" matches "3".
    if current not in tags and current.removeprefix("W/") not in {t.removeprefix("W/") for t in tags}:
        raise ScimError.precondition_failed(
            f"If-Match {if_match} does not match the current version {current}")


class Versioned(Protocol):
    version: int
    deleted: bool


S = TypeVar("S", bound=Versioned)
C = TypeVar("C", contravariant=True)


class Resource(Protocol[S, C]):
    """What the write loop needs of one kind of resource; the rest of a write is the same for all."""

    resource_type: str  # "User", "Group": in refusals, records and messages
    # Unique constraints of its inline view: constraint name -> the uniqueness error's detail.
    unique: Mapping[str, str]

    def stream_id(self, target_id: str) -> str: ...

    def in_transaction(self, attempt: int) -> bool:
        """Whether this try (0 first) of a change runs in a transaction, loading ``locked``."""
        ...

    async def load(self, connection: Connection | None, principal: Principal, target_id: str, *,
                   locked: bool) -> S | None:
        """The live state; without ``connection`` (a try outside a transaction) from the pool,
        with the other requests' reads of the moment."""
        ...

    async def decide(self, connection: Connection | None, principal: Principal, target_id: str, state: S | None,
                     command: C) -> Sequence[Event]: ...

    def fold(self, state: S | None, events: Sequence[Event]) -> S:
        """The state after ``events``, before the database stamped them (``stamp`` does)."""
        ...

    def view_write(self, state: S, principal: Principal) -> ViewWrite | None:
        """The view row written in the append's own statement, or None for the inline projections."""
        ...

    def stamp(self, state: S, recorded_at: datetime) -> S: ...


class CreateLost(Exception):
    """A create lost to an existing resource: a unique value taken (``detail`` says which), or
    its Idempotency-Key used by a concurrent create. The caller looks for the create it retries."""

    def __init__(self, events: Sequence[Event], detail: str | None) -> None:
        super().__init__(detail or "a concurrent create used this Idempotency-Key")
        self.events = events
        self.detail = detail


async def write(store: EventStore, resource: Resource[S, C], principal: Principal, ctx: RequestContext,
                target_id: str, command: C, *, if_match: str | None = None,
                create: CreateRequest | None = None) -> S:
    """The one write loop: load, check If-Match, decide, append (with the view row), fold once;
    again on a lost race. ``create`` makes it a create of ``target_id`` (nothing to load).

    A no-op is put on record here, a refusal by the HTTP edge (``record_refusal``).
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            state, changed = await _attempt(store, resource, principal, ctx, target_id, command, if_match,
                                            create, attempt)
        except ConcurrencyError:
            if if_match is not None:
                raise ScimError.precondition_failed(
                    f"the {resource.resource_type.lower()} changed since the version in If-Match") from None
            continue
        if not changed:
            await record_outcome(store, principal, ctx, RequestSkipped(
                ctx.method, ctx.path, resource.resource_type, None if create else target_id, 200))
        return state
    raise ScimError.conflict(
        f"the {resource.resource_type.lower()} is being changed concurrently; retry the request")


async def _attempt(store: EventStore, resource: Resource[S, C], principal: Principal, ctx: RequestContext,
                   target_id: str, command: C, if_match: str | None, create: CreateRequest | None,
                   attempt: int) -> tuple[S, bool]:
    """One try: (state after it, whether anything changed).

    A try in a transaction holds one connection throughout, and the append is reported once
    the transaction has committed. A try outside one holds none: its read and its append each
    join those of the other requests of the moment (``eventstore.batching``).
    """
    if not resource.in_transaction(attempt):
        state, changed, _ = await _decide_and_append(store, resource, principal, ctx, target_id, command, if_match,
                                                     create, None, locked=False)
        return state, changed
    async with store.pool.acquire() as connection, connection.transaction():
        outcome = await _decide_and_append(store, resource, principal, ctx, target_id, command, if_match, create,
                                           connection, locked=True)
    if outcome[1]:
        store.committed(outcome[2])
    return outcome[0], outcome[1]


async def _decide_and_append(store: EventStore, resource: Resource[S, C], principal: Principal, ctx: RequestContext,
                             target_id: str, command: C, if_match: str | None, create: CreateRequest | None,
                             connection: Connection | None, *, locked: bool,
                             ) -> tuple[S, bool, list[Envelope]]:
    stream = resource.stream_id(target_id)
    state: S | None = None
    if create is None:
        state = await resource.load(connection, principal, target_id, locked=locked)
        if state is None or state.deleted:
            raise ScimError.not_found(f"no {resource.resource_type.lower()} with id {target_id}")
        check_if_match(state.version, if_match)
    events = await resource.decide(connection, principal, target_id, state, command)
    if not events:
        assert state is not None
        return state, False, []
    new_state = resource.fold(state, events)
    metadata = ctx.metadata(principal)
    if create is not None:
        metadata |= create.metadata()
    try:
        envelopes = await store.append(
            stream, state.version if state is not None else 0, encode_all(list(events)), metadata,
            tenant_id=principal.tenant_id, idempotency_key=create.store_key(principal) if create else None,
            connection=connection, view=resource.view_write(new_state, principal))
    except ProjectionConflict as conflict:
        detail = resource.unique.get(conflict.constraint)
        if detail is None:
            raise
        if create is not None:
            raise CreateLost(events, detail) from None
        raise ScimError.uniqueness(detail) from None
    if envelopes[0].stream_id != stream:
        raise CreateLost(events, None)  # a concurrent create with the same Idempotency-Key won
    return resource.stamp(new_state, envelopes[0].recorded_at), True, envelopes


# A create whose answer was lost ------------------------------------------------------------
#
# Entra ID creates, the answer is lost (a cut connection, its 60 s timeout, a crash between
# commit and answer), it retries the POST and, answered 409, is stuck "trying to create" on
# every cycle. A retry is recognised by what the original create recorded in its metadata.


def create_digest(document: object) -> str:
    """The canonical form of a parsed create: key order and formatting of the body don't count."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """What a retried create must match: the same token, and the same body or Idempotency-Key."""

    digest: str
    idempotency_key: str | None = None

    def metadata(self) -> dict[str, object]:
        recorded: dict[str, object] = {"create_digest": self.digest}
        if self.idempotency_key is not None:
            recorded["idempotency_key"] = self.idempotency_key
        return recorded

    def store_key(self, principal: Principal) -> str | None:
        # Keys are the client's words: scoped to its token (and so to its tenant).
        return None if self.idempotency_key is None else f"{principal.token_id}:{self.idempotency_key}"


def original_create(stream: Sequence[Envelope], principal: Principal, create: CreateRequest,
                    window: timedelta, now: datetime) -> Envelope | None:
    """The first event of ``stream`` if this request retries the create that began it: same
    token, same body (or Idempotency-Key), within the window, and nothing appended since."""
    if not stream:
        return None
    first = stream[0]
    metadata = first.metadata
    if (metadata.get("actor") or {}).get("token_id") != str(principal.token_id):
        return None
    if now - first.recorded_at > window:
        return None
    if create.idempotency_key is not None:
        if metadata.get("idempotency_key") != create.idempotency_key:
            return None
        if metadata.get("create_digest") != create.digest:
            # draft-ietf-httpapi-idempotency-key-header section 2.7: a key reused for another body.
            raise ScimError(422, "this Idempotency-Key was used for a create with a different body")
    elif metadata.get("create_digest") != create.digest:
        return None
    if any(e.metadata.get("request_id") != metadata.get("request_id") for e in stream):
        return None  # changed since: not the answer the client missed
    return first


async def record_replay(store: EventStore, principal: Principal, ctx: RequestContext, resource_type: str,
                        target_id: str, original: Envelope, create: CreateRequest) -> None:
    matched_by = "idempotency_key" if create.idempotency_key is not None else "body"
    await record_outcome(store, principal, ctx, RequestReplayed(
        ctx.method, storable(ctx.path) or "", resource_type, target_id, 201,
        str(original.metadata.get("request_id")), matched_by))
