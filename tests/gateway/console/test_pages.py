"""Console pages through the services: tokens, users and history, the provisioning log,
tenant settings, health. The browser tests (tests/browser) drive the same pages in Chromium."""

from __future__ import annotations

import re
import uuid

from gateway.http.keys import POOL, STORE, TENANCY
from tests.gateway.console.conftest import Console
from tests.gateway.console.entra_cycle import STEPS, new_user

ADMIN = ("admin",)
_DOWNLOAD = re.compile(r'id="download" href="([^"]+)"')


async def _entra_cycle(scim, user_name: str = "ada@example.com") -> str:
    response, user = await scim.post("/Users", new_user(user_name))
    assert response.status == 201, user
    for method, body, status in STEPS:
        response, answer = await scim.request(method, f"/Users/{user['id']}", json=body)
        assert response.status == status, answer
    return user["id"]


async def test_a_token_created_in_the_console_is_shown_once_and_works(console: Console, client, token_for):
    admin = await token_for("acme", scopes=ADMIN)
    await console.sign_in(admin.token)
    response, text = await console.post("/admin/tokens", [("description", "Entra ID"), ("owner", "entra@example.com"),
                                                           ("scope", "scim:read"), ("scope", "scim:write")])
    assert response.status == 201
    assert response.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="secret" readonly value="(scgw_[^"]+)"', text)[1]
    scim_get = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"})
    assert scim_get.status == 200
    _, listing = await console.get("/admin/tokens")
    assert secret not in listing
    assert "Entra ID" in listing and "entra@example.com" in listing and "scim:read, scim:write" in listing


async def test_the_token_list_says_who_issued_each_token(console: Console, token_for):
    admin = await token_for("acme", scopes=ADMIN, owner="root@example.com")
    await console.sign_in(admin.token)
    await console.post("/admin/tokens", {"description": "Okta", "owner": "okta@example.com", "scope": "scim:read"})
    _, listing = await console.get("/admin/tokens")
    row = re.search(r"<tr data-token-id[^>]*>\s*<td>Okta</td>.*?</tr>", listing, re.S)[0]
    assert "<td>root@example.com</td>" in row


async def test_a_token_with_a_bad_owner_is_refused_with_the_form_kept(console: Console, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    response, text = await console.post("/admin/tokens", {"description": "Entra", "owner": "not-an-email",
                                                          "scope": "scim:read"})
    assert response.status == 400
    assert "must be an email address" in text
    assert 'value="Entra"' in text
    response, text = await console.post("/admin/tokens", {"description": "Entra", "owner": "a" * 400 + "@example.com",
                                                          "scope": "scim:read"})
    assert response.status == 400
    assert "at most 320 characters" in text


async def test_a_revoked_token_gets_401_at_once(console: Console, client, token_for):
    admin = await token_for("acme", scopes=ADMIN)
    integration = await token_for("acme", scopes=("scim:read",))
    await console.sign_in(admin.token)
    token_id = await client.app[POOL].fetchval(
        "SELECT token_id FROM tokens WHERE scopes = ARRAY['scim:read'] AND revoked_at IS NULL")
    response, _ = await console.post(f"/admin/tokens/{token_id}/revoke")
    assert (response.status, response.headers["Location"]) == (303, "/admin/tokens")
    response, _ = await integration.get("/Users")
    assert response.status == 401
    tenant = await client.app[TENANCY].tenant("acme")
    stream = await client.app[STORE].read_stream(tenant.tenant_id, f"token-{token_id}")
    assert stream[-1].type == "TokenRevoked"
    assert stream[-1].metadata["actor"]["token_id"] != ""  # the admin's token, not anonymous


async def test_another_tenants_token_cannot_be_revoked_from_the_console(console: Console, client, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    await token_for("other", scopes=("scim:read",))
    other = await client.app[POOL].fetchval(
        "SELECT k.token_id FROM tokens k JOIN tenants t USING (tenant_id) WHERE t.name = 'other'")
    response, _text = await console.post(f"/admin/tokens/{other}/revoke")
    assert response.status == 404
    assert await client.app[POOL].fetchval("SELECT revoked_at FROM tokens WHERE token_id = $1", other) is None


async def test_user_search_finds_by_user_name_email_or_external_id_in_the_tenant_only(console, token_for):
    scim = await token_for("acme")
    other = await token_for("other")
    await _entra_cycle(scim, "ada@example.com")
    response, _ = await other.post("/Users", new_user("ada.other@example.com"))
    assert response.status == 201
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    for query in ("ada@", "ADA@EXAMPLE", "ada"):
        _, text = await console.get(f"/admin/users?q={query}")
        assert ">ada@example.com</a>" in text, query
        assert "ada.other" not in text
    _, text = await console.get("/admin/users?q=ada&status=active")
    assert ">ada@example.com</a>" not in text  # deactivated by the cycle
    _, text = await console.get("/admin/users?q=ada&status=inactive")
    assert ">ada@example.com</a>" in text


async def test_the_history_picture_shows_each_step_of_the_cycle(console: Console, token_for):
    scim = await token_for("acme")
    user_id = await _entra_cycle(scim)
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    _, text = await console.get(f"/admin/users/{user_id}")
    svg = re.search(r'<svg id="timeline".*?</svg>', text, re.S)[0]
    assert re.findall(r'data-action="(\w+)"', svg) == ["create", "update", "deactivate", "refused"]
    assert "givenName: &#34;Ada&#34; → &#34;Augusta&#34;" in svg
    assert "by scim-bot@example.com" in svg
    assert "-&gt; 400" in svg  # the refused request's SCIM answer


async def test_the_user_page_as_of_a_time_shows_the_state_then(console: Console, client, token_for):
    scim = await token_for("acme")
    user_id = await _entra_cycle(scim)
    created = await client.app[POOL].fetchval(
        "SELECT recorded_at FROM events WHERE stream_id = $1 AND stream_version = 1", f"user-{user_id}")
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    at = created.strftime("%Y-%m-%dT%H:%M:%S.%f")
    _, text = await console.get(f"/admin/users/{user_id}?at={at}")
    attributes = re.search(r'<table class="grid facts" id="user-attributes">.*?</table>', text, re.S)[0]
    assert "<th scope=\"row\">name.givenName</th><td>Ada</td>" in attributes
    assert "<th scope=\"row\">active</th><td>true</td>" in attributes
    assert text.count('class="step') - text.count('after"') == 1  # later steps faded
    _, text = await console.get(f"/admin/users/{user_id}?at=2000-01-01T00:00")
    assert 'id="not-yet"' in text


async def test_deactivating_from_the_console_is_an_event_of_the_admins_token(console: Console, client, token_for):
    scim = await token_for("acme")
    response, user = await scim.post("/Users", new_user("bob@example.com"))
    await console.sign_in((await token_for("acme", scopes=ADMIN, owner="root@example.com")).token)
    response, _ = await console.post(f"/admin/users/{user['id']}/deactivate")
    assert (response.status, response.headers["Location"]) == (303, f"/admin/users/{user['id']}")
    tenant = await client.app[TENANCY].tenant("acme")
    last = (await client.app[STORE].read_stream(tenant.tenant_id, f"user-{user['id']}"))[-1]
    assert last.type == "UserDeactivated"
    assert last.metadata["actor"]["owner"] == "root@example.com"
    assert last.metadata["path"] == f"/admin/users/{user['id']}/deactivate"
    response, body = await scim.get(f"/Users/{user['id']}")
    assert body["active"] is False


async def test_a_user_of_another_tenant_is_not_found(console: Console, token_for):
    other = await token_for("other")
    response, user = await other.post("/Users", new_user("eve@example.com"))
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    response, _ = await console.get(f"/admin/users/{user['id']}")
    assert response.status == 404
    response, _ = await console.post(f"/admin/users/{user['id']}/deactivate")
    assert response.status == 404
    response, _ = await console.get(f"/admin/users/{uuid.uuid4()}")
    assert response.status == 404
    response, _ = await console.get("/admin/users/not-a-uuid")
    assert response.status == 404


async def test_the_log_filters_to_failures_and_expands_to_steps_and_changes(console: Console, token_for):
    scim = await token_for("acme")
    await _entra_cycle(scim)
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    _, text = await console.get("/admin/log")
    assert re.findall(r'data-result="(\w+)"', text) == ["failure", "success", "success", "success"]
    assert '<tr><td>name.givenName</td><td>"Ada"</td><td>"Augusta"</td></tr>' in text  # the expanded row
    _, text = await console.get("/admin/log?result=failure")
    assert re.findall(r'data-result="(\w+)"', text) == ["failure"]
    steps = re.findall(r'<li class="step ([\w-]+)"><strong>(\w+)</strong>', text)
    assert steps == [("ok", "auth"), ("ok", "parse"), ("failed", "validate"), ("not-reached", "apply")]
    assert "cooldown" in text


async def test_the_log_download_is_the_export_apis_bytes_for_the_same_filter(console: Console, client, token_for):
    scim = await token_for("acme", scopes=("scim:read", "scim:write", "audit:read"))
    await _entra_cycle(scim)
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    _, text = await console.get("/admin/log?result=failure")
    link = _DOWNLOAD.search(text)[1].replace("&amp;", "&")
    assert link.startswith("/admin/log/download?")
    response, downloaded = await console.get(link)
    assert response.status == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="provisioning-log.csv"'
    api = await client.get("/api/2/audit/provisioning?" + link.split("?", 1)[1],
                           headers={"Authorization": f"Bearer {scim.token}"})
    assert api.status == 200
    assert downloaded.encode() == await api.read()
    assert downloaded.count("\r\n") == 2  # header and the one failure


async def test_the_log_shows_the_last_seven_days_unless_asked(console: Console, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    _, text = await console.get("/admin/log")
    since = re.search(r'id="f-since" name="since" value="([^"]+)"', text)[1]
    assert since.endswith("Z")
    _, text = await console.get("/admin/log?since=")
    assert 'id="f-since" name="since" value=""' in text
    response, text = await console.get("/admin/log?since=yesterday")
    assert response.status == 400
    assert "RFC 3339" in text


async def test_a_settings_change_is_an_event_of_the_admins_token(console: Console, client, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN, owner="root@example.com")).token)
    _, text = await console.get("/admin/settings")
    assert 'id="s-reactivation_cooldown_days" name="reactivation_cooldown_days" type="number" min="0" value="180"' in text
    response, _ = await console.post("/admin/settings", {"profile": "bynder", "default_profile": "default",
                                                         "reactivation_cooldown_days": "30",
                                                         "patch_response": "no_content", "unknown_members": "reject",
                                                         "group_patch_response": "no_content"})
    assert (response.status, response.headers["Location"]) == (303, "/admin/settings?saved=1")
    rows = await client.app[POOL].fetch(
        "SELECT data, metadata FROM events WHERE type = 'TenantPolicyChanged' ORDER BY position")
    assert [(r["data"]["setting"], r["data"]["new"]) for r in rows] == [
        ("reactivation_cooldown_days", 30), ("patch_response", "no_content")]
    assert {r["metadata"]["actor"]["owner"] for r in rows} == {"root@example.com"}
    response, text = await console.post("/admin/settings", {"profile": "bynder", "reactivation_cooldown_days": "-1",
                                                            "patch_response": "resource", "unknown_members": "reject",
                                                            "default_profile": ""})
    assert response.status == 400
    assert "must not be negative" in text


async def test_the_health_page_shows_the_database_and_projection_lag(console: Console, client, token_for):
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    _, text = await console.get("/admin/health")
    assert 'class="ok" id="database">Reachable' in text
    assert 'id="integrity"' in text


async def test_permanent_deletion_needs_the_user_name_typed_back_and_erases(console: Console, client, token_for):
    scim = await token_for("acme")
    _, user = await scim.post("/Users", new_user("erin@example.com"))
    await console.sign_in((await token_for("acme", scopes=ADMIN, owner="root@example.com")).token)
    _, page = await console.get(f"/admin/users/{user['id']}")
    assert 'id="erase-form"' in page and 'name="confirm_user_name"' in page

    refused, text = await console.post(f"/admin/users/{user['id']}/erase",
                                       {"confirm_user_name": "someone else", "reason": "DSR", "confirm_active": "yes"})
    assert refused.status == 400 and "exactly" in text
    assert (await scim.get(f"/Users/{user['id']}"))[0].status == 200

    response, _ = await console.post(f"/admin/users/{user['id']}/erase",
                                     {"confirm_user_name": user["userName"], "reason": "DSR 118", "ticket": "T-1",
                                      "confirm_active": "yes"})
    assert (response.status, response.headers["Location"]) == (303, f"/admin/users/{user['id']}")
    assert (await scim.get(f"/Users/{user['id']}"))[0].status == 404
    tenant = await client.app[TENANCY].tenant("acme")
    last = (await client.app[STORE].read_stream(tenant.tenant_id, f"user-{user['id']}"))[-1]
    assert (last.type, last.metadata["actor"]["owner"]) == ("UserErased", "root@example.com")


async def test_the_health_page_shows_the_latest_signed_checkpoint(console: Console, client, token_for):
    from eventstore.signed_note import SigningKey
    from projections.sealer import CheckpointPolicy, Sealer, SealerRunner

    scim = await token_for("acme")
    await scim.post("/Users", new_user("hal@example.com"))
    await console.sign_in((await token_for("acme", scopes=ADMIN)).token)
    _, before = await console.get("/admin/health")
    assert "No checkpoint has been signed for this tenant yet" in before

    key = SigningKey.generate("scim-gateway")
    await SealerRunner(client.app[STORE], Sealer(key, CheckpointPolicy(every_events=1))).catch_up()
    tenant = await client.app[TENANCY].tenant("acme")
    events = await client.app[POOL].fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", tenant.tenant_id)
    _, after = await console.get("/admin/health")
    assert f"covers this tenant's first\n{events} event(s)" in after and f"{events} event(s) sealed" in after
