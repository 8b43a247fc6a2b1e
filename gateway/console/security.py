"""What guards every console request: headers, the session, CSRF, and errors as HTML pages.

- Headers (issue 16): a CSP that allows only this origin's stylesheet and script, no framing,
  no referrer, no MIME sniffing; pages are ``no-store`` since they show tenant data.
- A session cookie (``__Host-``, Secure, HttpOnly, SameSite=Strict) names a row in
  ``console_sessions``; its token must still be valid and hold the ``admin`` scope.
- Every POST carries the session's CSRF token, and a browser's ``Sec-Fetch-Site`` (Fetch
  Metadata) must say the request came from this origin or was typed by the user.
"""

from __future__ import annotations

import hmac

import aiohttp_jinja2
from aiohttp import web

from domain.errors import Rejected
from eventstore.directory import tenant_scope
from gateway.console.keys import SESSION, SESSIONS
from gateway.console.sessions import COOKIE
from gateway.http.keys import PRINCIPAL, SETTINGS, TENANCY
from gateway.http.middleware import Handler
from gateway.scim.errors import ScimError

PREFIX = "/admin"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
DOWNLOAD_PATH = "/admin/log/download"
# Reachable without a session: the sign-in form and the stylesheet and script it uses.
OPEN_PATHS = ("/admin/signin", "/admin/static/")
# "none": typed in the address bar or a bookmark; browsers too old to send it send nothing.
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


def is_console(request: web.Request) -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: also reaches streamed downloads and static files."""
    if not is_console(request):
        return
    response.headers.update(HEADERS)
    if not request.path.startswith("/admin/static/"):
        response.headers["Cache-Control"] = "no-store"
    if request.path == DOWNLOAD_PATH and response.status == 200:
        response.headers["Content-Disposition"] = 'attachment; filename="provisioning-log.csv"'


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def error_page(request: web.Request, status: int, detail: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        "error.html", request, {"status": status, "detail": detail, "principal": request.get(PRINCIPAL),
                                "session": request.get(SESSION), "section": None}, status=status)


def cross_site(request: web.Request) -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    return site is not None and site not in ALLOWED_FETCH_SITES


def _local_port(request: web.Request) -> int | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    return sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None


@web.middleware
async def console_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    console_port = request.app[SETTINGS].console_port
    if console_port and is_console(request) != (_local_port(request) == console_port):
        # A console of its own listener: the console answers only there, the API only elsewhere.
        raise web.HTTPNotFound()
    if not is_console(request):
        return await handler(request)
    if request.path == PREFIX:
        return see_other("/admin/")
    try:
        if request.method not in ("GET", "HEAD") and cross_site(request):
            return error_page(request, 403, "This form was sent from another site; it was refused.")
        if not request.path.startswith(OPEN_PATHS):
            refused = await _authenticate(request)
            if refused is not None:
                return refused
            with tenant_scope(request[PRINCIPAL].tenant_id):  # the tenant's database, as the API's
                return await handler(request)
        return await handler(request)
    except Rejected as rejected:
        error = ScimError.from_rejected(rejected)
        return error_page(request, error.status, error.detail)
    except ScimError as error:
        return error_page(request, error.status, error.detail)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return error_page(request, error.status, error.reason)


async def _authenticate(request: web.Request) -> web.StreamResponse | None:
    """Load the session and its principal; check CSRF on writes. A response means refused."""
    sessions = request.app[SESSIONS]
    secret = request.cookies.get(COOKIE, "")
    session = await sessions.touch(secret)
    principal = None
    if session is not None:
        principal = await request.app[TENANCY].principal_of(session.token_id)
        if principal is None or "admin" not in principal.scopes:
            await sessions.revoke(secret)  # its token was revoked: the session ends with it
            principal = None
    if session is None or principal is None:
        if request.method in ("GET", "HEAD"):
            return see_other("/admin/signin")
        return error_page(request, 401, "Your session has ended; sign in again.")
    if request.method not in ("GET", "HEAD"):
        form = await request.post()
        sent = form.get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
            return error_page(request, 403, "The form's CSRF token is missing or wrong; reload the page.")
    request[SESSION] = session
    request[PRINCIPAL] = principal
    return None


def render(request: web.Request, template: str, context: dict[str, object], status: int = 200) -> web.Response:
    """A page with what every page shows: who is signed in, the CSRF token, the current section."""
    context = {"principal": request.get(PRINCIPAL), "session": request.get(SESSION), "section": None, **context}
    return aiohttp_jinja2.render_template(template, request, context, status=status)
