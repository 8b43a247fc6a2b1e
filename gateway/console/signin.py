"""Sign in with an ``admin``-scope token, and sign out.

The token is the credential for now; an OIDC sign-in would be another way to reach
``Sessions.open`` with a principal (the seam is ``_principal_for``).
Before a session exists the form is protected by a double-submit token: a random value in a
``__Host-`` cookie that the form must echo.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from gateway.console.keys import FAILED_SIGNINS, SESSIONS
from gateway.console.security import render, see_other
from gateway.console.sessions import COOKIE
from gateway.http.keys import TENANCY
from gateway.tenancy import TOKEN_PREFIX, Principal

SIGNIN_COOKIE = "__Host-scgw_signin"
HOME = "/admin/users"


def _set_cookie(response: web.StreamResponse, name: str, value: str) -> None:
    # No Max-Age: the browser forgets it on exit; the server enforces idle and absolute expiry.
    response.set_cookie(name, value, path="/", secure=True, httponly=True, samesite="Strict")


def _form(request: web.Request, status: int = 200, error: str | None = None) -> web.Response:
    nonce = secrets.token_urlsafe(24)
    response = render(request, "signin.html", {"nonce": nonce, "error": error}, status=status)
    _set_cookie(response, SIGNIN_COOKIE, nonce)
    return response


async def signin_form(request: web.Request) -> web.Response:
    return _form(request)


async def _principal_for(request: web.Request, secret: str) -> Principal | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    principal = await request.app[TENANCY].authenticate(secret)
    if principal is None or "admin" not in principal.scopes:
        return None
    return principal


async def signin(request: web.Request) -> web.Response:
    failures = request.app[FAILED_SIGNINS]
    client = request.remote or "unknown"
    wait = failures.retry_after(client)
    if wait is not None:
        response = _form(request, 429, f"Too many failed sign-ins from this address; try again in {wait} s.")
        response.headers["Retry-After"] = str(wait)
        return response
    form = await request.post()
    nonce = form.get("nonce")
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not isinstance(nonce, str) or not expected or not hmac.compare_digest(nonce, expected):
        return _form(request, 403, "The sign-in form expired or came from elsewhere; try again.")
    secret = form.get("token")
    principal = await _principal_for(request, secret.strip() if isinstance(secret, str) else "")
    if principal is None:
        failures.failed(client)
        return _form(request, 401, "That token is not valid, has been revoked, or lacks the admin scope.")
    sessions = request.app[SESSIONS]
    # Rotation: whatever session this browser had ends; the new one gets a fresh secret.
    await sessions.revoke(request.cookies.get(COOKIE, ""))
    cookie, _ = await sessions.open(principal.tenant_id, principal.token_id, request.remote,
                                    request.headers.get("User-Agent"))
    response = see_other(HOME)
    _set_cookie(response, COOKIE, cookie)
    response.del_cookie(SIGNIN_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


async def signout(request: web.Request) -> web.Response:
    await request.app[SESSIONS].revoke(request.cookies.get(COOKIE, ""))
    response = see_other("/admin/signin")
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response
