"""A user PATCH (RFC 7644 section 3.5.2) as typed operations, and what they do to a document.

``gateway/scim/patch.py`` turns a request into these before any database work: paths resolved
against ``domain.schema``, values validated, value filters (``emails[type eq "work"]``)
compiled. ``apply`` is the only part that needs the user's state, and it is pure: it runs in
``domain.user.decide``, again on a retry, and never mutates the command or the document it
is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.errors import Reason, Rejected
from domain.identifiers import fold
from domain.json import JsonObject, JsonValue
from domain.schema import Attribute

# Value filters, compiled against the multi-valued attribute's sub-attributes ---------------


@dataclass(frozen=True, slots=True)
class Present:
    name: str  # the sub-attribute's canonical name (or the unknown name as written: never present)


@dataclass(frozen=True, slots=True)
class Compare:
    sub: Attribute
    op: str  # eq ne co sw ew gt ge lt le
    expected: JsonValue  # a boolean sub-attribute's expected value is a bool already


@dataclass(frozen=True, slots=True)
class AllOf:
    left: ElementFilter
    right: ElementFilter


@dataclass(frozen=True, slots=True)
class AnyOf:
    left: ElementFilter
    right: ElementFilter


@dataclass(frozen=True, slots=True)
class Negated:
    inner: ElementFilter


ElementFilter = Present | Compare | AllOf | AnyOf | Negated


def matches(node: ElementFilter, element: JsonObject) -> bool:
    """Whether one element of a multi-valued attribute passes a value filter."""
    match node:
        case AllOf(left=left, right=right):
            return matches(left, element) and matches(right, element)
        case AnyOf(left=left, right=right):
            return matches(left, element) or matches(right, element)
        case Negated(inner=inner):
            return not matches(inner, element)
        case Present(name=name):
            return element.get(name) not in (None, "", [])
        case Compare(sub=sub, op=op, expected=expected):
            return _compare(sub, element.get(sub.name), op, expected)
    return False


def _compare(sub: Attribute, value: JsonValue, op: str, expected: JsonValue) -> bool:
    if op == "eq" and expected is None:
        return value is None
    if op == "ne" and expected is None:
        return value is not None
    if value is None:
        return op == "ne"
    if isinstance(value, str) and isinstance(expected, str):
        if not sub.case_exact:
            value, expected = fold(value), fold(expected)
        return {
            "eq": value == expected, "ne": value != expected, "co": expected in value,
            "sw": value.startswith(expected), "ew": value.endswith(expected),
            "gt": value > expected, "ge": value >= expected, "lt": value < expected,
            "le": value <= expected,
        }[op]
    if op == "ne":
        return value != expected
    return op == "eq" and value == expected  # ordering of non-strings is refused by the parser


# Operations ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttributeOperation:
    """add, replace or remove on one attribute, optionally one sub-attribute of it, optionally
    only the elements a value filter selects. ``value`` is validated already: against the
    sub-attribute when there is one, else against the attribute (a filtered operation without a
    sub-attribute holds the one replacement element; a remove holds the elements to drop, or
    None to drop the whole attribute)."""

    op: str
    attribute: Attribute
    extension: str | None  # the extension URN holding the attribute; None for the core schema
    value: JsonValue = None
    sub: Attribute | None = None
    filter: ElementFilter | None = None
    # The element a filter of ``eq`` tests implies, for a filtered add/replace that matches none.
    seed: JsonObject | None = None
    label: str = ""  # "operation 2 (replace emails[type eq "work"].value)", for refusals


@dataclass(frozen=True, slots=True)
class RemoveExtension:
    """A whole extension removed (or cleared before a replace of it)."""

    extension: str


@dataclass(frozen=True, slots=True)
class AssignActive:
    value: bool | None  # None: ``active`` removed (whether that is allowed is the policy's call)


PatchOperation = AttributeOperation | RemoveExtension | AssignActive


def apply(document: JsonObject, operations: Sequence[PatchOperation]) -> JsonObject:
    """``document`` (the attributes, with ``active`` when it is assigned) after ``operations``.

    Copies on write: nothing reachable from ``document`` or the operations is changed.
    """
    result = dict(document)
    for operation in operations:
        match operation:
            case AssignActive(value=None):
                result.pop("active", None)
            case AssignActive(value=value):
                result["active"] = value
            case RemoveExtension(extension=extension):
                result.pop(extension, None)
            case AttributeOperation():
                _apply(result, operation)
    return result


def _apply(document: JsonObject, operation: AttributeOperation) -> None:
    extension = operation.extension
    if extension is None:
        container = document
    else:
        existing = document.get(extension)
        if not isinstance(existing, dict):
            if operation.op == "remove":
                return  # removing from an extension the user does not have
            existing = {}
        container = dict(existing)
    if operation.filter is not None:
        _apply_filtered(container, operation)
    elif operation.sub is not None:
        _apply_sub(container, operation)
    else:
        _apply_attribute(container, operation)
    if extension is not None:
        if container:
            document[extension] = container
        else:
            document.pop(extension, None)


def _apply_attribute(container: JsonObject, operation: AttributeOperation) -> None:
    attribute = operation.attribute
    name = attribute.name
    value = operation.value
    if operation.op == "remove":
        if attribute.multi_valued and value is not None:
            # Entra ID removes group members, and values of any multi-valued attribute, by listing them.
            doomed = {_identity(v) for v in value}  # type: ignore[union-attr]
            _set(container, name, [v for v in _elements(container, name) if _identity(v) not in doomed])
        else:
            container.pop(name, None)
        return
    if attribute.multi_valued and operation.op == "add":
        merged = list(_elements(container, name))
        for item in value or []:  # type: ignore[union-attr]
            if item not in merged:
                merged.append(item)
        _set(container, name, merged)
    elif attribute.type == "complex" and not attribute.multi_valued and isinstance(value, dict):
        existing = container.get(name)
        _set(container, name, {**existing, **value} if isinstance(existing, dict) else dict(value))
    else:
        _set(container, name, list(value) if isinstance(value, list) else value)


def _apply_sub(container: JsonObject, operation: AttributeOperation) -> None:
    attribute, sub = operation.attribute, operation.sub
    assert sub is not None
    current = container.get(attribute.name)
    if attribute.multi_valued:
        # "emails.value" without a filter targets every element.
        if isinstance(current, list):
            _set(container, attribute.name, [_with_sub(item, sub.name, operation) for item in current])
        return
    if operation.op == "remove":
        if isinstance(current, dict):
            _set(container, attribute.name, {k: v for k, v in current.items() if k != sub.name})
        return
    merged = dict(current) if isinstance(current, dict) else {}
    merged[sub.name] = operation.value
    _set(container, attribute.name, {k: v for k, v in merged.items() if v is not None})


def _apply_filtered(container: JsonObject, operation: AttributeOperation) -> None:
    attribute, sub, node = operation.attribute, operation.sub, operation.filter
    assert node is not None
    name = attribute.name
    elements = list(_elements(container, name))
    matched = [i for i, e in enumerate(elements) if isinstance(e, dict) and matches(node, e)]
    if operation.op == "remove":
        if sub is None:
            elements = [e for i, e in enumerate(elements) if i not in matched]
        else:
            for i in matched:
                elements[i] = _with_sub(elements[i], sub.name, operation)
        _set(container, name, elements)
        return
    if not matched:
        if operation.seed is None:
            raise Rejected(Reason.NO_TARGET, f"{operation.label}: no value of {name} matches the filter")
        # Entra ID replaces emails[type eq "work"].value even when there is no work email
        # yet: the entry is created from the filter's equality tests.
        elements.append(dict(operation.seed))
        matched = [len(elements) - 1]
    for i in matched:
        if sub is not None:
            elements[i] = {**elements[i], sub.name: operation.value}  # type: ignore[dict-item]
        elif operation.op == "add":
            elements[i] = {**elements[i], **operation.value}  # type: ignore[dict-item]
        else:
            elements[i] = dict(operation.value)  # type: ignore[arg-type]
    _set(container, name, elements)


def _with_sub(item: JsonValue, name: str, operation: AttributeOperation) -> JsonValue:
    if not isinstance(item, dict):
        return item
    if operation.op == "remove":
        return {k: v for k, v in item.items() if k != name}
    return {**item, name: operation.value}


def _elements(container: JsonObject, name: str) -> list[JsonValue]:
    current = container.get(name)
    return current if isinstance(current, list) else []


def _set(container: JsonObject, name: str, value: JsonValue) -> None:
    """Store a value as a parsed document holds it: no null sub-values, no empty elements, and
    at most one primary element (RFC 7643 section 2.4: the last one set wins)."""
    if isinstance(value, list):
        value = _single_primary([{k: v for k, v in e.items() if v is not None} if isinstance(e, dict) else e
                                 for e in value])
        value = [e for e in value if e != {}]
    if value in (None, [], {}):
        container.pop(name, None)
    else:
        container[name] = value


def _single_primary(values: list[JsonValue]) -> list[JsonValue]:
    primaries = [i for i, v in enumerate(values) if isinstance(v, dict) and v.get("primary") is True]
    for i in primaries[:-1]:
        values[i] = {**values[i], "primary": False}  # type: ignore[dict-item]
    return values


def _identity(value: JsonValue) -> JsonValue:
    if isinstance(value, dict) and "value" in value:
        return fold(str(value["value"]))
    return fold(value) if isinstance(value, str) else repr(value)
