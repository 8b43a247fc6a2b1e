"""Request id, one access-log line per request, and every exception turned into a SCIM error."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from aiohttp import web

from eventstore.errors import DatabaseUnavailable
from gateway.domain.errors import Rejected
from gateway.http.keys import METRICS, PRINCIPAL, REQUEST_ID, SETTINGS
from gateway.http.responses import scim_response
from gateway.scim.errors import ScimError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = structlog.get_logger("gateway.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

STREAMING_PREFIX = "/api/2/audit/"

_HTTP_DETAILS = {
    404: "no such resource or endpoint",
    405: "method not allowed on this endpoint",
    413: "request body is larger than the configured limit",
}


def _request_id(request: web.Request) -> str:
    # A caller's request id is kept when it is plausible, so its logs and ours line up.
    supplied = request.headers.get("X-Request-Id", "")
    return supplied if _REQUEST_ID.match(supplied) else str(uuid.uuid4())


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
        case (
            DatabaseUnavailable()
            | asyncpg.CannotConnectNowError()
            | asyncpg.ConnectionDoesNotExistError()
            | asyncpg.TooManyConnectionsError()
            | asyncpg.InterfaceError()
            | ConnectionError()
            | OSError()
            | asyncpg.exceptions.CannotConnectNowError()
            | asyncpg.exceptions.AdminShutdownError()
        ):
            log.warning("database_unavailable", error=type(error).__name__)
            return ScimError.unavailable("the database is not available; retry later")
        case _:
            log.error("unhandled_exception", exc_info=error)
            return ScimError.internal(request_id)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
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
            response = scim_response(scim_error.body(), scim_error.status, scim_error.headers)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    finally:
        request.app[METRICS].observe(request, status, time.perf_counter() - started)
        if settings.access_log:
            principal = request.get(PRINCIPAL)
            log.info(
                "request",
                method=request.method,
                path=request.path,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                tenant=principal.tenant_name if principal else None,
                token_id=str(principal.token_id) if principal else None,
            )
