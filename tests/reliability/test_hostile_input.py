"""Hostile and malformed input: always a clear 4xx with a SCIM error body, never a 500 or a hang."""

from __future__ import annotations

import io
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scim_client import Scim, entra_user

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


async def raw(scim: Scim, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    response = await scim.client.request(method, f"/scim/v2{path}", data=body,
                                         headers={**scim.headers, **(headers or {})})
    text = await response.read()
    return response.status, text


def assert_scim_error(status: int, text: bytes, expected: int = 400) -> dict:
    assert status == expected, (status, text[:300])
    body = orjson.loads(text)
    assert body["schemas"] == [ERROR] and body["status"] == str(expected)
    return body


@pytest.mark.parametrize("body", [
    b"{", b"null", b"[]", b"42", b'{"userName": }', b"\xff\xfe\xfd", b'{"userName": "\xed\xa0\x80"}',
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 2000 + b"1" + b"}" * 2000,
])
async def test_unparseable_bodies(rfc: Scim, body):
    status, text = await raw(rfc, "POST", "/Users", body)
    assert_scim_error(status, text)


@pytest.mark.parametrize("field", ["userName", "name", "emails", "active", "externalId", "phoneNumbers",
                                   "addresses", "roles", "schemas", "displayName", "title"])
@pytest.mark.parametrize("value", [123, 1.5, True, {"x": 1}, [1, 2], [[]], "x" * 10, [{"value": {"nested": 1}}]])
async def test_wrong_types_in_every_field(rfc: Scim, field, value):
    status, text = await raw(rfc, "POST", "/Users", orjson.dumps({"userName": "typed", field: value}))
    assert status in (201, 400, 409), (status, text[:200])
    if status == 400:
        assert_scim_error(status, text)


async def test_a_body_over_the_limit_is_413(rfc: Scim, settings):
    status, text = await raw(rfc, "POST", "/Users", io.BytesIO(b"{" + b" " * settings.max_body_bytes + b"}"))
    assert_scim_error(status, text, 413)


async def test_ten_thousand_patch_operations_are_refused(rfc: Scim):
    _, user = await rfc.post("/Users", {"userName": "many-ops"})
    operations = [{"op": "add", "path": "title", "value": str(i)} for i in range(10_000)]
    status, text = await raw(rfc, "PATCH", f"/Users/{user['id']}", orjson.dumps({"Operations": operations}))
    assert assert_scim_error(status, text)["scimType"] == "tooMany"


@pytest.mark.parametrize("filter_text", [
    "(" * 500 + 'userName eq "x"' + ")" * 500,
    'userName eq "' + "x" * 100_000 + '"',
    'userName eq "\\u0000"',
    "userName eq \"x\"; DROP TABLE events; --\"",
    "userName eq \"' OR '1'='1\"",
    'userName eq "☃️🧨\\ud83d"',
    " and ".join(['userName eq "x"'] * 2000),
    "not " * 100 + 'userName eq "x"',
])
async def test_pathological_filters(rfc: Scim, filter_text):
    status, text = await raw(rfc, "POST", "/Users/.search", orjson.dumps({"filter": filter_text}))
    if status == 200:
        assert orjson.loads(text)["totalResults"] == 0
    else:
        assert_scim_error(status, text)


@pytest.mark.parametrize("query", [
    "startIndex=-5", "count=-1", "startIndex=99999999999999999999999", "count=99999999999999999999",
    "startIndex=1e3", "count=" + "9" * 5000, "filter=%00", "attributes=%FF%FE", "sortBy=emails",
])
async def test_extreme_list_parameters(rfc: Scim, query):
    status, text = await raw(rfc, "GET", f"/Users?{query}")
    assert status in (200, 400), (status, text[:200])
    if status == 400:
        assert_scim_error(status, text)


async def test_invalid_utf8_in_the_path_and_query(rfc: Scim):
    status, _ = await raw(rfc, "GET", "/Users/%FF%FE")
    assert status == 404
    status, _ = await raw(rfc, "GET", "/Users?filter=userName%20eq%20%22%FF%22")
    assert status in (200, 400)


async def test_oversized_headers_are_refused_and_the_server_carries_on(rfc: Scim):
    response = await rfc.client.get("/scim/v2/Users", headers={**rfc.headers, "X-Big": "x" * 20_000})
    assert response.status in (400, 431)
    response = await rfc.client.get("/scim/v2/Users", headers=rfc.headers)
    assert response.status == 200


# Generated input ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
attribute_names = st.sampled_from(["userName", "name", "name.givenName", "emails", 'emails[type eq "work"].value',
                                   "active", "title", "roles", "externalId", "id", "meta", "groups",
                                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                                   "addresses[type eq \"work\"].streetAddress", "bogus", "emails[", ""]) | st.text(max_size=20)
operations = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Replace", "remove", "REMOVE", "copy"]) | st.text(max_size=8)},
    optional={"path": attribute_names, "value": json_values},
)
patch_bodies = st.one_of(
    st.fixed_dictionaries({"Operations": st.lists(operations, max_size=6)}),
    json_values,
)
resources = st.dictionaries(attribute_names, json_values, max_size=8).map(lambda d: {"userName": "gen", **d}) | json_values
filters = st.text(max_size=60) | st.builds(
    lambda a, op, v: f"{a} {op} {v}", attribute_names, st.sampled_from(["eq", "co", "gt", "pr", "xx", "and"]),
    st.text(max_size=15).map(lambda t: orjson.dumps(t).decode()) | st.integers().map(str))

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@FUZZ
@given(body=patch_bodies)
async def test_generated_patch_bodies_never_fail_the_server(rfc_user, body):
    scim, path = rfc_user
    status, text = await raw(scim, "PATCH", path, json.dumps(body).encode())
    assert status in (200, 400, 409), (status, text[:300])


@FUZZ
@given(body=resources)
async def test_generated_resources_never_fail_the_server(rfc: Scim, body):
    status, text = await raw(rfc, "POST", "/Users", json.dumps(body).encode())
    assert status in (201, 400, 409), (status, text[:300])


@FUZZ
@given(filter_text=filters)
async def test_generated_filters_never_fail_the_server(rfc: Scim, filter_text):
    status, text = await raw(rfc, "POST", "/Users/.search", orjson.dumps({"filter": filter_text}))
    assert status in (200, 400), (status, text[:300])


@pytest.fixture
async def rfc_user(rfc: Scim):
    _, user = await rfc.post("/Users", entra_user("fuzz@example.com", "fuzz"))
    return rfc, f"/Users/{user['id']}"
