import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.scim.errors import ScimError
from gateway.scim.filter import (
    And,
    AttrPath,
    Compare,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    parse_filter,
    parse_path,
)

USER_NAME = AttrPath(None, "userName")


def test_equality_with_a_string():
    assert parse_filter('userName eq "bjensen"') == Compare(USER_NAME, "eq", "bjensen")


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
def test_every_comparison_operator_in_any_case(op):
    assert parse_filter(f'title {op.upper()} "x"') == Compare(AttrPath(None, "title"), op, "x")


def test_present():
    assert parse_filter("title pr") == Present(AttrPath(None, "title"))


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("False", False), ("null", None), ("42", 42), ("-1.5e2", -150.0),
     ('"a\\"b\\u00e9"', 'a"bé')],
)
def test_literals(text, value):
    assert parse_filter(f"x eq {text}").value == value


def test_and_binds_tighter_than_or():
    node = parse_filter('a eq "1" or b eq "2" and c eq "3"')
    assert isinstance(node, Or) and isinstance(node.right, And)


def test_parentheses_and_not():
    node = parse_filter('not (a eq "1" or b eq "2") and c pr')
    assert isinstance(node, And) and isinstance(node.left, Not) and isinstance(node.left.inner, Or)


def test_sub_attribute_and_urn_prefix():
    node = parse_filter('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"')
    assert node.path == AttrPath("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value")
    assert parse_filter('name.familyName co "O"').path == AttrPath(None, "name", "familyName")


def test_value_filter_on_a_multi_valued_attribute():
    node = parse_filter('emails[type eq "work" and value co "@acme"]')
    assert isinstance(node, ValuePath) and isinstance(node.filter, And)


def test_entra_value_path_followed_by_a_sub_attribute_comparison():
    node = parse_filter('emails[type eq "work"].value eq "ann@acme.example"')
    assert isinstance(node, ValuePath)
    assert node.then == Compare(AttrPath(None, "value"), "eq", "ann@acme.example")


def test_unquoted_values_are_read_as_strings():
    # Microsoft's SCIM test collection sends these.
    assert parse_filter("userName eq Ryan3").value == "Ryan3"


def test_date_literals_are_strings_for_the_compiler_to_type():
    assert parse_filter('meta.lastModified gt "2011-05-13T04:42:34Z"').value == "2011-05-13T04:42:34Z"


@pytest.mark.parametrize(
    "text",
    ["", "userName", 'userName eq', 'userName zz "x"', '(userName eq "x"', 'userName eq "x")',
     'emails[type eq "work"', 'a eq "x" and', '"x" eq "y"', 'a eq "unterminated', "a eq \x00",
     "(" * 100 + 'a eq "x"' + ")" * 100, 'a eq "' + "x" * 10000 + '"'],
)
def test_invalid_filters_are_invalid_filter_errors(text):
    with pytest.raises(ScimError) as error:
        parse_filter(text)
    assert error.value.status == 400 and error.value.scim_type == "invalidFilter"


def test_patch_paths():
    assert parse_path("name.givenName") == PatchPath(AttrPath(None, "name", "givenName"))
    path = parse_path('emails[type eq "work"].value')
    assert path.sub == "value" and isinstance(path.filter, Compare)
    assert parse_path('members[value eq "2819c223"]').sub is None


def test_invalid_patch_path_is_invalid_path():
    with pytest.raises(ScimError) as error:
        parse_path('emails[type eq "work"')
    assert error.value.scim_type == "invalidPath"


# Property tests ------------------------------------------------------------------------

names = st.sampled_from(["userName", "title", "name.givenName", "emails.value", "active"])
strings = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
compares = st.builds(
    lambda n, op, v: Compare(AttrPath(None, *n.split(".")) if "." in n else AttrPath(None, n), op, v),
    names, st.sampled_from(sorted(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])),
    st.one_of(strings, st.booleans(), st.none(), st.integers(-10**6, 10**6)),
)
filters = st.recursive(
    compares,
    lambda inner: st.one_of(st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)),
    max_leaves=8,
)


def render(node) -> str:
    import json

    match node:
        case Compare(path=p, op=op, value=v):
            return f"{p.full} {op} {json.dumps(v)}"
        case And(left=a, right=b):
            return f"({render(a)} and {render(b)})"
        case Or(left=a, right=b):
            return f"({render(a)} or {render(b)})"
        case Not(inner=i):
            return f"not ({render(i)})"


@given(filters)
def test_rendered_filters_parse_back_to_the_same_tree(node):
    assert parse_filter(render(node)) == node


@given(st.text(max_size=200))
def test_any_text_either_parses_or_is_an_invalid_filter(text):
    try:
        parse_filter(text)
    except ScimError as error:
        assert error.status == 400 and error.scim_type == "invalidFilter"
