"""Tenant scoping by construction: nothing of tenant B ever appears in anything tenant A gets.

The probes are generated from the route table (every route, both base paths): A's token on
B's ids, lists, filters on B's identifiers, root and per-type ``.search``, the audit and
replay routes; then A's audit exports, over HTTP and from the CLI. Every answer is searched
for B's identifiers. A may only see back what it sent itself: the ``detail`` of an error
about its own request, and the ``path`` and ``target_id`` of its own rows in the
provisioning log (issue 12, "Tenant scoping by construction").
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import orjson
import pytest
from aiohttp import web

from gateway.cli import main
from tests.scim_client import Scim

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

# Fields of A's own provisioning-log rows that echo A's own request.
_ECHO_FIELDS = ("path", "target_id")


@dataclass
class Tenant:
    """A tenant's client and every identifier of its data."""

    scim: Scim
    profile: str
    user_id: str = ""
    group_id: str = ""
    user_name: str = ""
    external_id: str = ""
    email: str = ""
    group_name: str = ""
    group_external_id: str = ""
    secrets: set[str] = field(default_factory=set)


async def _populate(scim: Scim, profile: str, tag: str) -> Tenant:
    tenant = Tenant(scim, profile, user_name=f"{tag}-secret@{tag}.example", external_id=f"ext-{tag}-secret",
                    email=f"{tag}-mail-secret@{tag}.example")
    response, user = await scim.post("/Users", {
        "schemas": [CORE_USER], "userName": tenant.user_name, "externalId": tenant.external_id,
        "displayName": f"{tag} display secret", "name": {"givenName": f"{tag}given", "familyName": f"{tag}family"},
        "emails": [{"type": "work", "primary": True, "value": tenant.email}],
    })
    assert response.status == 201, user
    tenant.user_id = user["id"]
    # A change and a refusal of its own, so its audit trail and provisioning log have rows.
    response, _ = await scim.patch(f"/Users/{tenant.user_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "name.familyName", "value": f"{tag}family2"}]})
    assert response.status == 200
    response, _ = await scim.post("/Users", {"schemas": [CORE_USER], "userName": tenant.user_name,
                                             "name": {"givenName": "x", "familyName": "y"},
                                             "emails": [{"type": "work", "value": tenant.user_name}]})
    assert response.status == 409
    tenant.secrets = {tenant.user_id, tenant.user_name, tenant.external_id, tenant.email, f"{tag} display secret",
                      f"{tag}given", f"{tag}family", f"{tag}family2"}
    if profile == "rfc":
        tenant.group_name, tenant.group_external_id = f"{tag} group secret", f"ext-{tag}-group-secret"
        response, group = await scim.post("/Groups", {
            "schemas": [CORE_GROUP], "displayName": tenant.group_name, "externalId": tenant.group_external_id,
            "members": [{"value": tenant.user_id}]})
        assert response.status == 201, group
        tenant.group_id = group["id"]
        tenant.secrets |= {tenant.group_id, tenant.group_name, tenant.group_external_id}
    return tenant


# Probes from the route table ------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    method: str
    path: str  # with the query string
    body: object = None
    # The status the probe must get; None where the route's answer does not depend on B.
    expected: int | None = None

    def sent(self) -> str:
        return self.path + (orjson.dumps(self.body).decode() if self.body is not None else "")


# A case-insensitive word, optionally after the empty segment a trailing-slash Tenant URL makes.
_CASE_INSENSITIVE = re.compile(r"\(\?P<_[a-z]+>(?:/\?)?\(\?i:([^)]*)\)\)")
_PARAMETER = re.compile(r"\(\?P<([a-z_]+)>[^)]*\)")


def template_of(route: web.AbstractRoute) -> str:
    """The route's path with parameters as ``{name}`` and case-insensitive words spelled out."""
    info = route.resource.get_info() if route.resource is not None else {}
    if "path" in info:
        return info["path"]
    pattern = _CASE_INSENSITIVE.sub(lambda m: m.group(1), info["pattern"].pattern)
    pattern = _PARAMETER.sub(lambda m: "{" + m.group(1) + "}", pattern)
    return re.sub(r"\\(.)", r"\1", pattern)


def _concrete(template: str, victim: Tenant) -> str:
    path = template.replace("{user_id}", victim.user_id).replace("{item_id}", victim.user_id)
    path = path.replace("{group_id}", victim.group_id or victim.user_id)
    assert "{" not in path and "(" not in path, f"a route parameter the matrix does not know: {template}"
    return path


def _filters(victim: Tenant, kind: str) -> list[str]:
    if kind == "Groups":
        return [f'displayName eq "{victim.group_name or victim.user_name}"',
                f'externalId eq "{victim.group_external_id or victim.external_id}"',
                f'id eq "{victim.group_id or victim.user_id}"', f'members.value eq "{victim.user_id}"',
                f'members[value eq "{victim.user_id}"]']
    return [f'userName eq "{victim.user_name}"', f'externalId eq "{victim.external_id}"',
            f'id eq "{victim.user_id}"', f'emails[type eq "work"].value eq "{victim.email}"',
            f'emails.value co "{victim.email[:10]}"', f'userName sw "{victim.user_name[:8]}"',
            f'name.givenName eq "{victim.user_name.split("-")[0]}given"']


def _kind(path: str) -> str:
    return "Groups" if "/groups" in path.lower() else "Users"


def probes_for(route: web.AbstractRoute, prober: Tenant, victim: Tenant) -> list[Probe]:
    template = template_of(route)
    path = _concrete(template, victim)
    method = "GET" if route.method == "*" else route.method
    if method == "HEAD":
        return []
    kind = _kind(path)
    by_id = "{user_id}" in template or "{group_id}" in template
    if path.startswith(("/api/2/audit/checkpoints", "/api/2/audit/proofs")):
        # Tamper evidence reads A's own tree only: B's event (any id of B's) is no leaf of A's,
        # and A has no signed checkpoint (no sealer runs in these tests).
        return {
            "/api/2/audit/checkpoints": [Probe("GET", path, expected=200)],
            "/api/2/audit/checkpoints/latest": [Probe("GET", path, expected=404)],
            "/api/2/audit/proofs/inclusion": [Probe("GET", f"{path}?event_id={victim.user_id}", expected=404)],
            "/api/2/audit/proofs/consistency": [Probe("GET", f"{path}?first=1", expected=404)],
        }[path]
    if path.startswith("/api/2/audit/"):
        if by_id:
            return [Probe("GET", path, expected=404 if not path.endswith("/timeline") else 200)]
        return [Probe("GET", f"{path}?{urlencode({'format': fmt, **extra})}", expected=200)
                for fmt in ("json", "jsonl", "csv")
                for extra in ({}, {"user": victim.user_id}, {"user": victim.user_name})]
    groups_offered = prober.profile == "rfc"
    missing = 404  # another tenant's id, or Groups where the profile offers none
    if by_id:
        if method == "GET":
            return [Probe("GET", path, expected=missing)]
        if method == "DELETE":
            return [Probe("DELETE", path, expected=missing)]
        if method == "PUT":
            body = ({"schemas": [CORE_GROUP], "displayName": "alpha renamed"} if kind == "Groups"
                    else {"schemas": [CORE_USER], "userName": "alpha-put@alpha.example",
                          "name": {"givenName": "a", "familyName": "b"},
                          "emails": [{"type": "work", "value": "alpha-put@alpha.example"}]})
            return [Probe("PUT", path, body, expected=missing)]
        if method == "POST" and path.endswith("/erase"):
            # Erasing B's user with A's admin token, confirmed: not A's to erase.
            return [Probe("POST", path, {"reason": "alpha", "confirmActive": True}, expected=missing)]
        if method == "PATCH":
            value = ({"op": "add", "path": "members", "value": [{"value": prober.user_id}]} if kind == "Groups"
                     else {"op": "replace", "path": "name.familyName", "value": "alphapatched"})
            return [Probe("PATCH", path, {"schemas": [PATCH_OP], "Operations": [value]}, expected=missing)]
    if "{item_id" in template:  # a discovery document named by B's id: none such
        return [Probe(method, path, expected=404)]
    if method == "GET" and (path.endswith("/Users") or path.endswith("/Users/") or path.endswith("/Groups")
                            or path.endswith("/Groups/")):
        expected = 200 if kind == "Users" or groups_offered else missing
        found = [Probe("GET", path, expected=expected), Probe("GET", f"{path}?count=1000", expected=expected)]
        found += [Probe("GET", f"{path}?{urlencode({'filter': f})}", expected=expected) for f in _filters(victim, kind)]
        return found
    if method == "POST" and path.lower().endswith("/.search"):
        root = not (path.lower().endswith("users/.search") or path.lower().endswith("groups/.search"))
        kinds = ["Users", "Groups"] if root else [kind]
        expected = 200 if root or kind == "Users" or groups_offered else missing
        # Without Groups, member filters name an attribute no resource type has.
        return [Probe("POST", path, {"schemas": [SEARCH], "filter": f},
                      expected=400 if root and not groups_offered and "members" in f else expected)
                for k in kinds for f in _filters(victim, k)]
    if method == "POST" and kind == "Groups" and path.endswith("/Groups"):
        # A group of A's naming B's user as a member: B's user is not A's to add.
        return [Probe("POST", path, {"schemas": [CORE_GROUP], "displayName": "alpha with b",
                                     "members": [{"value": victim.user_id}]},
                      expected=400 if groups_offered else missing)]
    if method == "POST" and path.endswith("/Users"):
        name = f"alpha-{uuid.uuid4().hex[:8]}@alpha.example"
        return [Probe("POST", path, {"schemas": [CORE_USER], "userName": name,
                                     "name": {"givenName": "a", "familyName": "b"},
                                     "emails": [{"type": "work", "value": name}]}, expected=201)]
    return [Probe(method, path)]


# Finding B in A's answers ------------------------------------------------------------

def _rows(text: str, content_type: str) -> list[dict] | None:
    """The rows of an audit export (json, jsonl or csv), or None for another answer."""
    if content_type.startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(text)))
    if content_type.startswith("application/x-ndjson") or content_type.startswith("application/jsonl"):
        return [orjson.loads(line) for line in text.splitlines() if line]
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, dict) and isinstance(body.get("items"), list) and "next" in body:
        return body["items"]
    return None


def leaks(text: str, content_type: str, sent: str, banned: set[str]) -> set[str]:
    """B's identifiers in an answer, except those A itself sent (``sent``) quoted back in an error's
    ``detail``, or in its own provisioning rows' ``path``, ``target_id`` and ``detail``."""
    rows = _rows(text, content_type)
    if rows is not None:
        found: set[str] = set()
        for row in rows:
            own_path = str(row.get("path") or "")
            detail = str(row.get("detail") or "")
            rest = orjson.dumps({k: v for k, v in row.items() if k not in (*_ECHO_FIELDS, "detail")}).decode()
            found |= {x for x in banned if x in rest or (x in detail and x not in own_path and x not in sent)}
        return found
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and "detail" in body and body.get("schemas") == [
            "urn:ietf:params:scim:api:messages:2.0:Error"]:
        detail = str(body.pop("detail"))
        rest = orjson.dumps(body).decode()
        return {x for x in banned if x in rest or (x in detail and x not in sent)}
    return {x for x in banned if x in text}


async def _ask(scim: Scim, probe: Probe) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {scim.token}"}
    if probe.body is not None:
        headers["Content-Type"] = "application/scim+json"
    response = await scim.client.request(probe.method, probe.path, headers=headers,
                                         data=orjson.dumps(probe.body) if probe.body is not None else None)
    return response.status, await response.text(), response.headers.get("Content-Type", "")


def _cli_export(capsys, database_url: str, tenant: str, kind: str, fmt: str) -> str:
    code = main(["audit", "export", "--tenant", tenant, "--kind", kind, "--format", fmt,
                 "--database-url", database_url])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


TENANT_NAMES = {"rfc": "alpha", "bynder": "acme-b"}


@pytest.fixture
async def world(token_for) -> dict[str, Tenant]:
    """Tenant A (rfc), tenant B (rfc, the victim with Groups) and tenant C (bynder)."""
    a = await _populate(await token_for("alpha", "rfc"), "rfc", "alpha")
    b = await _populate(await token_for("globex", "rfc"), "rfc", "bee")
    c = await _populate(await token_for("acme-b", "bynder"), "bynder", "cee")
    return {"alpha": a, "globex": b, "acme-b": c}


@pytest.mark.parametrize(("prober_name", "victim_name"),
                         [("alpha", "globex"), ("acme-b", "globex"), ("alpha", "acme-b")])
async def test_nothing_of_another_tenant_reaches_a_tenant_on_any_route(
        world, client, capsys, database_url, prober_name, victim_name):
    prober, victim = world[prober_name], world[victim_name]
    banned = set().union(*(t.secrets for name, t in world.items() if name != prober_name))
    # The admin console (/admin/) signs in with sessions, not bearer tokens; its own tests
    # (tests/gateway/console) cover its tenant scoping.
    routes = [r for r in client.app.router.routes()
              if r.resource is not None and not r.resource.canonical.startswith("/admin")]
    assert len(routes) > 40  # the whole table, both base paths
    found: list[str] = []
    asked = 0
    sent = ""  # everything A sent: its refusals may quote it back
    for route in routes:
        for probe in probes_for(route, prober, victim):
            status, text, content_type = await _ask(prober.scim, probe)
            asked += 1
            sent += probe.sent()
            assert status < 500, (probe, text)
            if probe.expected is not None and status != probe.expected:
                found.append(f"{probe.method} {probe.path}: {status}, expected {probe.expected}: {text[:200]}")
            for leak in leaks(text, content_type, probe.sent(), banned):
                found.append(f"{probe.method} {probe.path} shows {leak!r}")
    # Afterwards, A's whole audit trail and provisioning log, over HTTP and from the CLI.
    for kind in ("events", "provisioning"):
        for fmt in ("json", "jsonl", "csv"):
            probe = Probe("GET", f"/api/2/audit/{kind}?{urlencode({'format': fmt, 'limit': 10000})}")
            status, text, content_type = await _ask(prober.scim, probe)
            assert status == 200, text
            found += [f"{probe.path} shows {leak!r}" for leak in leaks(text, content_type, sent, banned)]

        for fmt in ("jsonl", "csv"):
            text = await asyncio.to_thread(_cli_export, capsys, database_url, prober_name, kind, fmt)
            content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
            found += [f"CLI export {kind} {fmt} shows {leak!r}" for leak in leaks(text, content_type, sent, banned)]
    assert asked > 150
    assert found == [], "\n".join(found)


async def test_a_put_to_another_tenants_user_leaves_none_of_its_identity_in_the_provisioning_log(token_for):
    """Issue 12, item 1, exactly as reported."""
    alpha = await token_for("alpha", "rfc")
    globex = await token_for("globex", "rfc")
    response, bee = await globex.post("/Users", {"schemas": [CORE_USER], "userName": "bee-secret@globex.example",
                                                 "externalId": "ext-b-secret"})
    assert response.status == 201

    response, body = await alpha.put(f"/Users/{bee['id']}", {"schemas": [CORE_USER],
                                                             "userName": "bee-secret@globex.example",
                                                             "externalId": "ext-b-secret"})
    assert response.status == 404, body

    exported = await alpha.client.get("/api/2/audit/provisioning", params={"format": "jsonl"},
                                      headers={"Authorization": f"Bearer {alpha.token}"})
    assert exported.status == 200
    rows = [orjson.loads(line) for line in (await exported.text()).splitlines()]
    refused = [r for r in rows if r["method"] == "PUT"]
    assert len(refused) == 1 and refused[0]["status"] == 404 and refused[0]["result"] == "failure"
    assert refused[0]["target_user_name"] is None and refused[0]["target_external_id"] is None
    text = await exported.text()
    assert "bee-secret@globex.example" not in text and "ext-b-secret" not in text


def test_the_matrix_knows_every_route_parameter():
    """A new route with a parameter the matrix cannot fill fails here, not silently."""
    from gateway.http import routes

    app = web.Application()
    routes.add_routes(app)
    victim = Tenant(Scim(None, ""), "rfc", user_id="u", group_id="g")  # type: ignore[arg-type]
    for route in app.router.routes():
        if not template_of(route).startswith("/admin"):
            _concrete(template_of(route), victim)


async def test_another_tenants_user_name_is_free_in_this_tenant(token_for):
    """A 409 would tell A that B has that userName: uniqueness is per tenant."""
    alpha = await token_for("alpha", "rfc")
    globex = await token_for("globex", "rfc")
    taken = {"schemas": [CORE_USER], "userName": "bee-secret@globex.example", "externalId": "ext-b-secret"}
    assert (await globex.post("/Users", taken))[0].status == 201
    response, body = await alpha.post("/Users", taken)
    assert response.status == 201, body
    response, listed = await alpha.get('/Users?filter=userName eq "bee-secret@globex.example"')
    assert listed["totalResults"] == 1 and listed["Resources"][0]["id"] == body["id"]
