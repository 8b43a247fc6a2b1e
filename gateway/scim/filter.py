"""The SCIM filter grammar (RFC 7644 section 3.4.2.2) and PATCH paths (section 3.5.2).

One recursive-descent parser, precedence ``not`` > ``and`` > ``or``. Two lenient
readings, both for real clients: an unquoted word is a string value (Microsoft's test
collection sends ``userName eq Ryan3``), and a value path may be followed by a
sub-attribute comparison (Entra ID sends ``emails[type eq "work"].value eq "a@b.c"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from gateway.scim import bounds
from gateway.scim.errors import ScimError

Literal = str | bool | int | float | None

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
MAX_FILTER_LENGTH = 8192
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``[URI:]name[.sub]`` as written; resolved against the schema by the compiler."""

    uri: str | None
    name: str
    sub: str | None = None

    @property
    def full(self) -> str:
        head = f"{self.uri}:{self.name}" if self.uri else self.name
        return f"{head}.{self.sub}" if self.sub else head


@dataclass(frozen=True, slots=True)
class Compare:
    path: AttrPath
    op: str
    value: Literal


@dataclass(frozen=True, slots=True)
class Present:
    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Not:
    inner: Filter


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``attr[filter]``, optionally followed by a test on one sub-attribute of a match."""

    path: AttrPath
    filter: Filter
    then: Compare | Present | None = None


Filter = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True, slots=True)
class PatchPath:
    """``attrPath`` or ``valuePath[.subAttr]``."""

    path: AttrPath
    filter: Filter | None = None
    sub: str | None = None


# Tokens ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")
  | (?P<number>-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w:.]))
  | (?P<punct>[()\[\]])
  | (?P<word>[A-Za-z$_][\w$:.\-]*|[^\s()\[\]"]+)
    """,
    re.VERBOSE,
)

_BARE_VALUE = re.compile(r'[^\s()\[\]"]+')
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_URN_PATH = re.compile(r"^(?P<uri>urn:[\w.:\-]+):(?P<name>[A-Za-z$][\w$\-]*)(?:\.(?P<sub>[A-Za-z$][\w$\-]*))?$", re.I)
_PLAIN_PATH = re.compile(r"^(?P<name>[A-Za-z$][\w$\-]*)(?:\.(?P<sub>[A-Za-z$][\w$\-]*))?$")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ScimError.invalid_filter(f"unexpected character at offset {position}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    return tokens


def parse_attr_path(text: str) -> AttrPath:
    match = _URN_PATH.match(text) or _PLAIN_PATH.match(text)
    if match is None:
        raise ScimError.invalid_filter(f"{text!r} is not an attribute path")
    groups = match.groupdict()
    return AttrPath(groups.get("uri"), groups["name"], groups.get("sub"))


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_FILTER_LENGTH:
            raise ScimError.invalid_filter(f"filter is longer than {MAX_FILTER_LENGTH} characters")
        if "\x00" in text:
            raise ScimError.invalid_filter("filter contains a NUL character")
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    # Token access

    def peek(self, offset: int = 0) -> _Token | None:
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise ScimError.invalid_filter("filter ends unexpectedly")
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise ScimError.invalid_filter(f"expected {text!r} at offset {token.at}, found {token.text!r}")

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() in words

    def done(self) -> None:
        token = self.peek()
        if token is not None:
            raise ScimError.invalid_filter(f"unexpected {token.text!r} at offset {token.at}")

    # Grammar

    def filter(self) -> Filter:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ScimError.invalid_filter(f"filter is nested deeper than {MAX_DEPTH} levels")
        node = self.conjunction()
        while self.at_keyword("or"):
            self.take()
            node = Or(node, self.conjunction())
        self.depth -= 1
        return node

    def conjunction(self) -> Filter:
        node = self.unary()
        while self.at_keyword("and"):
            self.take()
            node = And(node, self.unary())
        return node

    def unary(self) -> Filter:
        token = self.peek()
        if token is None:
            raise ScimError.invalid_filter("filter ends unexpectedly")
        if self.at_keyword("not") and (nxt := self.peek(1)) is not None and nxt.text == "(":
            self.take()
            return Not(self.group())
        if token.text == "(":
            return self.group()
        return self.attribute_expression()

    def group(self) -> Filter:
        self.expect("(")
        inner = self.filter()
        self.expect(")")
        return inner

    def attribute_expression(self) -> Filter:
        token = self.take()
        if token.kind != "word":
            raise ScimError.invalid_filter(f"expected an attribute at offset {token.at}, found {token.text!r}")
        path = parse_attr_path(token.text)
        nxt = self.peek()
        if nxt is not None and nxt.text == "[":
            return self.value_path(path)
        return self.comparison(path)

    def value_path(self, path: AttrPath) -> ValuePath:
        if path.sub is not None:
            raise ScimError.invalid_filter(f"{path.full!r} cannot take a value filter")
        self.expect("[")
        inner = self.filter()
        self.expect("]")
        nxt = self.peek()
        # Entra ID: emails[type eq "work"].value eq "x" (the ".value" arrives as its own word).
        closing = self.tokens[self.index - 1]
        if nxt is not None and nxt.kind == "word" and nxt.text.startswith(".") and nxt.at == closing.at + 1:
            self.take()
            sub = parse_attr_path(nxt.text[1:])
            then = self.comparison(sub)
            assert isinstance(then, Compare | Present)
            return ValuePath(path, inner, then)
        return ValuePath(path, inner)

    def comparison(self, path: AttrPath) -> Compare | Present:
        operator = self.take()
        op = operator.text.lower()
        if op == "pr":
            return Present(path)
        if op not in COMPARE_OPS:
            raise ScimError.invalid_filter(f"unknown operator {operator.text!r} at offset {operator.at}")
        return Compare(path, op, self.literal())

    def literal(self) -> Literal:
        token = self.take()
        if token.kind == "string":
            try:
                return orjson.loads(token.text)
            except orjson.JSONDecodeError:  # e.g. a lone surrogate escape
                raise ScimError.invalid_filter(f"invalid string at offset {token.at}") from None
        if token.kind not in ("number", "word"):
            raise ScimError.invalid_filter(f"expected a value at offset {token.at}, found {token.text!r}")
        # An unquoted value runs to the next space or bracket: Microsoft's collection sends
        # dates like 2015-10-10T14:38:21.8617979-07:00 this way.
        raw = _BARE_VALUE.match(self.text, token.at)
        assert raw is not None
        end = raw.end()
        while (nxt := self.peek()) is not None and nxt.at < end:
            self.take()
        text = raw.group()
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered == "null":
            return None
        if _NUMBER.fullmatch(text):
            return _number(text, token.at)
        return text


def _number(text: str, at: int) -> int | float:
    # Python reads any number; SQL and orjson do not: bound it here (1e999 is not infinity).
    where = f"offset {at}"
    if text.lstrip("-").isdigit():
        return bounds.filter_number(int(text), where)
    return bounds.filter_number(float(text), where)


def parse_filter(text: str) -> Filter:
    parser = _Parser(text)
    if not parser.tokens:
        raise ScimError.invalid_filter("filter is empty")
    node = parser.filter()
    parser.done()
    return node


def parse_path(text: str) -> PatchPath:
    """A PATCH ``path``: ``attr``, ``attr.sub``, ``urn:...:attr``, ``attr[filter]``, ``attr[filter].sub``."""
    try:
        bracket = text.find("[")
        if bracket == -1:
            return PatchPath(parse_attr_path(text.strip()))
        close = text.rfind("]")
        if close < bracket:
            raise ScimError.invalid_filter("unbalanced '['")
        path = parse_attr_path(text[:bracket].strip())
        parser = _Parser(text[bracket + 1:close])
        inner = parser.filter()
        parser.done()
        rest = text[close + 1:].strip()
        sub = None
        if rest:
            if not rest.startswith(".") or _PLAIN_PATH.match(rest[1:]) is None or "." in rest[1:]:
                raise ScimError.invalid_filter(f"cannot read {rest!r} after the value filter")
            sub = rest[1:]
        return PatchPath(path, inner, sub)
    except ScimError as error:
        raise ScimError.invalid_path(f"invalid path {text!r}: {error.detail}") from None
