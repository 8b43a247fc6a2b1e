"""The PATCH parser (RFC 7644 section 3.5.2): a request body to a ``PatchUser`` command.

Runs before any database work. Input quirks are normalised by ``compat`` first; paths are
resolved against ``domain.schema``; each value is checked by ``resource.parse_value``; value
filters are compiled to ``domain.patch`` element filters. What the operations do to a user is
``domain.patch.apply``, run by ``domain.user.decide`` against the state it is given.
"""

from __future__ import annotations

from dataclasses import replace

from domain import patch as ops
from domain.json import JsonObject, JsonValue
from domain.schema import EXTENSIONS, GATEWAY_USER, Attribute, resolve
from domain.user import PatchUser
from gateway.scim import compat
from gateway.scim.errors import ScimError
from gateway.scim.filter import And, Compare, Filter, Not, Or, PatchPath, Present, ValuePath, parse_path
from gateway.scim.resource import parse_value

MAX_OPERATIONS = 1000

# Sub-attribute types whose values are not strings: compared with eq and ne only.
_NOT_TEXT = frozenset({"boolean", "integer", "decimal"})


def operations_of(body: JsonValue) -> list[JsonValue]:
    """The ``Operations`` list of a PatchOp body, bounded; shared by Users and Groups."""
    if not isinstance(body, dict):
        raise ScimError.invalid_syntax("the request body must be a JSON object")
    operations = body.get("Operations", body.get("operations"))
    if not isinstance(operations, list) or not operations:
        raise ScimError.invalid_syntax("Operations must be a non-empty list")
    if len(operations) > MAX_OPERATIONS:
        raise ScimError.too_many(f"at most {MAX_OPERATIONS} operations per request")
    return operations


def labelled(error: ScimError, label: str) -> ScimError:
    """A refusal that names the operation it is about."""
    return ScimError(error.status, f"{label}: {error.detail}", error.scim_type)


def parse_patch(body: JsonValue) -> PatchUser:
    compiled: list[ops.PatchOperation] = []
    for index, raw in enumerate(operations_of(body), start=1):
        operation = compat.operation(raw, index)
        label = f"operation {index} ({operation.op} {operation.path or '(no path)'})"
        try:
            _compile(operation, label, compiled)
        except ScimError as error:
            raise labelled(error, label) from None
    return PatchUser(tuple(compiled))


def _compile(operation: compat.Operation, label: str, into: list[ops.PatchOperation]) -> None:
    operation = compat.bare_manager(operation)
    if operation.path is None:
        if operation.op == "remove":
            raise ScimError.no_target("remove needs a path")
        if not isinstance(operation.value, dict):
            raise ScimError.invalid_value("an operation without a path needs an object value")
        for path, value in compat.expand_pathless_value(operation.value):
            _compile(compat.Operation(operation.op, path, value, True), label, into)
        return
    if operation.path.lower() in compat.WRITE_ONLY_DROPPED:
        return
    if operation.op != "remove" and not operation.has_value:
        raise ScimError.invalid_value(f"{operation.op} needs a value")
    target = parse_path(operation.path)
    if target.path.full.lower() == "active" and target.filter is None:
        into.append(ops.AssignActive(None if operation.op == "remove" else compat.boolean(operation.value, "active")))
        return
    extension = EXTENSIONS.get(target.path.full.lower())
    if extension is not None and target.filter is None:
        _compile_extension(extension.id, operation, label, into)
        return
    resolved = resolve(target.path.full)
    if resolved is None:
        raise ScimError.invalid_path(f"unknown attribute {target.path.full!r}")
    if resolved.attribute.mutability == "readOnly" or resolved.schema.id == GATEWAY_USER or (
        resolved.sub_attribute is not None and resolved.sub_attribute.mutability == "readOnly"
    ):
        raise ScimError.mutability(f"{resolved.dotted} is read-only")
    attribute, sub = resolved.attribute, resolved.sub_attribute
    base = ops.AttributeOperation(operation.op, attribute, resolved.extension, label=label)
    if target.filter is not None:
        into.append(_filtered(base, target, operation))
    elif sub is not None:
        value = None if operation.op == "remove" else parse_value(sub, operation.value, f"{attribute.name}.{sub.name}")
        into.append(replace(base, value=value, sub=sub))
    elif operation.op == "remove":
        # Entra ID removes values of a multi-valued attribute by listing them in value.
        doomed = (parse_value(attribute, operation.value, attribute.name) or []
                  if attribute.multi_valued and operation.value is not None else None)
        into.append(replace(base, value=doomed))
    else:
        into.append(replace(base, value=parse_value(attribute, operation.value, attribute.name)))


def _compile_extension(extension_id: str, operation: compat.Operation, label: str,
                       into: list[ops.PatchOperation]) -> None:
    """The path is an extension's URN: its value is an object of that extension's attributes."""
    if extension_id == GATEWAY_USER:
        if operation.op == "remove" or (operation.value not in (None, {}) and _has_values(operation.value)):
            raise ScimError.mutability(f"{extension_id} is read-only")
        return
    if operation.op == "remove":
        into.append(ops.RemoveExtension(extension_id))
        return
    if not isinstance(operation.value, dict):
        raise ScimError.invalid_value(f"{extension_id} needs an object value")
    if operation.op == "replace":
        into.append(ops.RemoveExtension(extension_id))
    for key, value in operation.value.items():
        if key != "schemas":
            _compile(compat.Operation("add" if operation.op == "add" else "replace",
                                      f"{extension_id}:{key}", value, True), label, into)


def _has_values(value: JsonValue) -> bool:
    return isinstance(value, dict) and any(v is not None for k, v in value.items() if k != "schemas")


def _filtered(base: ops.AttributeOperation, target: PatchPath, operation: compat.Operation) -> ops.AttributeOperation:
    attribute = base.attribute
    if not attribute.multi_valued or target.path.sub is not None:
        raise ScimError.invalid_path(f"{attribute.name} is not multi-valued; it cannot take a filter")
    assert target.filter is not None
    node = _element_filter(target.filter, attribute)
    sub = attribute.sub(target.sub) if target.sub else None
    if target.sub and sub is None:
        raise ScimError.invalid_path(f"{attribute.name} has no sub-attribute {target.sub!r}")
    if operation.op == "remove":
        return replace(base, sub=sub, filter=node)
    name = f"{attribute.name}.{sub.name}" if sub else attribute.name
    if sub is not None:
        value = parse_value(sub, operation.value, name)
    else:
        parsed = parse_value(attribute, operation.value, name)
        value = parsed[0] if isinstance(parsed, list) and parsed else parsed
        if not isinstance(value, dict):
            raise ScimError.invalid_value(f"{name} must be an object")
    seed = _seed(target.filter)
    if seed is not None:
        # The seed is an element like any other: checked as the client had sent it.
        checked = parse_value(attribute, seed, attribute.name)
        seed = checked[0] if isinstance(checked, list) and checked else None
    return replace(base, value=value, sub=sub, filter=node, seed=seed)


def _element_filter(node: Filter, attribute: Attribute) -> ops.ElementFilter:
    """A value filter against the sub-attributes of ``attribute``, checked once, here."""
    match node:
        case And(left=left, right=right):
            return ops.AllOf(_element_filter(left, attribute), _element_filter(right, attribute))
        case Or(left=left, right=right):
            return ops.AnyOf(_element_filter(left, attribute), _element_filter(right, attribute))
        case Not(inner=inner):
            return ops.Negated(_element_filter(inner, attribute))
        case Present(path=path):
            sub = attribute.sub(path.name)
            return ops.Present(sub.name if sub is not None else path.name)
        case Compare(path=path, op=op, value=expected):
            sub = attribute.sub(path.name)
            if sub is None:
                raise ScimError.invalid_path(f"{attribute.name} has no sub-attribute {path.name!r}")
            if sub.type == "boolean" and isinstance(expected, str):
                expected = compat.boolean(expected, sub.name)
            if op not in ("eq", "ne") and expected is not None and (
                    sub.type in _NOT_TEXT or not isinstance(expected, str)):
                raise ScimError.invalid_filter(f"{op} cannot compare {sub.name} with {expected!r}")
            return ops.Compare(sub, op, expected)
        case ValuePath():
            raise ScimError.invalid_path("value filters cannot be nested")
    raise ScimError.invalid_path("unsupported value filter")


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


__all__ = ["MAX_OPERATIONS", "labelled", "operations_of", "parse_patch"]
