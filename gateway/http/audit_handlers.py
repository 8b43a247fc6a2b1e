"""The audit export API (scope ``audit:read``): pages of the audit trail and the provisioning log.

Pagination follows the Okta System Log convention: a ``Link: <...>; rel="next"`` header and
the same opaque cursor in the body's ``next``; polling with the last cursor returns every
row exactly once, in order.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Mapping
from datetime import datetime

from aiohttp import web

from domain.errors import Rejected
from gateway.export_formats import FORMATS, negotiate
from gateway.http.auth import require
from gateway.http.keys import AUDIT_RUNNER, CLIENT_REQUEST_ID, POOL, REQUEST_ID, SETTINGS, STORE
from gateway.http.responses import json_response
from gateway.http.scim_handlers import base_url
from gateway.replay import Replay
from gateway.scim import bounds
from gateway.scim.errors import ScimError
from gateway.scim.resource import render_user
from gateway.tenancy import Principal
from gateway.timestamps import parse_time, timestamp
from projections.audit_export import ACTIONS, RESULTS, ExportQuery, last_seq_of_page, stream_export

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


def encode_cursor(kind: str, tenant_id: uuid.UUID, seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{kind}:{tenant_id}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(text: str, kind: str, tenant_id: uuid.UUID) -> int:
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        version, cursor_kind, tenant, seq_text = decoded.split(":")
        seq = bounds.position(seq_text, "cursor")
        if version != "v1":
            raise ValueError(text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ScimError(400, "cursor is not one this API issued") from None
    if cursor_kind != kind:
        raise ScimError(400, f"cursor belongs to the {cursor_kind} export, not {kind}")
    if tenant != str(tenant_id):
        raise ScimError(400, "cursor belongs to another tenant")
    return seq


def _time(name: str, value: str | None) -> datetime | None:
    try:
        return parse_time(name, value)
    except Rejected as rejected:
        raise ScimError(400, rejected.detail) from None


def parse_query(request: web.Request, kind: str, principal: Principal, user: str | None = None,
                params: Mapping[str, str] | None = None) -> ExportQuery:
    params = request.query if params is None else params
    limit_text = params.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(limit_text)
    except ValueError:
        raise ScimError(400, f"limit must be an integer, not {limit_text!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ScimError(400, f"limit must be between 1 and {MAX_LIMIT}")
    action = params.get("action")
    if action is not None and action not in ACTIONS[kind]:
        raise ScimError(400, f"unknown action {action!r}; expected one of {sorted(ACTIONS[kind])}")
    result = params.get("result")
    if result is not None and (kind != "provisioning" or result not in RESULTS):
        raise ScimError(400, f"result must be one of {sorted(RESULTS)} (provisioning log only)")
    request_id = params.get("request_id") or None
    if request_id is not None and len(request_id) > 200:
        raise ScimError(400, "request_id must be at most 200 characters")
    cursor = params.get("cursor")
    return ExportQuery(
        kind=kind,
        tenant_id=principal.tenant_id,
        after_seq=decode_cursor(cursor, kind, principal.tenant_id) if cursor else 0,
        since=_time("since", params.get("since")),
        until=_time("until", params.get("until")),
        user=user or params.get("user"),
        actor=params.get("actor"),
        action=action,
        result=result,
        request_id=request_id,
        limit=limit,
    )


async def _export(request: web.Request, kind: str, user: str | None = None) -> web.StreamResponse:
    principal = require(request, "audit:read")
    query = parse_query(request, kind, principal, user)
    output = negotiate(request.query.get("format"), request.headers.get("Accept", "*/*"))
    if output is None:
        raise ScimError(406, f"formats offered: {', '.join(f'{k} ({v})' for k, v in FORMATS.items())}")
    # The projector runs in the background; bring it up to date so a reader sees its own writes.
    async with asyncio.timeout(request.app[SETTINGS].request_timeout):
        await request.app[AUDIT_RUNNER].catch_up_tenant(principal.tenant_id)

    settings = request.app[SETTINGS]
    async with request.app[POOL].acquire(timeout=settings.db_timeout) as connection, \
            connection.transaction(isolation="repeatable_read"):
        last = await last_seq_of_page(connection, query)
        next_cursor = encode_cursor(kind, principal.tenant_id, last if last is not None else query.after_seq)
        next_url = request.url.update_query({"cursor": next_cursor})
        response = web.StreamResponse(headers={
            "Content-Type": FORMATS[output] + ("; charset=utf-8" if output != "json" else ""),
            "Link": f'<{next_url}>; rel="next"',
            "X-Next-Cursor": next_cursor,
            "X-Request-Id": request.get(CLIENT_REQUEST_ID) or request[REQUEST_ID],
            "X-Gateway-Request-Id": request[REQUEST_ID],
        })
        await response.prepare(request)
        if output == "json":
            await response.write(b'{"items":')
        await stream_export(connection, query, last, output, response.write)
        if output == "json":
            await response.write(b',"next":' + json_response_cursor(next_cursor) + b"}")
        await response.write_eof()
        return response


def json_response_cursor(cursor: str) -> bytes:
    return b'"' + cursor.encode() + b'"'


async def audit_events(request: web.Request) -> web.StreamResponse:
    return await _export(request, "events")


async def provisioning_log(request: web.Request) -> web.StreamResponse:
    return await _export(request, "provisioning")


async def user_timeline(request: web.Request) -> web.StreamResponse:
    user_id = request.match_info["user_id"]
    try:
        uuid.UUID(user_id)
    except ValueError:
        raise ScimError.not_found(f"no user with id {user_id}") from None
    return await _export(request, "events", user=user_id)


async def user_at(request: web.Request) -> web.Response:
    """The user as it was at ``at`` (or ``position``), folded from the log, not read from the view."""
    principal = require(request, "audit:read")
    user_id = request.match_info["user_id"]
    at = _time("at", request.query.get("at"))
    position_text = request.query.get("position")
    try:
        position = bounds.position(position_text, "position") if position_text is not None else None
    except ValueError as error:
        raise ScimError.invalid_value(str(error)) from None
    replay = Replay(request.app[STORE])
    try:
        resolved = await replay.resolve_user(principal.tenant_id, user_id)
        result = await replay.user_at(principal.tenant_id, resolved, at=at, position=position)
    except Rejected as rejected:
        raise ScimError.from_rejected(rejected) from None
    if result.state is None:
        created = timestamp(result.created) if result.created else "never"
        raise ScimError.not_found(f"user {user_id} did not exist yet at that point (created {created})")
    resource = render_user(result.state, base_url(request), principal.policy.gateway_extension)
    return json_response({"as_of": {"at": timestamp(at) if at else None, "position": result.position},
                          "deleted": result.state.deleted, "resource": resource})


__all__ = ["audit_events", "json_response", "provisioning_log", "user_timeline"]
