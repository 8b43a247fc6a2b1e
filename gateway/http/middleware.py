"""Request id, one access-log line per request, and every exception turned into a SCIM error."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from domain.errors import Rejected
from eventstore.directory import tenant_scope
from eventstore.errors import unavailable
from gateway.http.keys import CLIENT_REQUEST_ID, METRICS, PRINCIPAL, REQUEST_ID, SETTINGS, STORE
from gateway.http.responses import scim_response
from gateway.scim.errors import ScimError
from gateway.writes import RequestContext, record_refusal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = structlog.get_logger("gateway.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

STREAMING_PREFIX = "/api/2/audit/"

_HTTP_DETAILS = {
    404: "no such resource or endpoint",
    405: "method not allowed on this endpoint",
    413: "request body is larger than the configured limit",
}


def _client_request_id(request: web.Request) -> str | None:
    # A caller's request id is kept when it is plausible, so its logs and ours line up; it is
    # never a key (two callers, or two tenants, may well send the same one).
    supplied = request.headers.get("X-Request-Id", "")
    return supplied if _REQUEST_ID.match(supplied) else None


def context(request: web.Request) -> RequestContext:
    """What a write records about the request it came in."""
    return RequestContext(
        request_id=request[REQUEST_ID],
        method=request.method,
        path=request.path,
        source_ip=request.remote,
        user_agent=request.headers.get("User-Agent"),
        client_request_id=request.get(CLIENT_REQUEST_ID),
    )


_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RESOURCE_TYPES = {"users": "User", "groups": "Group"}
# Deliberately not recorded: 401 (no principal to attribute it to, and a flood of them would
# be an attacker writing our log) and 429 (the limiter exists to shed that load). Both are
# counted in the metrics and the access log. An unreachable database cannot record anything.
_NOT_RECORDED = frozenset({401, 429})


def _write_target(request: web.Request) -> tuple[str, str | None] | None:
    """(resource type, target id) of a write request, or None for reads (``.search`` too)."""
    if request.method not in _WRITE_METHODS:
        return None
    segments = [s for s in request.path.split("/") if s]
    if segments and segments[-1].lower() == ".search":
        return None
    for index, segment in enumerate(segments):
        resource_type = _RESOURCE_TYPES.get(segment.lower())
        if resource_type is not None:
            target = segments[index + 1] if index + 1 < len(segments) else None
            return resource_type, target
    return (segments[-1] if segments else ""), None


async def _record_refusal(request: web.Request, error: BaseException, scim_error: ScimError) -> None:
    principal = request.get(PRINCIPAL)
    target = _write_target(request)
    if principal is None or target is None or scim_error.status in _NOT_RECORDED or _unreachable(error):
        return
    settings = request.app[SETTINGS]
    try:
        # Outside bearer_auth's scope by now: name the tenant again, so the refusal is kept on
        # the tenant's own database (eventstore/directory.py) beside the rest of its record.
        async with asyncio.timeout(settings.db_timeout):
            with tenant_scope(principal.tenant_id):
                await record_refusal(request.app[STORE], principal, context(request), *target, scim_error)
    except TimeoutError:
        log.warning("request_outcome_not_recorded", error="TimeoutError")


def _unreachable(error: BaseException) -> bool:
    return unavailable(error)  # the store's classification (eventstore/errors.py), the one place


def _error_for(request: web.Request, error: BaseException, request_id: str) -> ScimError:
    match error:
        case ScimError():
            return error
        case Rejected():
            return ScimError.from_rejected(error)
        case web.HTTPException():
            detail = _HTTP_DETAILS.get(error.status, error.reason)
            headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
            return ScimError(error.status, detail, headers=headers)
        case TimeoutError():
            log.warning("request_timeout")
            return ScimError.unavailable("the request took too long; the database may be overloaded")
        case _ if _unreachable(error):
            log.warning("database_unavailable", error=type(error).__name__)
            return ScimError.unavailable("the database is not available; retry later")
        case _:
            log.error("unhandled_exception", exc_info=error)
            return ScimError.internal(request_id)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = str(uuid.uuid4())
    client_request_id = _client_request_id(request)
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    if client_request_id is not None:
        request[CLIENT_REQUEST_ID] = client_request_id
        structlog.contextvars.bind_contextvars(client_request_id=client_request_id)
    started = time.perf_counter()
    status = 500
    settings = request.app[SETTINGS]
    # Streaming exports run as long as the data takes; everything else is bounded, so a
    # stuck database or an exhausted pool answers 503 instead of hanging.
    limit = None if request.path.startswith(STREAMING_PREFIX) else settings.request_timeout
    try:
        try:
            async with asyncio.timeout(limit):
                response = await handler(request)
        except Exception as error:  # every failure becomes a SCIM error body
            scim_error = _error_for(request, error, request_id)
            await _record_refusal(request, error, scim_error)
            response = scim_response(scim_error.body(), scim_error.status, scim_error.headers)
        status = response.status
        # The caller's id is echoed where it sent one; ours is always there too.
        response.headers["X-Request-Id"] = client_request_id or request_id
        response.headers["X-Gateway-Request-Id"] = request_id
        return response
    finally:
        request.app[METRICS].observe(request, status, time.perf_counter() - started)
        if settings.access_log:
            principal = request.get(PRINCIPAL)
            log.info(
                "request",
                method=request.method,
                # The path only: query strings carry filters, and filters carry userNames.
                path=request.path,
                query_params=sorted(set(request.query)) or None,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                tenant=principal.tenant_name if principal else None,
                token_id=str(principal.token_id) if principal else None,
            )
