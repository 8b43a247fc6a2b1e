"""``attributes.with_value`` copies on write: the new document has the value, the old one is
untouched, and only the objects along the path are new."""

import copy

import pytest

from domain import attributes

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DOCUMENT = {"userName": "ann", "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"type": "work", "value": "ann@example.com"}],
            ENTERPRISE: {"department": "Analytics", "manager": {"value": "m1"}}}


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("name.givenName", "Bo", {**DOCUMENT, "name": {"givenName": "Bo", "familyName": "Lee"}}),
    ("title", "CTO", {**DOCUMENT, "title": "CTO"}),
    ("addresses.region", "NL", {**DOCUMENT, "addresses": {"region": "NL"}}),
    ("emails", [{"value": "b@example.com"}], {**DOCUMENT, "emails": [{"value": "b@example.com"}]}),
    (f"{ENTERPRISE}:manager.value", "m2", {**DOCUMENT, ENTERPRISE: {"department": "Analytics",
                                                                     "manager": {"value": "m2"}}}),
    ("name.givenName", None, {**DOCUMENT, "name": {"familyName": "Lee"}}),
    (f"{ENTERPRISE}:manager.value", None, {**DOCUMENT, ENTERPRISE: {"department": "Analytics"}}),
    ("nickName.first", None, DOCUMENT),
    ("userName", None, {k: v for k, v in DOCUMENT.items() if k != "userName"}),
])
def test_with_value_sets_or_removes_and_leaves_the_document_as_it_was(path, value, expected):
    before = copy.deepcopy(DOCUMENT)
    result = attributes.with_value(DOCUMENT, path, value)
    assert result == expected
    assert DOCUMENT == before
    if isinstance(value, list):
        value.append("later")  # the event's value is not shared with the state either
        assert result == expected


def test_removing_the_last_value_removes_its_empty_parents():
    name = attributes.with_value(attributes.with_value(DOCUMENT, "name.givenName", None), "name.familyName", None)
    assert "name" not in name
    both = attributes.with_value(attributes.with_value(DOCUMENT, f"{ENTERPRISE}:department", None),
                                 f"{ENTERPRISE}:manager.value", None)
    assert ENTERPRISE not in both


def test_only_the_objects_along_the_path_are_new():
    changed = attributes.with_value(DOCUMENT, f"{ENTERPRISE}:manager.value", "m2")
    changed[ENTERPRISE]["department"] = "elsewhere"  # the copy's own object, not DOCUMENT's
    assert DOCUMENT[ENTERPRISE]["department"] == "Analytics"
    # Off the path, values are shared rather than copied: a state is never changed in place.
    assert changed["emails"] is DOCUMENT["emails"] and changed["name"] is DOCUMENT["name"]
