"""``folded_document``: every case-insensitive string folded, wherever it sits; everything else as stored."""

from projections.user_folding import folded_document

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_case_insensitive_strings_are_folded_at_any_depth_and_the_rest_kept():
    document = {
        "userName": "Ann.LEE@Example.COM",
        "externalId": "Ext-ABC",  # case-exact
        "name": {"givenName": "ÄNN", "familyName": "Straße", "unknown": "KeepMe"},
        "emails": [{"type": "Work", "value": "Ann@Example.com", "primary": True}, "Loose"],
        "x509Certificates": [{"value": "MIIC-Case"}],
        "active": True,
        "nickName": ["NotAString?"],
        ENTERPRISE: {"department": "R&D", "manager": {"value": "M-1", "displayName": "Boss"},
                     "employeeNumber": 7},
        "urn:unknown:extension": {"department": "Kept"},
        "name.givenName": "Dotted KEY",  # a key with a dot: the path it spells is folded
    }
    assert folded_document(document) == {
        "userName": "ann.lee@example.com",
        "externalId": "Ext-ABC",
        "name": {"givenName": "änn", "familyName": "strasse", "unknown": "KeepMe"},
        "emails": [{"type": "work", "value": "ann@example.com", "primary": True}, "Loose"],
        "x509Certificates": [{"value": "miic-case"}],
        "active": True,
        "nickName": ["notastring?"],  # a list at a folded path: its items are folded
        ENTERPRISE: {"department": "r&d", "manager": {"value": "m-1", "displayName": "boss"},
                     "employeeNumber": 7},
        "urn:unknown:extension": {"department": "Kept"},
        "name.givenName": "dotted key",
    }
