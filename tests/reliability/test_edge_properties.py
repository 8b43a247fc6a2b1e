"""Issue 12: values at the edges of what SQL holds, over every route of the route table.

Hypothesis draws a route (from the application's own router, so a new route is covered
without editing this file), fills its ids, query parameters (filters, times, cursors,
positions, paging) and body (resources, PATCH operations, SearchRequests) from values at
the edges: overflowing numbers, times pushed out of range by their offset, integers past
``bigint``, NUL, 20 kB strings, non-ASCII letters that fold differently. It asserts: never a
5xx, a SCIM error body (``schemas`` and ``status``) on every 4xx, and the server healthy
afterwards. Bounded in examples so the file runs in well under a minute.

Deliberate exception: long values go in bodies, not URLs; a request line over 8,190 bytes
is refused by aiohttp's HTTP parser (a plain 400) before the application sees it.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import orjson
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.http.keys import POOL
from gateway.settings import Settings
from tests.conftest import _tenant_token
from tests.scim_client import Scim, entra_user

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

NUMBERS = ["1e999999", "-1e400", "1e400", "1e999", "9223372036854775808", "-9223372036854775809",
           "100000000000000000000", "0", "-0", "1.7976931348623157e308", "4.9e-324"]
TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999Z",
         "0001-01-01T00:00:00Z", "2026-11-29T13:11:37.154Z", "2026-11-29T13:11:37.154321+05:30",
         "2026-11-29", "2011-W01-1", "not a time"]
TEXTS = ["\x00", "a\x00b", "İSTANBUL-x@X.EXAMPLE", "Straße", "ΟΔΟΣ", "\uff21\uff22\uff23", "", " ", "%",
         "'; DROP TABLE events; --", "☃", "x" * 300]
LONG = ["x" * 20_000, "ß" * 200]  # the second is under the cap as sent, over it once folded
SHORT_EDGES = NUMBERS + TIMES + TEXTS  # fit in a URL
EDGES = SHORT_EDGES + LONG

FILTER_ATTRIBUTES = ["userName", "externalId", "active", "meta.created", "meta.lastModified", "title",
                     "name.familyName", "emails.value", 'emails[type eq "work"].value', "displayName",
                     f"{ENTERPRISE}:employeeNumber", "members.value", "id", "emails", "bogus"]


def _literal(value: str) -> st.SearchStrategy[str]:
    return st.sampled_from([value, orjson.dumps(value).decode()])


short_values = st.sampled_from(SHORT_EDGES)
values = st.sampled_from(EDGES)
filters = st.one_of(
    st.builds(lambda a, op, v: f"{a} {op} {v}", st.sampled_from(FILTER_ATTRIBUTES),
              st.sampled_from(["eq", "ne", "gt", "le", "co", "sw", "ew", "pr"]), short_values.flatmap(_literal)),
    st.builds(lambda v: f"emails[value eq {v}]", short_values.flatmap(_literal)),
    short_values,
)
json_values = st.one_of(values, st.sampled_from([1e308, -1e308, 2**63, -(2**63) - 1, 10**20, True, None]),
                        st.lists(values, max_size=2), st.fixed_dictionaries({"value": values}))
patch_paths = st.one_of(
    st.sampled_from(["userName", "externalId", "displayName", "title", "active", "emails", "members",
                     "display\x00Name", f"{ENTERPRISE}:employeeNumber", "name.familyName"]),
    st.builds(lambda v: f"emails[value eq {v}].value", short_values.flatmap(_literal)),
    st.builds(lambda v: f"members[value eq {v}]", short_values.flatmap(_literal)),
)
operations = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "replace", "remove", "Replace"])},
    optional={"path": patch_paths, "value": json_values},
)
resources = st.fixed_dictionaries({}, optional={
    "userName": values, "externalId": values, "displayName": values, "title": values,
    "emails": st.lists(st.fixed_dictionaries({"value": values, "type": st.sampled_from(["work", "home"])}),
                       max_size=2),
    "members": st.lists(st.fixed_dictionaries({"value": values}), max_size=2),
    ENTERPRISE: st.fixed_dictionaries({"employeeNumber": values}),
    "active": json_values,
})
bodies = st.one_of(
    st.builds(lambda ops: {"Operations": ops}, st.lists(operations, min_size=1, max_size=3)),
    resources,
    st.fixed_dictionaries({"filter": filters}, optional={"startIndex": json_values, "count": json_values}),
)
QUERY_KEYS = ["filter", "since", "until", "at", "position", "cursor", "limit", "user", "actor", "action",
              "result", "format", "startIndex", "count", "sortBy", "attributes", "excludedAttributes"]


def _cursor(position: str) -> str:
    return base64.urlsafe_b64encode(f"v1:events:{uuid.uuid4()}:{position}".encode()).decode().rstrip("=")


query_values = st.one_of(short_values, filters, st.sampled_from(NUMBERS).map(_cursor))
queries = st.dictionaries(st.sampled_from(QUERY_KEYS), query_values, max_size=4)


@dataclass(frozen=True)
class Route:
    method: str
    template: str


def route_table(app) -> list[Route]:
    """Every (method, path template) of the API, HEAD aside. The admin console's HTML pages
    answer in HTML, not SCIM errors; tests/gateway/console covers their refusals."""
    found = set()
    for route in app.router.routes():
        if route.resource.canonical.startswith("/admin"):
            continue
        methods = ["GET"] if route.method == "*" else [route.method]  # discovery: 405 for the rest
        for method in methods:
            if method != "HEAD":
                found.add(Route(method, route.resource.canonical))
    return sorted(found, key=lambda r: (r.template, r.method))


def fill(template: str, ident: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("_"):
            return "." + name[1:] if name == "_search" else name[1:]  # case-insensitive segments
        return quote(ident, safe="")
    return re.sub(r"\{([^}:]+)[^}]*\}", replace, template)


@pytest.fixture
async def edge_client(database_url, aiohttp_client) -> tuple[TestClient, Scim, list[str]]:
    settings_ = Settings(pool_min_size=1, pool_max_size=4, access_log=False, background_projector=False,
                         rate_limit_per_second=0)
    client = await aiohttp_client(create_app(settings_, database_url))
    scim = Scim(client, await _tenant_token(client, "edges", "rfc", scopes=("admin",)))
    _, user = await scim.post("/Users", entra_user("edge.user@example.com", "edge-user"))
    _, group = await scim.post("/Groups", {"displayName": "Edge group", "members": [{"value": user["id"]}]})
    return client, scim, [user["id"], group["id"]]


@settings(max_examples=300, phases=[Phase.explicit, Phase.generate], deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_every_route_survives_edge_values(edge_client, data):
    client, scim, ids = edge_client
    routes = route_table(client.app)
    route = data.draw(st.sampled_from(routes), label="route")
    ident = data.draw(st.one_of(st.sampled_from(ids), short_values), label="id")
    query = data.draw(queries, label="query")
    body = data.draw(bodies, label="body") if route.method in ("POST", "PUT", "PATCH") else None
    response = await client.request(
        route.method, fill(route.template, ident), params=query,
        data=None if body is None else json.dumps(body).encode(),  # any size of integer
        headers=scim.headers)
    raw = await response.read()
    event(f"status {response.status}")  # shown by --hypothesis-show-statistics
    assert response.status < 500, (route, ident, query, body, raw[:300])
    if response.status >= 400:
        error = orjson.loads(raw)
        assert error["schemas"] == [ERROR] and error["status"] == str(response.status), (route, raw[:300])


async def test_the_server_is_healthy_after_the_edges(edge_client):
    """Runs the property above once more in miniature, then probes health and a normal write."""
    client, scim, _ = edge_client
    for template in {r.template for r in route_table(client.app)}:
        for ident in ("\x00", "1e999", "9999-12-31T23:59:59-14:00"):
            response = await client.get(fill(template, ident), params={"filter": "userName eq 1e999",
                                                                          "since": "0001-01-01T00:00:00+14:00"},
                                         headers=scim.headers)
            assert response.status < 500, template
    for probe in ("/healthz", "/readyz"):
        assert (await client.get(probe)).status == 200
    response, user = await scim.post("/Users", {"userName": "after-the-edges"})
    assert response.status == 201
    assert await client.app[POOL].fetchval("SELECT count(*) FROM users_view WHERE id = $1::uuid", user["id"]) == 1
