"""Console security: sign-in, sessions, headers, CSRF and Fetch Metadata, escaping."""

from __future__ import annotations

import re
import socket

from gateway.app import create_app
from gateway.console.security import CONTENT_SECURITY_POLICY
from gateway.console.sessions import COOKIE
from gateway.http.keys import POOL, TENANCY
from gateway.settings import Settings
from tests.gateway.console.conftest import Console

ADMIN = ("admin",)


async def test_signing_in_with_an_admin_token_opens_a_session_with_a_host_cookie(console: Console, token_for):
    scim = await token_for("acme", scopes=ADMIN)
    response = await console.sign_in(scim.token)
    assert response.status == 303
    assert response.headers["Location"] == "/admin/users"
    cookie = response.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith(COOKIE + "="))
    attributes = {part.strip().lower() for part in session.split(";")[1:]}
    assert attributes == {"secure", "httponly", "samesite=strict", "path=/"}
    page, text = await console.get("/admin/users")
    assert page.status == 200
    assert "tenant <strong>acme</strong>" in text


async def test_every_console_page_carries_the_security_headers(console: Console, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    for path in ("/admin/signin", "/admin/users", "/admin/log", "/admin/tokens", "/admin/settings",
                 "/admin/health", "/admin/static/console.css", "/admin/nowhere"):
        response, _ = await console.get(path)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert CONTENT_SECURITY_POLICY == ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
                                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    response, _ = await console.get("/admin/users")
    assert response.headers["Cache-Control"] == "no-store"


async def test_an_unknown_console_page_is_an_html_404(console: Console, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    response, _text = await console.get("/admin/nowhere")
    assert response.status == 404
    assert response.content_type == "text/html"


async def test_without_a_session_pages_redirect_to_sign_in_and_forms_are_refused(console: Console):
    response, _ = await console.get("/admin/tokens")
    assert (response.status, response.headers["Location"]) == (303, "/admin/signin")
    response, text = await console.post("/admin/tokens", {"description": "x", "owner": "a@b.c", "scope": "admin"})
    assert response.status == 401
    assert "session has ended" in text


async def test_a_token_without_the_admin_scope_cannot_sign_in(console: Console, token_for):
    scim = await token_for("acme", scopes=("scim:read", "scim:write", "audit:read"))
    response = await console.sign_in(scim.token)
    assert response.status == 401
    assert COOKIE not in console.cookies


async def test_sign_in_needs_the_form_nonce_from_its_own_cookie(console: Console, token_for):
    scim = await token_for("acme", scopes=ADMIN)
    await console.get("/admin/signin")
    response, _text = await console.post("/admin/signin", {"nonce": "forged", "token": scim.token}, csrf=False)
    assert response.status == 403
    assert COOKIE not in console.cookies


async def test_failed_sign_ins_are_rate_limited_per_address(console: Console, token_for):
    scim = await token_for("acme", scopes=ADMIN)
    for _ in range(5):
        assert (await console.sign_in("scgw_wrong")).status == 401
    response = await console.sign_in(scim.token)  # even the right token waits now
    assert response.status == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 300


async def test_signing_in_again_rotates_the_session(console: Console, client, token_for):
    token = (await token_for("acme", scopes=ADMIN)).token
    await console.sign_in(token)
    first = console.cookies[COOKIE]
    await console.sign_in(token)
    second = console.cookies[COOKIE]
    assert first != second
    stale = Console(client, cookies={COOKIE: first})
    response, _ = await stale.get("/admin/users")
    assert (response.status, response.headers["Location"]) == (303, "/admin/signin")


async def test_signing_out_revokes_the_session_in_the_database(console: Console, client, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    cookie = console.cookies[COOKIE]
    response, _ = await console.post("/admin/signout")
    assert (response.status, response.headers["Location"]) == (303, "/admin/signin")
    assert await client.app[POOL].fetchval("SELECT count(*) FROM console_sessions WHERE revoked_at IS NOT NULL") == 1
    response, _ = await Console(client, cookies={COOKIE: cookie}).get("/admin/users")
    assert response.status == 303


async def test_an_idle_session_expires(console: Console, client, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    await client.app[POOL].execute("UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes'")
    response, _ = await console.get("/admin/users")
    assert (response.status, response.headers["Location"]) == (303, "/admin/signin")


async def test_a_session_expires_at_its_absolute_limit_however_active(console: Console, client, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    await client.app[POOL].execute("UPDATE console_sessions SET expires_at = now() - interval '1 second'")
    response, _ = await console.get("/admin/users")
    assert response.status == 303


async def test_revoking_the_token_ends_its_console_sessions(console: Console, client, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    token_id = await client.app[POOL].fetchval("SELECT token_id FROM console_sessions")
    await client.app[TENANCY].revoke_token(str(token_id), {"token_id": "", "owner": "tests", "token_description": ""})
    response, _ = await console.get("/admin/users")
    assert response.status == 303


async def test_a_form_without_the_csrf_token_is_refused(console: Console, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    form = {"description": "x", "owner": "bot@example.com", "scope": "scim:read"}
    response, text = await console.post("/admin/tokens", form, csrf=False)
    assert response.status == 403
    assert "CSRF" in text
    response, _ = await console.post("/admin/tokens", [*form.items(), ("csrf", "wrong")], csrf=False)
    assert response.status == 403


async def test_a_cross_site_form_is_refused_even_with_the_token(console: Console, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    form = {"description": "x", "owner": "bot@example.com", "scope": "scim:read"}
    response, text = await console.post("/admin/tokens", form, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status == 403
    assert "another site" in text
    response, _ = await console.post("/admin/tokens", form, headers={"Sec-Fetch-Site": "same-site"})
    assert response.status == 403


async def test_a_script_user_name_is_shown_as_text(console: Console, token_for):
    rfc = await token_for("plain", profile="rfc", scopes=("scim:write", "scim:read", "admin"))
    response, user = await rfc.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                               "userName": "<script>alert(1)</script>"})
    assert response.status == 201
    await console.sign_in(rfc.token)
    for path in ("/admin/users", f"/admin/users/{user['id']}"):
        _, text = await console.get(path)
        assert "<script>alert(1)</script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert re.findall(r"<script[^>]*>", text) == ['<script src="/admin/static/console.js" defer>']


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_with_a_console_port_the_api_port_has_no_console(database_url, aiohttp_client, token_for):
    settings = Settings(pool_min_size=1, pool_max_size=4, access_log=False, background_projector=False,
                        console_port=_free_port())
    client = await aiohttp_client(create_app(settings, database_url))
    response = await client.get("/admin/signin")
    assert response.status == 404
    tenancy = client.app[TENANCY]
    await tenancy.create_tenant("acme", "bynder", {"token_id": "", "owner": "tests", "token_description": ""})
    _, secret = await tenancy.create_token("acme", "bot@example.com", "t", ("scim:read",),
                                           {"token_id": "", "owner": "tests", "token_description": ""})
    response = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"})
    assert response.status == 200


async def test_the_console_port_serves_the_console_and_not_the_api(database_url, aiohttp_server, aiohttp_client):
    port = _free_port()
    settings = Settings(pool_min_size=1, pool_max_size=4, access_log=False, background_projector=False,
                        console_port=port, port=port + 1 if port < 65535 else port - 1)
    client = await aiohttp_client(await aiohttp_server(create_app(settings, database_url), port=port))
    response = await client.get("/admin/signin")
    assert response.status == 200
    response = await client.get("/scim/v2/Users", headers={"Authorization": "Bearer scgw_x"})
    assert response.status == 404
    assert (await response.json())["status"] == "404"
