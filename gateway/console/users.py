"""Users: search, a user's page (attributes as of a time, history picture), deactivate.

Search is a SCIM filter run by the users service, so it takes the same tenant-bound,
parameterised path as ``GET /Users``. The user's state and history come from the event log
through ``Replay`` (the same data as ``scim-gateway replay timeline``).
"""

from __future__ import annotations

import json
import uuid

from aiohttp import web

from domain.errors import Reason, Rejected
from domain.json import JsonObject, JsonValue
from domain.patch import AssignActive
from domain.user import PatchUser, UserState
from gateway.console.security import render, see_other
from gateway.console.timeline_picture import layout
from gateway.http.keys import PRINCIPAL, REQUEST_ID, STORE, USERS
from gateway.replay import Replay
from gateway.scim.filter import parse_filter
from gateway.scim.listing import ListQuery
from gateway.timestamps import parse_time
from gateway.writes import RequestContext

PAGE_SIZE = 50
MAX_QUERY = 200
STATUSES = {"active": "active eq true", "inactive": "active eq false"}


def search_filter(text: str, status: str) -> str | None:
    """A SCIM filter for the search box: userName or email containing it, or externalId equal."""
    clauses = []
    if text:
        value = json.dumps(text)  # a SCIM filter value is a JSON string (RFC 7644 3.4.2.2)
        clauses.append(f"(userName co {value} or emails.value co {value} or externalId eq {value})")
    if status in STATUSES:
        clauses.append(STATUSES[status])
    return " and ".join(clauses) or None


async def users_page(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    text = request.query.get("q", "").strip()[:MAX_QUERY]
    status = request.query.get("status", "")
    filter_text = search_filter(text, status)
    query = ListQuery(parse_filter(filter_text) if filter_text else None, 1, PAGE_SIZE,
                      "meta.lastModified", True)
    page = await request.app[USERS].list(principal, query)
    return render(request, "users.html", {
        "section": "users", "page": page, "q": text, "status": status, "shown": PAGE_SIZE})


def _flatten(prefix: str, value: JsonValue, rows: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            _flatten(f"{prefix}.{key}" if prefix else key, value[key], rows)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(f"{prefix}[{index}]", item, rows)
    else:
        rows.append((prefix, "" if value is None else str(value)))


def attribute_rows(state: UserState) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    attributes: JsonObject = state.attributes
    _flatten("", attributes, rows)
    rows.append(("active", str(state.active).lower()))
    rows.append(("loginMethod", state.login_method))
    rows.append(("permissionProfile", state.permission_profile or ""))
    return rows


def _user_id(request: web.Request) -> str:
    text = request.match_info["user_id"]
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise Rejected(Reason.NOT_FOUND, f"no user with id {text}") from None


async def user_page(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    user_id = _user_id(request)
    at_text = request.query.get("at", "").strip()
    # The form's field is a datetime-local (no offset): read as UTC, as the page says.
    at = parse_time("at", at_text, naive_is_utc=True) if at_text else None
    replay = Replay(request.app[STORE])
    result = await replay.user_at(principal.tenant_id, user_id, at=at)
    entries = await replay.timeline(principal.tenant_id, user_id)
    state = result.state
    return render(request, "user.html", {
        "section": "users", "user_id": user_id, "state": state, "at": at, "at_text": at_text,
        "rows": attribute_rows(state) if state else [], "created": result.created,
        "picture": layout(entries, at), "entries": len(entries),
    })


async def deactivate(request: web.Request) -> web.Response:
    """As a SCIM ``PATCH active=false`` would, through the users service, on the admin's token."""
    principal = request[PRINCIPAL]
    user_id = _user_id(request)
    context = RequestContext(request[REQUEST_ID], request.method, request.path, request.remote,
                             request.headers.get("User-Agent"))
    await request.app[USERS].update(
        principal, context, user_id, PatchUser((AssignActive(False),)), if_match=None)
    return see_other(f"/admin/users/{user_id}")


async def erase(request: web.Request) -> web.Response:
    """Permanent deletion: the erasure (crypto-shredding, docs/privacy.md) on the admin's token,
    only when the userName is typed back exactly, as the reference product's user management
    asks before a permanent deletion."""
    from gateway.erasure import erase_user

    principal = request[PRINCIPAL]
    user_id = _user_id(request)
    form = await request.post()
    state = await request.app[USERS].get(principal, user_id)
    typed = str(form.get("confirm_user_name", ""))
    if typed != state.user_name:
        raise Rejected(Reason.INVALID_VALUE, "type the userName exactly as shown to confirm the erasure")
    context = RequestContext(request[REQUEST_ID], request.method, request.path, request.remote,
                             request.headers.get("User-Agent"))
    await erase_user(request.app[STORE], principal.tenant_id, user_id, actor=principal.actor(),
                     reason=str(form.get("reason", "")), ticket=str(form.get("ticket", "")).strip() or None,
                     confirm_active=form.get("confirm_active") == "yes", metadata=context.metadata(principal))
    return see_other(f"/admin/users/{user_id}")
