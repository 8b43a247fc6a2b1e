"""What every write shares: the request it came in, If-Match, and the record of a refusal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from eventstore import ConcurrencyError, EventStore
from eventstore.errors import DatabaseUnavailable
from gateway.domain.codec import encode
from gateway.domain.events import RequestRejected, RequestSkipped
from gateway.scim.errors import ScimError
from gateway.scim.resource import etag
from gateway.tenancy import Principal

log = structlog.get_logger("gateway.writes")


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
