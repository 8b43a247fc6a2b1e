"""What every write shares: the request it came in, If-Match, and the record of a refusal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import structlog

from eventstore import ConcurrencyError, EventStore
from eventstore.errors import DatabaseUnavailable
from gateway.domain.codec import encode
from gateway.domain.errors import Rejected
from gateway.domain.events import RequestRejected, RequestSkipped
from gateway.scim.errors import ScimError
from gateway.scim.resource import etag
from gateway.tenancy import Principal

log = structlog.get_logger("gateway.writes")

# Concurrent writers to one resource without If-Match: retry the decide/append cycle this often.
MAX_ATTEMPTS = 8

State = TypeVar("State")


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    method: str
    path: str
    source_ip: str | None
    user_agent: str | None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def metadata(self, principal: Principal) -> dict[str, object]:
        return {
            "actor": principal.actor(),
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "received_at": self.received_at.isoformat(),
        }


async def record_outcome(store: EventStore, principal: Principal, ctx: RequestContext,
                         event: RequestRejected | RequestSkipped) -> None:
    """Refused and no-op writes become events, so the provisioning log shows them.

    Best effort: the answer to the client does not depend on this record.
    """
    try:
        await store.append(f"request-{ctx.request_id}", None, [encode(event)], ctx.metadata(principal),
                           tenant_id=principal.tenant_id)
    except (DatabaseUnavailable, ConcurrencyError, OSError) as failure:
        log.warning("request_outcome_not_recorded", error=type(failure).__name__)


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


async def recorded_write(
    store: EventStore,
    principal: Principal,
    ctx: RequestContext,
    resource_type: str,
    target_id: str | None,
    attempt: Callable[[], Awaitable[tuple[State, bool]]],
    if_match: str | None,
) -> State:
    """Run ``attempt`` (one decide/append cycle returning (state, changed)) until it wins the
    race; a no-op and every refusal are put on record for the provisioning log."""
    noun = resource_type.lower()
    try:
        for _ in range(MAX_ATTEMPTS):
            try:
                state, changed = await attempt()
            except ConcurrencyError:
                if if_match is not None:
                    raise ScimError.precondition_failed(
                        f"the {noun} changed since the version in If-Match") from None
                continue
            if not changed:
                await record_outcome(store, principal, ctx, RequestSkipped(
                    ctx.method, ctx.path, resource_type, target_id, 200))
            return state
        raise ScimError.conflict(f"the {noun} is being changed concurrently; retry the request")
    except (Rejected, ScimError) as failure:
        error = ScimError.from_rejected(failure) if isinstance(failure, Rejected) else failure
        await record_outcome(store, principal, ctx, RequestRejected(
            ctx.method, ctx.path, resource_type, target_id, error.status, error.scim_type, error.detail))
        raise error from None
