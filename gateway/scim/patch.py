"""The PATCH engine (RFC 7644 section 3.5.2) over a user's attribute document.

Operations apply in order to a copy; any failure raises and the caller writes nothing.
Input quirks are normalised by ``compat`` first; each value is checked against the schema
by ``resource.parse_value``.
"""

from __future__ import annotations

import copy

from domain.identifiers import fold
from domain.json import JsonObject, JsonValue
from domain.schema import EXTENSIONS, GATEWAY_USER, USER_SCHEMA, Attribute, ResolvedPath, resolve
from gateway.scim import compat
from gateway.scim.errors import ScimError
from gateway.scim.filter import And, Compare, Filter, Not, Or, PatchPath, Present, ValuePath, parse_path
from gateway.scim.resource import parse_value

MAX_OPERATIONS = 1000


def apply_patch(document: JsonObject, body: JsonValue) -> JsonObject:
    if not isinstance(body, dict):
        raise ScimError.invalid_syntax("the request body must be a JSON object")
    operations = body.get("Operations", body.get("operations"))
    if not isinstance(operations, list) or not operations:
        raise ScimError.invalid_syntax("Operations must be a non-empty list")
    if len(operations) > MAX_OPERATIONS:
        raise ScimError.too_many(f"at most {MAX_OPERATIONS} operations per request")
    result = copy.deepcopy(document)
    for index, raw in enumerate(operations, start=1):
        operation = compat.operation(raw, index)
        try:
            _apply(result, operation)
        except ScimError as error:
            where = f"operation {index} ({operation.op} {operation.path or '(no path)'})"
            raise ScimError(error.status, f"{where}: {error.detail}", error.scim_type) from None
    return result


def _apply(document: JsonObject, operation: compat.Operation) -> None:
    operation = compat.bare_manager(operation)
    if operation.path is None:
        if operation.op == "remove":
            raise ScimError.no_target("remove needs a path")
        if not isinstance(operation.value, dict):
            raise ScimError.invalid_value("an operation without a path needs an object value")
        for path, value in compat.expand_pathless_value(operation.value):
            _apply(document, compat.Operation(operation.op, path, value, True))
        return
    if operation.path.lower() in compat.WRITE_ONLY_DROPPED:
        return
    if operation.op != "remove" and not operation.has_value:
        raise ScimError.invalid_value(f"{operation.op} needs a value")
    target = parse_path(operation.path)
    if target.path.full.lower() == "active" and target.filter is None:
        _apply_active(document, operation)
        return
    extension = EXTENSIONS.get(target.path.full.lower())
    if extension is not None and target.filter is None:
        _apply_extension(document, extension.id, operation)
        return
    resolved = resolve(target.path.full)
    if resolved is None:
        raise ScimError.invalid_path(f"unknown attribute {target.path.full!r}")
    if resolved.attribute.mutability == "readOnly" or resolved.schema.id == GATEWAY_USER or (
        resolved.sub_attribute is not None and resolved.sub_attribute.mutability == "readOnly"
    ):
        raise ScimError.mutability(f"{resolved.dotted} is read-only")
    container = _container(document, resolved, create=operation.op != "remove")
    if container is None:
        return  # removing from an extension the user does not have
    if target.filter is not None:
        _apply_filtered(container, resolved, target, operation)
    elif resolved.sub_attribute is not None:
        _apply_sub(container, resolved, operation)
    else:
        _apply_attribute(container, resolved, operation)
    if resolved.extension is not None and not container:
        document.pop(resolved.extension, None)


def _apply_extension(document: JsonObject, extension_id: str, operation: compat.Operation) -> None:
    """The path is an extension's URN: its value is an object of that extension's attributes."""
    if extension_id == GATEWAY_USER:
        if operation.op == "remove" or (operation.value not in (None, {}) and _has_values(operation.value)):
            raise ScimError.mutability(f"{extension_id} is read-only")
        return
    if operation.op == "remove":
        document.pop(extension_id, None)
        return
    if not isinstance(operation.value, dict):
        raise ScimError.invalid_value(f"{extension_id} needs an object value")
    if operation.op == "replace":
        document.pop(extension_id, None)
    for key, value in operation.value.items():
        if key != "schemas":
            _apply(document, compat.Operation("add" if operation.op == "add" else "replace",
                                              f"{extension_id}:{key}", value, True))


def _has_values(value: JsonValue) -> bool:
    return isinstance(value, dict) and any(v is not None for k, v in value.items() if k != "schemas")


def _apply_active(document: JsonObject, operation: compat.Operation) -> None:
    if operation.op == "remove":
        document.pop("active", None)  # whether a profile allows it is the domain's call
    else:
        document["active"] = compat.boolean(operation.value, "active")


def _container(document: JsonObject, resolved: ResolvedPath, *, create: bool) -> JsonObject | None:
    if resolved.extension is None:
        return document
    container = document.get(resolved.extension)
    if not isinstance(container, dict):
        if not create:
            return None
        container = {}
        document[resolved.extension] = container
    return container


def _apply_attribute(container: JsonObject, resolved: ResolvedPath, operation: compat.Operation) -> None:
    attribute = resolved.attribute
    name = attribute.name
    if operation.op == "remove":
        if attribute.multi_valued and operation.value is not None:
            # Entra ID removes group members by listing them in value.
            doomed = parse_value(attribute, operation.value, name) or []
            keys = {_identity(v) for v in doomed}  # type: ignore[union-attr]
            kept = [v for v in container.get(name) or [] if _identity(v) not in keys]  # type: ignore[union-attr]
            _set(container, name, kept)
        else:
            container.pop(name, None)
        return
    value = parse_value(attribute, operation.value, name)
    if attribute.multi_valued and operation.op == "add":
        merged = list(container.get(name) or [])  # type: ignore[arg-type]
        for item in value or []:  # type: ignore[union-attr]
            if item not in merged:
                merged.append(item)
        _set(container, name, _single_primary(merged))
    elif attribute.type == "complex" and not attribute.multi_valued and isinstance(value, dict):
        existing = container.get(name)
        merged_object = dict(existing) if isinstance(existing, dict) else {}
        merged_object.update(value)
        _set(container, name, merged_object)
    else:
        _set(container, name, _single_primary(value) if attribute.multi_valued else value)


def _apply_sub(container: JsonObject, resolved: ResolvedPath, operation: compat.Operation) -> None:
    attribute, sub = resolved.attribute, resolved.sub_attribute
    assert sub is not None
    current = container.get(attribute.name)
    if attribute.multi_valued:
        # "emails.value" without a filter targets every element.
        for item in current or []:  # type: ignore[union-attr]
            _set_sub(item, sub, operation, f"{attribute.name}.{sub.name}")  # type: ignore[arg-type]
        return
    if operation.op == "remove":
        if isinstance(current, dict):
            current.pop(sub.name, None)
            _set(container, attribute.name, current)
        return
    value = parse_value(sub, operation.value, f"{attribute.name}.{sub.name}")
    merged = dict(current) if isinstance(current, dict) else {}
    merged[sub.name] = value
    _set(container, attribute.name, {k: v for k, v in merged.items() if v is not None})


def _apply_filtered(
    container: JsonObject, resolved: ResolvedPath, target: PatchPath, operation: compat.Operation
) -> None:
    attribute = resolved.attribute
    if not attribute.multi_valued or resolved.sub_attribute is not None:
        raise ScimError.invalid_path(f"{attribute.name} is not multi-valued; it cannot take a filter")
    assert target.filter is not None
    elements: list[JsonObject] = list(container.get(attribute.name) or [])  # type: ignore[arg-type]
    matches = [i for i, e in enumerate(elements) if _matches(target.filter, e, attribute)]
    sub = attribute.sub(target.sub) if target.sub else None
    if target.sub and sub is None:
        raise ScimError.invalid_path(f"{attribute.name} has no sub-attribute {target.sub!r}")
    name = f"{attribute.name}.{sub.name}" if sub else attribute.name
    if operation.op == "remove":
        if sub is None:
            elements = [e for i, e in enumerate(elements) if i not in matches]
        else:
            for i in matches:
                elements[i].pop(sub.name, None)
        _set(container, attribute.name, elements)
        return
    if not matches:
        seed = _seed(target.filter)
        if seed is None:
            raise ScimError.no_target(f"no value of {attribute.name} matches the filter")
        # Entra ID replaces emails[type eq "work"].value even when there is no work email
        # yet: the entry is created from the filter's equality tests.
        elements.append(seed)
        matches = [len(elements) - 1]
    for i in matches:
        if sub is not None:
            elements[i] = {**elements[i], sub.name: parse_value(sub, operation.value, name)}
        else:
            value = parse_value(attribute, operation.value, name)
            replacement = value[0] if isinstance(value, list) and value else value
            if not isinstance(replacement, dict):
                raise ScimError.invalid_value(f"{name} must be an object")
            elements[i] = {**elements[i], **replacement} if operation.op == "add" else replacement
    _set(container, attribute.name, _single_primary([{k: v for k, v in e.items() if v is not None} for e in elements]))


def _set_sub(item: JsonObject, sub: Attribute, operation: compat.Operation, name: str) -> None:
    if operation.op == "remove":
        item.pop(sub.name, None)
    else:
        item[sub.name] = parse_value(sub, operation.value, name)


def _set(container: JsonObject, name: str, value: JsonValue) -> None:
    if value in (None, [], {}):
        container.pop(name, None)
    else:
        container[name] = value


def _identity(value: JsonValue) -> JsonValue:
    if isinstance(value, dict) and "value" in value:
        return fold(str(value["value"]))
    return fold(value) if isinstance(value, str) else repr(value)


def _single_primary(values: JsonValue) -> JsonValue:
    """RFC 7643 section 2.4: at most one value is primary; the last one set wins."""
    if not isinstance(values, list):
        return values
    primaries = [i for i, v in enumerate(values) if isinstance(v, dict) and v.get("primary") is True]
    for i in primaries[:-1]:
        values[i] = {**values[i], "primary": False}  # type: ignore[dict-item]
    return values


def _seed(node: Filter) -> JsonObject | None:
    """The element implied by a filter made only of ``eq`` tests joined by ``and``."""
    match node:
        case Compare(op="eq", path=path) if path.sub is None and path.uri is None:
            return {path.name: node.value}
        case And(left=left, right=right):
            a, b = _seed(left), _seed(right)
            return {**a, **b} if a is not None and b is not None else None
        case _:
            return None


def _element_value(element: JsonObject, attribute: Attribute, name: str) -> tuple[Attribute | None, JsonValue]:
    sub = attribute.sub(name)
    if sub is None:
        return None, None
    return sub, element.get(sub.name)


def _matches(node: Filter, element: JsonObject, attribute: Attribute) -> bool:
    """Evaluate a value filter on one element of a multi-valued attribute."""
    match node:
        case And(left=left, right=right):
            return _matches(left, element, attribute) and _matches(right, element, attribute)
        case Or(left=left, right=right):
            return _matches(left, element, attribute) or _matches(right, element, attribute)
        case Not(inner=inner):
            return not _matches(inner, element, attribute)
        case Present(path=path):
            _, value = _element_value(element, attribute, path.name)
            return value not in (None, "", [])
        case Compare(path=path, op=op, value=expected):
            sub, value = _element_value(element, attribute, path.name)
            if sub is None:
                raise ScimError.invalid_path(f"{attribute.name} has no sub-attribute {path.name!r}")
            return _compare(sub, value, op, expected)
        case ValuePath():
            raise ScimError.invalid_path("value filters cannot be nested")
    return False


def _compare(sub: Attribute, value: JsonValue, op: str, expected: JsonValue) -> bool:
    if sub.type == "boolean" and isinstance(expected, str):
        expected = compat.boolean(expected, sub.name)
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
    if op == "eq":
        return value == expected
    if op == "ne":
        return value != expected
    raise ScimError.invalid_filter(f"{op} cannot compare {sub.name} with {expected!r}")


__all__ = ["EXTENSIONS", "USER_SCHEMA", "apply_patch"]
