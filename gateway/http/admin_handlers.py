"""Operator endpoints outside SCIM (scope ``admin``): erasing a person."""

from __future__ import annotations

from aiohttp import web

from domain.errors import Rejected
from gateway.erasure import erase_user
from gateway.http.auth import require
from gateway.http.keys import AUDIT_RUNNER, SETTINGS, STORE
from gateway.http.middleware import context
from gateway.http.responses import json_response
from gateway.http.scim_handlers import parse_json
from gateway.scim.errors import ScimError


async def erase(request: web.Request) -> web.Response:
    """``{"reason": "...", "ticket": "...", "confirmActive": true}`` -> 200 with what was done."""
    principal = require(request, "admin")
    raw = await request.read()
    body = parse_json(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise ScimError.invalid_value("the body must be a JSON object")
    reason, ticket, confirm = body.get("reason"), body.get("ticket"), body.get("confirmActive", False)
    if not isinstance(reason, str) or not reason.strip():
        raise ScimError.invalid_value("reason is required: a non-empty string")
    if ticket is not None and not isinstance(ticket, str):
        raise ScimError.invalid_value("ticket must be a string")
    if not isinstance(confirm, bool):
        raise ScimError.invalid_value("confirmActive must be true or false")
    ctx = context(request)
    try:
        erased = await erase_user(request.app[STORE], principal.tenant_id, request.match_info["user_id"],
                                  actor=principal.actor(), reason=reason, ticket=ticket, confirm_active=confirm,
                                  metadata=ctx.metadata(principal))
    except Rejected as rejected:
        raise ScimError.from_rejected(rejected) from None
    if request.app[SETTINGS].background_projector:
        request.app[AUDIT_RUNNER].wake()  # the audit trail's [erased] follows at once
    return json_response(erased.as_dict())
