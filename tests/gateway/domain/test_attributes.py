"""``attributes.with_value`` copies on write: the new document has the value, the old one is untouched."""

import copy
import unicodedata

import pytest

from domain import attributes, identifiers

DOCUMENT = {"userName": "ann", "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"type": "work", "value": "ann@example.com"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}}
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("name.givenName", "Bo", {**DOCUMENT, "name": {"givenName": "Bo", "familyName": "Lee"}}),
    ("title", "CTO", {**DOCUMENT, "title": "CTO"}),
    ("addresses.region", "NL", {**DOCUMENT, "addresses": {"region": "NL"}}),
    ("emails", [{"value": "b@example.com"}], {**DOCUMENT, "emails": [{"value": "b@example.com"}]}),
    ("name.givenName", None, {**DOCUMENT, "name": {"familyName": "Lee"}}),
    (f"{ENTERPRISE}:manager.value", None, {k: v for k, v in DOCUMENT.items() if k != ENTERPRISE}),
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


def test_fold_of_ascii_is_its_lower_case_as_the_full_rule_says():
    for text in ("Ann.Smith@Example.COM", "", "A-Z_0-9 ~!", "".join(map(chr, range(128)))):
        full = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        assert identifiers.fold(text) == full == text.lower()
    assert identifiers.fold("STRASSE") == identifiers.fold("Straße") == "strasse"
