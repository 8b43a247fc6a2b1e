"""Tokens page: issue (the secret shown once), list, revoke; all through ``Tenancy``.

"Last used" and an expiry are not in the tokens table yet; the page shows what it holds.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from domain.errors import Reason, Rejected
from domain.streams import token_stream
from domain.tenant import SCOPES
from gateway.console.security import render, see_other
from gateway.http.keys import PRINCIPAL, STORE, TENANCY
from gateway.tenancy import TokenRow

# What a SCIM integration (Entra ID, Okta) needs; preselected on the form.
INTEGRATION_SCOPES = ("scim:read", "scim:write")


async def _issued_by(request: web.Request, tokens: list[TokenRow]) -> dict[uuid.UUID, str]:
    """Who issued each token, from its first event's actor (the tokens table does not say)."""
    store = request.app[STORE]
    issued_by = {}
    for token in tokens:
        stream = await store.read_stream(request[PRINCIPAL].tenant_id, token_stream(token.token_id))
        actor = (stream[0].metadata.get("actor") or {}) if stream else {}
        issued_by[token.token_id] = actor.get("owner") or "unknown"
    return issued_by


async def _page(request: web.Request, status: int = 200, error: str | None = None,
                form: dict[str, object] | None = None) -> web.Response:
    principal = request[PRINCIPAL]
    tokens = await request.app[TENANCY].tokens(principal.tenant_name)
    # Valid tokens first, newest first within each group.
    tokens.sort(key=lambda t: (t.revoked_at is not None, -t.issued_at.timestamp()))
    return render(request, "tokens.html", {
        "section": "tokens", "tokens": tokens, "issued_by": await _issued_by(request, tokens),
        "scopes": SCOPES, "error": error,
        "form": form or {"description": "", "owner": "", "scopes": INTEGRATION_SCOPES},
    }, status=status)


async def tokens_page(request: web.Request) -> web.Response:
    return await _page(request)


async def create_token(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    form = await request.post()
    description = str(form.get("description", "")).strip()
    owner = str(form.get("owner", "")).strip()
    scopes = tuple(str(scope) for scope in form.getall("scope", []))
    entered = {"description": description, "owner": owner, "scopes": scopes}
    if not description or len(description) > 200:
        return await _page(request, 400, "Give the token a description of at most 200 characters.", entered)
    if len(owner) > 320:  # the longest email address RFC 5321 allows
        return await _page(request, 400, "The owner must be an email address of at most 320 characters.", entered)
    if not scopes:
        return await _page(request, 400, "Choose at least one scope.", entered)
    try:
        token_id, secret = await request.app[TENANCY].create_token(
            principal.tenant_name, owner, description, scopes, principal.actor())
    except Rejected as rejected:
        return await _page(request, 400, rejected.detail, entered)
    # Answered directly, never redirected to: reloading cannot show the secret again, and
    # the page is no-store (every console page is).
    return render(request, "token_created.html", {
        "section": "tokens", "token_id": token_id, "secret": secret, "description": description,
        "owner": owner, "scopes": scopes}, status=201)


async def revoke_token(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    tenancy = request.app[TENANCY]
    token_id = request.match_info["token_id"]
    # Only a token of the admin's own tenant: another tenant's id is "not found", as in the API.
    if token_id not in {str(t.token_id) for t in await tenancy.tokens(principal.tenant_name)}:
        raise Rejected(Reason.NOT_FOUND, f"no token with id {token_id} in this tenant")
    await tenancy.revoke_token(token_id, principal.actor())
    return see_other("/admin/tokens")
