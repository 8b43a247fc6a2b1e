"""The edge check: what a request must fit before any handler or SQL sees it.

Runs after authentication (so a refusal has a principal to be recorded against) and before
the handler. It refuses NUL in the path and the query (PostgreSQL ``text`` cannot hold it,
and a refusal record quoting the path could not be stored), refuses an announced body over
the limit at once (instead of waiting for bytes that never come), refuses content codings
we do not decode, and reads the body once so a body that fails to decode is a 400 here.
Bounds on values inside the body, filters, times and cursors are in ``gateway.scim.bounds``
and ``gateway.timestamps``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.http.keys import SETTINGS
from gateway.scim.errors import ScimError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ACCEPTED_CODINGS = frozenset({"", "identity"})


def check_request(request: web.Request) -> None:
    """Path, query, announced length and content coding; the body is the handler's to read."""
    if "\x00" in request.path:
        raise ScimError.invalid_value("the path must not contain NUL characters")
    if any("\x00" in key or "\x00" in value for key, value in request.query.items()):
        raise ScimError.invalid_value("query parameters must not contain NUL characters")
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ScimError.payload_too_large(f"the request body is larger than the limit of {limit} bytes")
    codings = [c.strip().lower() for c in request.headers.get("Content-Encoding", "").split(",")]
    unknown = [c for c in codings if c not in ACCEPTED_CODINGS]
    if unknown:
        raise ScimError.unsupported_media_type(
            f"content coding {unknown[0][:40]!r} is not supported; send the body uncompressed")


@web.middleware
async def edge_bounds(request: web.Request, handler: Handler) -> web.StreamResponse:
    check_request(request)
    return await handler(request)
