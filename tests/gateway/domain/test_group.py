"""The group aggregate decides from a parsed command and the member facts it is handed."""

from datetime import UTC, datetime

from domain.events import MembersAdded, MembersRemoved
from domain.group import GroupState, MemberFacts, UpdateGroup, decide
from domain.policy import policy_for
from gateway.scim.group_resource import parse_group_patch, parse_group_replace

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GROUP = GroupState("g1", 4, "Staff", None, False, T0, T0)
RFC = policy_for("rfc")


def test_a_patch_is_parsed_into_the_change_it_makes_without_any_state():
    command = parse_group_patch({"Operations": [
        {"op": "Replace", "path": "members", "value": [{"value": "u1"}]},
        {"op": "add", "path": "members", "value": [{"value": "u2", "display": "Two"}]},
    ]}, "g1")
    assert command == UpdateGroup(add=("u1", "u2"), displays=(("u2", "Two"),), remove_all=True)


def test_remove_all_takes_away_every_member_the_facts_name_but_those_added():
    facts = MemberFacts(users=frozenset({"u1", "u2", "u3"}), members=frozenset({"u1", "u3"}))
    events = decide(GROUP, UpdateGroup(add=("u1", "u2"), remove_all=True), RFC, facts)
    assert events == [MembersRemoved("g1", ("u3",)), MembersAdded("g1", ("u2",), (None,))]


def test_a_put_replaces_every_member():
    command = parse_group_replace({"displayName": "Staff", "members": [{"value": "u9"}]})
    assert (command.display_name, command.add, command.remove_all) == ("Staff", ("u9",), True)
