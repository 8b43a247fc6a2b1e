"""A PATCH body becomes a command before any database work: typed operations on resolved
paths with validated values. Parsing needs no state; applying needs nothing else."""

from datetime import UTC, datetime

import pytest

from domain import patch as ops
from domain.events import AttributeChanged, AttributeIgnored, UserDeactivated
from domain.policy import policy_for
from domain.schema import ENTERPRISE_USER, USER_SCHEMA
from domain.user import PatchUser, UserState, decide
from gateway.scim.errors import ScimError
from gateway.scim.patch import parse_patch

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EMAILS = USER_SCHEMA.attribute("emails")


def body(*operations):
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}


def user(**attributes) -> UserState:
    document = {"userName": "ann@example.com", "name": {"givenName": "Ann", "familyName": "Smith"},
                "emails": [{"type": "work", "value": "ann@example.com", "primary": True}], **attributes}
    return UserState("u1", 3, document, True, False, "sso", "default", T0, T0)


def test_a_replace_names_the_resolved_attribute_and_the_validated_value():
    command = parse_patch(body({"op": "Replace", "path": "NAME.givenname", "value": "Anne"}))
    [operation] = command.operations
    assert isinstance(operation, ops.AttributeOperation)
    assert (operation.op, operation.attribute.name, operation.sub.name, operation.value) == (
        "replace", "name", "givenName", "Anne")
    assert operation.extension is None


def test_active_as_a_string_becomes_a_boolean_assignment():
    assert parse_patch(body({"op": "replace", "path": "active", "value": "False"})).operations == (
        ops.AssignActive(False),)


def test_a_value_filter_is_compiled_with_its_seed_and_the_filter_value_typed():
    [operation] = parse_patch(body({"op": "replace", "path": 'emails[type eq "Work"].value',
                                    "value": "new@example.com"})).operations
    assert operation.filter == ops.Compare(EMAILS.sub("type"), "eq", "Work")
    assert operation.seed == {"type": "Work"}
    assert operation.value == "new@example.com"


def test_a_pathless_entra_value_becomes_one_operation_per_key():
    command = parse_patch(body({"op": "Replace", "value": {
        "name.familyName": "Jones", f"{ENTERPRISE_USER}:department": "Sales", "active": "True"}}))
    kinds = [(type(o).__name__, getattr(o, "extension", None)) for o in command.operations]
    assert kinds == [("AttributeOperation", None), ("AttributeOperation", ENTERPRISE_USER), ("AssignActive", None)]


@pytest.mark.parametrize(("operation", "scim_type"), [
    ({"op": "replace", "path": "userName", "value": 5}, "invalidValue"),
    ({"op": "replace", "path": 'emails[nope eq "x"].value', "value": "a@b.c"}, "invalidPath"),
    ({"op": "replace", "path": 'emails[primary gt true].value', "value": "a@b.c"}, "invalidFilter"),
    ({"op": "replace", "path": 'emails[type eq 5].value', "value": "a@b.c"}, "invalidValue"),
    ({"op": "add", "path": "meta.created", "value": "x"}, "mutability"),
])
def test_what_the_schema_refuses_is_refused_while_parsing(operation, scim_type):
    with pytest.raises(ScimError) as error:
        parse_patch(body(operation))
    assert (error.value.status, error.value.scim_type) == (400, scim_type)
    assert error.value.detail.startswith("operation 1 (")


def test_decide_turns_the_command_into_one_event_per_changed_attribute():
    command = parse_patch(body({"op": "replace", "path": "name.givenName", "value": "Anne"},
                               {"op": "replace", "path": "title", "value": "CEO"},
                               {"op": "replace", "path": "active", "value": False}))
    events = decide(user(), command, policy_for("bynder"), T0)
    assert events == [AttributeChanged("u1", "name.givenName", "Ann", "Anne"),
                      AttributeIgnored("u1", "title", "CEO"), UserDeactivated("u1", "patch")]


def test_a_filter_that_selects_nothing_and_implies_nothing_is_no_target():
    command = parse_patch(body({"op": "replace", "path": 'emails[type ne "work"].value', "value": "x@y.z"}))
    with pytest.raises(Exception) as refused:
        decide(user(), command, policy_for("rfc"), T0)
    error = ScimError.from_rejected(refused.value)
    assert (error.status, error.scim_type) == (400, "noTarget")
    assert error.detail.startswith("operation 1 (replace emails")


def test_applying_twice_gives_the_same_result_and_changes_neither_input():
    command = parse_patch(body({"op": "add", "path": "emails", "value": [{"value": "b@x.y", "primary": True}]}))
    state = user()
    before = [dict(e) for e in state.attributes["emails"]]
    first = decide(state, command, policy_for("rfc"), T0)
    assert decide(state, command, policy_for("rfc"), T0) == first  # a retry decides the same
    assert state.attributes["emails"] == before
    [changed] = first
    assert changed.new == [{"type": "work", "value": "ann@example.com", "primary": False},
                           {"value": "b@x.y", "primary": True}]


def test_the_command_is_plain_data():
    command = parse_patch(body({"op": "remove", "path": "name.givenName"}))
    assert isinstance(command, PatchUser) and command == parse_patch(body({"op": "remove", "path": "name.givenName"}))
