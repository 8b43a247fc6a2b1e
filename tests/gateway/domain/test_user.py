"""The user aggregate, without a database: decide yields events, evolve folds them."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import Reason, Rejected
from domain.events import (
    AttributeChanged,
    AttributeIgnored,
    UserCreated,
    UserDeactivated,
    UserDeleted,
    UserReactivated,
)
from domain.policy import policy_for
from domain.user import CREDENTIALS, CreateUser, DeleteUser, UpdateUser, UserState, decide, evolve

BYNDER = policy_for("bynder")
RFC = policy_for("rfc")
T0 = datetime(2026, 1, 1, tzinfo=UTC)

ANN = {
    "userName": "Ann@Example.com",
    "name": {"givenName": "Ann", "familyName": "Smith"},
    "emails": [{"type": "work", "value": "Ann@Example.com", "primary": True}],
    "displayName": "Ann Smith",
}


def created(policy=BYNDER, attributes=ANN, login_method="sso", at=T0) -> UserState:
    events = decide(None, CreateUser("u1", attributes, None, login_method), policy, at)
    state = None
    for event in events:
        state = evolve(state, event, at)
    assert state is not None
    return state


def apply(state, events, at=T0):
    for event in events:
        state = evolve(state, event, at)
    return state


def test_create_yields_one_user_created_with_the_tenants_default_profile():
    [event] = decide(None, CreateUser("u1", ANN, None), BYNDER, T0)
    assert isinstance(event, UserCreated)
    assert event.login_method == "sso"
    assert event.permission_profile == "default"
    assert event.active is True


def test_bynder_lowercases_user_name_and_emails():
    state = created()
    assert state.user_name == "ann@example.com"
    assert state.attributes["emails"][0]["value"] == "ann@example.com"


def test_rfc_preserves_case():
    assert created(RFC).user_name == "Ann@Example.com"


def test_bynder_create_names_every_missing_required_attribute():
    with pytest.raises(Rejected) as error:
        decide(None, CreateUser("u1", {"userName": "x@y.z"}, None), BYNDER, T0)
    assert error.value.reason is Reason.INVALID_VALUE
    for name in ("emails", "name.givenName", "name.familyName"):
        assert name in error.value.detail


def test_rfc_create_needs_only_user_name():
    [event] = decide(None, CreateUser("u1", {"userName": "bob"}, None), RFC, T0)
    assert event.user_name == "bob"
    assert event.permission_profile is None


def test_bynder_derives_user_name_from_the_work_email():
    attributes = {k: v for k, v in ANN.items() if k != "userName"}
    [event] = decide(None, CreateUser("u1", attributes, None), BYNDER, T0)
    assert event.user_name == "ann@example.com"


def test_update_yields_one_attribute_changed_per_changed_attribute():
    state = created()
    new = {**state.attributes, "name": {"givenName": "Anne", "familyName": "Jones"}}
    events = decide(state, UpdateUser(new, None, "patch"), BYNDER, T0)
    assert events == [
        AttributeChanged("u1", "name.familyName", "Smith", "Jones"),
        AttributeChanged("u1", "name.givenName", "Ann", "Anne"),
    ]


def test_bynder_ignores_attributes_outside_the_updatable_set_and_records_them():
    state = created()
    new = {**state.attributes, "displayName": "Someone Else", "title": "CEO"}
    events = decide(state, UpdateUser(new, None, "patch"), BYNDER, T0)
    assert events == [
        AttributeIgnored("u1", "displayName", "Someone Else"),
        AttributeIgnored("u1", "title", "CEO"),
    ]
    assert apply(state, events).attributes["displayName"] == "Ann Smith"


def test_rfc_applies_every_mutable_attribute():
    state = created(RFC)
    events = decide(state, UpdateUser({**state.attributes, "title": "CEO"}, None, "put"), RFC, T0)
    assert events == [AttributeChanged("u1", "title", None, "CEO")]


def test_a_no_op_update_yields_no_event():
    state = created()
    assert decide(state, UpdateUser(state.attributes, True, "patch"), BYNDER, T0) == []


def test_deactivation_and_reactivation_after_the_cooldown():
    state = created()
    state = apply(state, decide(state, UpdateUser(state.attributes, False, "patch"), BYNDER, T0))
    assert state.active is False and state.deactivated_at == T0
    later = T0 + timedelta(days=181)
    events = decide(state, UpdateUser(state.attributes, True, "patch"), BYNDER, later)
    assert events == [UserReactivated("u1")]


def test_reactivation_inside_the_cooldown_says_when_it_becomes_possible():
    state = created()
    state = apply(state, decide(state, UpdateUser(state.attributes, False, "patch"), BYNDER, T0))
    with pytest.raises(Rejected) as error:
        decide(state, UpdateUser(state.attributes, True, "patch"), BYNDER, T0 + timedelta(days=10))
    assert error.value.detail == ("this user was deactivated on 2026-01-01; it can be reactivated from "
                                  "2026-06-30T00:00:00Z (180-day cooldown, tenant setting reactivation_cooldown_days)")


def test_rfc_reactivates_at_once():
    state = created(RFC)
    state = apply(state, decide(state, UpdateUser(state.attributes, False, "patch"), RFC, T0))
    assert decide(state, UpdateUser(state.attributes, True, "patch"), RFC, T0) == [UserReactivated("u1")]


def test_delete_deactivates_then_tombstones():
    state = created()
    events = decide(state, DeleteUser(), BYNDER, T0)
    assert events == [UserDeactivated("u1", "delete"), UserDeleted("u1")]
    state = apply(state, events)
    assert state.deleted and not state.active


def test_a_deleted_user_is_not_found_for_every_command():
    state = apply(created(), decide(created(), DeleteUser(), BYNDER, T0))
    for command in (DeleteUser(), UpdateUser(state.attributes, None, "put")):
        with pytest.raises(Rejected) as error:
            decide(state, command, BYNDER, T0)
        assert error.value.reason is Reason.NOT_FOUND


def test_bynder_credential_users_can_be_updated_but_not_deactivated():
    state = created(login_method=CREDENTIALS)
    assert state.permission_profile is None
    new = {**state.attributes, "name": {"givenName": "Ann", "familyName": "Jones"}}
    assert decide(state, UpdateUser(new, None, "patch"), BYNDER, T0)
    for command in (UpdateUser(state.attributes, False, "patch"), DeleteUser()):
        with pytest.raises(Rejected) as error:
            decide(state, command, BYNDER, T0)
        assert error.value.reason is Reason.MUTABILITY


def test_required_attributes_cannot_be_removed():
    state = created()
    new = {k: v for k, v in state.attributes.items() if k != "emails"}
    with pytest.raises(Rejected):
        decide(state, UpdateUser(new, None, "patch"), BYNDER, T0)


def test_every_event_bumps_the_version():
    state = created()
    events = decide(state, DeleteUser(), BYNDER, T0)
    assert apply(state, events).version == state.version + len(events)
