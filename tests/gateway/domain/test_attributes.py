"""``domain.attributes.with_value``: the fold's one way of changing a user's document."""

from __future__ import annotations

import copy

from domain.attributes import with_value

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DOCUMENT = {
    "userName": "ada@example.com",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [{"value": "ada@example.com", "primary": True}],
    ENTERPRISE: {"department": "Analytics", "manager": {"value": "m-1", "displayName": "Babbage"}},
}


def test_it_sets_replaces_and_removes_values_at_any_depth():
    assert with_value(DOCUMENT, "name.givenName", "Augusta")["name"] == {"givenName": "Augusta",
                                                                          "familyName": "Lovelace"}
    assert with_value(DOCUMENT, "title", "Countess")["title"] == "Countess"
    assert with_value(DOCUMENT, f"{ENTERPRISE}:manager.value", "m-2")[ENTERPRISE]["manager"] == {
        "value": "m-2", "displayName": "Babbage"}
    assert with_value(DOCUMENT, "nickName.first", "A")["nickName"] == {"first": "A"}  # parents made
    assert "emails" not in with_value(DOCUMENT, "emails", None)


def test_removing_the_last_value_removes_its_empty_parents():
    one = with_value(DOCUMENT, f"{ENTERPRISE}:department", None)
    assert one[ENTERPRISE] == {"manager": {"value": "m-1", "displayName": "Babbage"}}
    name = with_value(with_value(DOCUMENT, "name.givenName", None), "name.familyName", None)
    assert "name" not in name
    assert with_value(DOCUMENT, "title.sub", None) == DOCUMENT  # nothing there to remove


def test_nothing_reachable_from_the_document_or_the_value_changes():
    before = copy.deepcopy(DOCUMENT)
    value = {"value": "m-3"}
    changed = with_value(DOCUMENT, f"{ENTERPRISE}:manager", value)
    changed[ENTERPRISE]["department"] = "elsewhere"  # the copy's own objects along the path
    with_value(DOCUMENT, "name.givenName", None)
    with_value(DOCUMENT, "name.familyName", "L.")
    assert DOCUMENT == before and value == {"value": "m-3"}
    # Off the path, values are shared rather than copied: states never change in place.
    assert with_value(DOCUMENT, "name.givenName", "A")["emails"] is DOCUMENT["emails"]
