"""SCIM filters compiled to SQL, checked against what they must select in a real users view."""

import pytest

from tests.scim_client import Scim

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

PEOPLE = [
    {"userName": "Alice", "externalId": "EXT-1", "title": "Engineer", "active": True,
     "name": {"givenName": "Alice", "familyName": "Adams"},
     "emails": [{"type": "work", "value": "alice@acme.example", "primary": True},
                {"type": "home", "value": "alice@home.example"}],
     ENTERPRISE: {"department": "R&D", "manager": {"value": "boss"}}},
    {"userName": "bob", "externalId": "ext-2", "title": "Manager", "active": False,
     "name": {"givenName": "Bob", "familyName": "Brown"},
     "emails": [{"type": "work", "value": "bob@other.example"}],
     ENTERPRISE: {"department": "Sales"}},
    {"userName": "carol_100%", "title": None, "active": True,
     "name": {"givenName": "Carol", "familyName": "O'Connor"},
     "emails": [{"type": "home", "value": "carol@acme.example"}]},
]


@pytest.fixture
async def people(rfc: Scim) -> Scim:
    for person in PEOPLE:
        response, body = await rfc.post("/Users", person)
        assert response.status == 201, body
    return rfc


async def names(scim: Scim, filter_text: str) -> list[str]:
    response, body = await scim.post("/Users/.search", {"filter": filter_text, "sortBy": "userName"})
    assert response.status == 200, body
    return [r["userName"] for r in body["Resources"]]


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ('userName eq "ALICE"', ["Alice"]),
        ('userName ne "alice"', ["bob", "carol_100%"]),
        ('userName co "LI"', ["Alice"]),
        ('userName sw "b"', ["bob"]),
        ('userName ew "100%"', ["carol_100%"]),
        ('userName co "_"', ["carol_100%"]),
        ('userName co "%"', ["carol_100%"]),
        ('userName gt "b"', ["bob", "carol_100%"]),
        ('userName le "bob"', ["Alice", "bob"]),
        ('externalId eq "EXT-1"', ["Alice"]),
        ('externalId eq "ext-1"', []),  # externalId is caseExact
        ('name.familyName eq "o\'connor"', ["carol_100%"]),
        ('name.givenName sw "a" or name.givenName sw "c"', ["Alice", "carol_100%"]),
        ("active eq true", ["Alice", "carol_100%"]),
        ('active eq "false"', ["bob"]),
        ("title pr", ["Alice", "bob"]),
        ("not (title pr)", ["carol_100%"]),
        ('title eq null', ["carol_100%"]),
        ('emails eq "ALICE@acme.example"', ["Alice"]),
        ('emails.value ew "@acme.example"', ["Alice", "carol_100%"]),
        ('emails[type eq "work" and value co "@acme"]', ["Alice"]),
        ('emails[type eq "work"].value eq "bob@other.example"', ["bob"]),
        ('emails[not (type eq "work")]', ["Alice", "carol_100%"]),
        ("emails pr", ["Alice", "bob", "carol_100%"]),
        (f'{ENTERPRISE}:department eq "r&d"', ["Alice"]),
        (f'{ENTERPRISE}:manager.value eq "boss"', ["Alice"]),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob"', ["bob"]),
        ('meta.created gt "2000-01-01T00:00:00Z"', ["Alice", "bob", "carol_100%"]),
        ('meta.lastModified lt "2000-01-01T00:00:00Z"', []),
        ('title eq "Engineer" and (active eq false or userName eq "alice")', ["Alice"]),
        ("USERNAME EQ \"bob\"", ["bob"]),
        ('userName eq "x\' OR 1=1 --"', []),
    ],
)
async def test_filter_selects_exactly(people: Scim, filter_text, expected):
    assert await names(people, filter_text) == expected


@pytest.mark.parametrize(
    "filter_text",
    ['nope eq "x"', 'name eq "x"', 'active gt true', 'meta.created eq "not a date"',
     'userName eq true', 'title co 5 and', 'emails[nope eq "x"]', 'title[value eq "x"]',
     'meta.created co "2020"', 'userName eq "\\u0000"'],
)
async def test_unsupported_filters_are_invalid_filter(people: Scim, filter_text):
    response, body = await people.post("/Users/.search", {"filter": filter_text})
    assert response.status == 400, body
    assert body["scimType"] == "invalidFilter"


async def test_unknown_attribute_is_named_in_the_error(people: Scim):
    _, body = await people.get('/Users?filter=favouriteColour eq "blue"')
    assert "favouriteColour" in body["detail"]


async def test_sorting_by_a_json_attribute(people: Scim):
    _, body = await people.get("/Users?sortBy=title&sortOrder=descending")
    assert [r["userName"] for r in body["Resources"]] == ["bob", "Alice", "carol_100%"]
