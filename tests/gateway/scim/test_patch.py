"""The PATCH engine with the request shapes Microsoft Entra ID sends (Microsoft's SCIM tutorial
and its 'SCIM 2.0 protocol compliance' known-issues page)."""

import pytest

from domain.errors import Rejected
from domain.patch import apply
from gateway.scim.errors import ScimError
from gateway.scim.patch import parse_patch

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

DOC = {
    "userName": "ann@example.com",
    "name": {"givenName": "Ann", "familyName": "Smith"},
    "emails": [{"type": "work", "value": "ann@example.com", "primary": True}],
    "active": True,
}


def apply_patch(document, body):
    """Parse (no state needed), then apply to ``document``: what a PATCH of a user does."""
    command = parse_patch(body)
    try:
        return apply(document, command.operations)
    except Rejected as refused:
        raise ScimError.from_rejected(refused) from None


def patch(*operations, document=DOC):
    return apply_patch(document, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                  "Operations": list(operations)})


@pytest.mark.parametrize("op", ["Replace", "replace", "REPLACE"])
def test_op_in_any_case(op):
    assert patch({"op": op, "path": "displayName", "value": "Ann"})["displayName"] == "Ann"


@pytest.mark.parametrize("value", [False, "False", "false"])
def test_active_as_boolean_or_string(value):
    assert patch({"op": "Replace", "path": "active", "value": value})["active"] is False


def test_pathless_value_with_dotted_and_extension_keys():
    result = patch({"op": "Replace", "value": {
        "name.givenName": "Anne",
        f"{ENTERPRISE}:department": "Sales",
        "active": "False",
    }})
    assert result["name"] == {"givenName": "Anne", "familyName": "Smith"}
    assert result[ENTERPRISE] == {"department": "Sales"}
    assert result["active"] is False


def test_pathless_value_in_rfc_nested_shape():
    result = patch({"op": "add", "value": {"name": {"familyName": "Jones"},
                                            ENTERPRISE: {"employeeNumber": "42"}}})
    assert result["name"] == {"givenName": "Ann", "familyName": "Jones"}
    assert result[ENTERPRISE] == {"employeeNumber": "42"}


def test_filtered_replace_of_the_work_email():
    result = patch({"op": "Replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"})
    assert result["emails"] == [{"type": "work", "value": "new@example.com", "primary": True}]


def test_filtered_replace_creates_the_work_email_when_there_is_none():
    document = {**DOC, "emails": [{"type": "home", "value": "home@example.com"}]}
    result = patch({"op": "Replace", "path": 'emails[type eq "work"].value', "value": "w@example.com"},
                   document=document)
    assert {"type": "work", "value": "w@example.com"} in result["emails"]
    assert len(result["emails"]) == 2


def test_address_sub_attribute_through_a_value_filter():
    result = patch({"op": "Add", "path": 'addresses[type eq "work"].streetAddress', "value": "1 Main St"})
    assert result["addresses"] == [{"type": "work", "streetAddress": "1 Main St"}]


def test_manager_add_as_a_bare_id_and_remove():
    result = patch({"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "boss-id"})
    assert result[ENTERPRISE] == {"manager": {"value": "boss-id"}}
    removed = patch({"op": "Remove", "path": f"{ENTERPRISE}:manager"}, document=result)
    assert ENTERPRISE not in removed


def test_manager_without_its_schema_prefix_as_microsoft_documents_it():
    # learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
    result = patch({"op": "Add", "path": "manager",
                    "value": [{"$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                               "value": "26118915-6090-4610-87e4-49d8ca9f808d"}]})
    assert result[ENTERPRISE] == {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d",
                                              "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d"}}
    replaced = patch({"op": "replace", "path": "manager.value", "value": "other"}, document=result)
    assert replaced[ENTERPRISE]["manager"]["value"] == "other"
    assert ENTERPRISE not in patch({"op": "remove", "path": "Manager"}, document=result)


def test_remove_with_a_value_filter():
    document = {**DOC, "phoneNumbers": [{"type": "work", "value": "1"}, {"type": "mobile", "value": "2"}]}
    result = patch({"op": "remove", "path": 'phoneNumbers[type eq "mobile"]'}, document=document)
    assert result["phoneNumbers"] == [{"type": "work", "value": "1"}]


def test_remove_a_whole_attribute():
    assert "name" not in patch({"op": "remove", "path": "name"})


def test_replace_a_multi_valued_attribute_whole():
    result = patch({"op": "replace", "path": "emails", "value": [{"value": "x@y.z", "type": "home"}]})
    assert result["emails"] == [{"value": "x@y.z", "type": "home"}]


def test_add_to_a_multi_valued_attribute_appends():
    result = patch({"op": "add", "path": "emails", "value": [{"value": "x@y.z", "type": "home"}]})
    assert len(result["emails"]) == 2


def test_roles_as_json_inside_a_string():
    result = patch({"op": "Add", "path": "roles", "value": '[{"value": "admin", "primary": "True"}]'})
    assert result["roles"] == [{"value": "admin", "primary": True}]


def test_remove_values_listed_in_value():
    document = {**DOC, "roles": [{"value": "a"}, {"value": "b"}]}
    result = patch({"op": "Remove", "path": "roles", "value": [{"value": "a"}]}, document=document)
    assert result["roles"] == [{"value": "b"}]


def test_the_original_is_not_modified():
    patch({"op": "replace", "path": "name.givenName", "value": "X"})
    assert DOC["name"]["givenName"] == "Ann"


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "move", "path": "title", "value": "x"}, "invalidSyntax"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "replace", "path": "id", "value": "x"}, "mutability"),
        ({"op": "replace", "path": "groups", "value": []}, "mutability"),
        ({"op": "replace", "path": "nope", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "userName", "value": 5}, "invalidValue"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
        ({"op": "replace", "path": 'emails[type eq "work"', "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[type ne "work"].value', "value": "x"}, "noTarget"),
    ],
)
def test_bad_operations_name_the_operation(operation, scim_type):
    with pytest.raises(ScimError) as error:
        patch({"op": "replace", "path": "title", "value": "ok"}, operation)
    assert error.value.status == 400
    assert error.value.scim_type == scim_type
    assert error.value.detail.startswith("operation 2")


@pytest.mark.parametrize("body", [[], {}, {"Operations": []}, {"Operations": "x"}, {"Operations": [1]}])
def test_malformed_bodies(body):
    with pytest.raises(ScimError) as error:
        apply_patch(DOC, body)
    assert error.value.status == 400


def test_a_whole_extension_as_the_path():
    added = patch({"op": "add", "path": ENTERPRISE, "value": {"department": "R&D", "costCenter": "7"}})
    assert added[ENTERPRISE] == {"department": "R&D", "costCenter": "7"}
    replaced = patch({"op": "replace", "path": ENTERPRISE, "value": {"division": "X"}}, document=added)
    assert replaced[ENTERPRISE] == {"division": "X"}
    assert ENTERPRISE not in patch({"op": "remove", "path": ENTERPRISE}, document=added)


def test_removing_active_leaves_it_to_the_profile():
    assert "active" not in patch({"op": "remove", "path": "active"})
