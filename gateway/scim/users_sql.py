"""SCIM filters and sorting compiled to parameterised SQL on ``users_view``.

Attribute names come from the schema whitelist and every value is a ``$n`` parameter:
nothing a client sends is concatenated into SQL, and no user is filtered in Python.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from domain.errors import Rejected
from domain.identifiers import fold
from domain.schema import Attribute, ResolvedPath, resolve
from gateway.scim.errors import ScimError
from gateway.scim.filter import And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath
from gateway.timestamps import parse_time

# Attributes with a real column. A case-insensitive attribute's column holds its folded key
# (projections.users_view), as does ``attributes_folded``: every case-insensitive comparison
# is folded column against folded parameter, both folded by domain.identifiers.fold.
# SQL never lower-cases: PostgreSQL's lower() disagrees with Python's on non-ASCII letters.
_COLUMNS: dict[str, str] = {
    "userName": "user_name_lower",
    "externalId": "external_id",
    "name.givenName": "given_name",
    "name.familyName": "family_name",
    "displayName": "display_name",
}
_DOCUMENT = "attributes_folded"

_STRING_OPS = {"eq": "=", "ne": "IS DISTINCT FROM", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_ORDER_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@dataclass
class SqlQuery:
    """A WHERE clause and its parameters; parameter numbers continue after ``offset``."""

    offset: int
    params: list[object] = field(default_factory=list)

    def param(self, value: object) -> str:
        self.params.append(value)
        return f"${self.offset + len(self.params)}"


def _resolve(path: AttrPath, parent: Attribute | None = None) -> ResolvedPath | Attribute:
    if parent is not None:
        sub = parent.sub(path.full)
        if sub is None:
            raise ScimError.invalid_filter(f"{parent.name} has no sub-attribute {path.full!r}")
        return sub
    resolved = resolve(path.full)
    if resolved is None:
        raise ScimError.invalid_filter(f"unsupported attribute in filter: {path.full!r}")
    return resolved


def _json_path(resolved: ResolvedPath) -> list[str]:
    keys = [resolved.extension] if resolved.extension else []
    keys.append(resolved.attribute.name)
    return keys


class _Compiler:
    def __init__(self, query: SqlQuery) -> None:
        self.q = query

    def compile(self, node: Filter) -> str:
        match node:
            case And(left=left, right=right):
                return f"({self.compile(left)} AND {self.compile(right)})"
            case Or(left=left, right=right):
                return f"({self.compile(left)} OR {self.compile(right)})"
            case Not(inner=inner):
                return f"(NOT coalesce({self.compile(inner)}, false))"
            case ValuePath():
                return self.value_path(node)
            case Compare() | Present():
                return self.attribute_test(node)
        raise ScimError.invalid_filter("unsupported filter")

    # Top-level attribute tests

    def attribute_test(self, node: Compare | Present) -> str:
        resolved = _resolve(node.path)
        assert isinstance(resolved, ResolvedPath)
        attribute, sub = resolved.attribute, resolved.sub_attribute
        dotted = resolved.dotted
        if dotted == "id":
            return self.compare_text("id::text", True, node, attribute)
        if dotted == "active":
            if isinstance(node, Present):
                return "active_assigned"
            return self.compare_typed("active", "boolean", node)
        if attribute.name == "meta" and resolved.extension is None:
            column = {"created": "created", "lastModified": "last_modified"}.get(sub.name if sub else "")
            if column is None:
                raise ScimError.invalid_filter(f"unsupported attribute in filter: {node.path.full!r}")
            return self.compare_typed(column, "dateTime", node)
        if dotted in _COLUMNS:
            target = sub or attribute
            return self.compare_text(_COLUMNS[dotted], target.case_exact, node, target)
        if attribute.multi_valued:
            element_attribute = sub or attribute.sub("value")
            if element_attribute is None:
                raise ScimError.invalid_filter(f"{attribute.name} needs a sub-attribute in a filter")
            if isinstance(node, Present) and sub is None:
                path = self.q.param(_json_path(resolved))
                return f"(jsonb_array_length(coalesce({_DOCUMENT} #> {path}::text[], '[]'::jsonb)) > 0)"
            condition = self.element_test(node, element_attribute)
            return self.exists(resolved, condition, node if attribute.name == "emails" else None)
        if attribute.type == "complex" and sub is None:
            if isinstance(node, Present):
                return f"({_DOCUMENT} #> {self.q.param(_json_path(resolved))}::text[] IS NOT NULL)"
            raise ScimError.invalid_filter(f"{attribute.name} needs a sub-attribute in a filter")
        keys = _json_path(resolved) + ([sub.name] if sub else [])
        expression = f"({_DOCUMENT} #>> {self.q.param(keys)}::text[])"
        target = sub or attribute
        return self.compare_value(expression, node, target)

    # Multi-valued attributes: EXISTS over the JSON array

    def exists(self, resolved: ResolvedPath, condition: str, email_eq: Compare | Present | None) -> str:
        path = self.q.param(_json_path(resolved))
        clause = (
            f"EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce({_DOCUMENT} #> {path}::text[], "
            f"'[]'::jsonb)) AS element WHERE {condition})"
        )
        # emails.value eq "x": let the GIN index on the folded emails column narrow it first.
        if (
            isinstance(email_eq, Compare)
            and email_eq.op == "eq"
            and isinstance(email_eq.value, str)
            and (resolved.sub_attribute is None or resolved.sub_attribute.name == "value")
        ):
            clause = f"(emails @> ARRAY[{self.q.param(fold(email_eq.value))}::text] AND {clause})"
        return clause

    def element_test(self, node: Filter, parent: Attribute) -> str:
        match node:
            case And(left=left, right=right):
                return f"({self.element_test(left, parent)} AND {self.element_test(right, parent)})"
            case Or(left=left, right=right):
                return f"({self.element_test(left, parent)} OR {self.element_test(right, parent)})"
            case Not(inner=inner):
                return f"(NOT coalesce({self.element_test(inner, parent)}, false))"
            case Compare() | Present():
                sub = _resolve(node.path, parent) if parent.type == "complex" and parent.sub_attributes else parent
                assert isinstance(sub, Attribute)
                expression = f"(element ->> {self.q.param(sub.name)})"
                return self.compare_value(expression, node, sub)
        raise ScimError.invalid_filter("value filters cannot be nested")

    def value_path(self, node: ValuePath) -> str:
        resolved = _resolve(node.path)
        assert isinstance(resolved, ResolvedPath)
        if not resolved.attribute.multi_valued or resolved.sub_attribute is not None:
            raise ScimError.invalid_filter(f"{node.path.full!r} is not multi-valued")
        condition = self.element_test(node.filter, resolved.attribute)
        email_eq = None
        if node.then is not None:
            condition = f"({condition} AND {self.element_test(node.then, resolved.attribute)})"
            if resolved.attribute.name == "emails" and node.then.path.full.lower() == "value":
                email_eq = node.then
        return self.exists(resolved, condition, email_eq)

    # Comparisons by type

    def compare_value(self, expression: str, node: Compare | Present, attribute: Attribute) -> str:
        if attribute.type in ("boolean", "integer", "decimal", "dateTime"):
            return self.compare_typed(expression, attribute.type, node)
        return self.compare_text(expression, attribute.case_exact, node, attribute)

    def compare_text(self, expression: str, case_exact: bool, node: Compare | Present,
                     attribute: Attribute) -> str:
        """``expression`` holds folded text unless ``case_exact``; the value is folded to match."""
        if isinstance(node, Present):
            return f"({expression} IS NOT NULL AND {expression} <> '')"
        if node.value is None:
            return f"({expression} IS {'NOT ' if node.op == 'ne' else ''}NULL)"
        if isinstance(node.value, bool):
            raise ScimError.invalid_filter(f"{attribute.name} is a string; it cannot be compared with a boolean")
        value = str(node.value) if not isinstance(node.value, str) else node.value
        if "\x00" in value:
            raise ScimError.invalid_filter("filter values must not contain NUL characters")
        left = expression
        right = self.q.param(value if case_exact else fold(value))
        match node.op:
            case "co":
                return f"(strpos({left}, {right}) > 0)"
            case "sw":
                return f"starts_with({left}, {right})"
            case "ew":
                return f"(right({left}, char_length({right})) = {right})"
            case op:
                return f"({left} {_STRING_OPS[op]} {right})"

    def compare_typed(self, expression: str, kind: str, node: Compare | Present) -> str:
        if isinstance(node, Present):
            return f"({expression} IS NOT NULL)"
        if node.value is None:
            return f"({expression} IS {'NOT ' if node.op == 'ne' else ''}NULL)"
        if node.op in ("co", "sw", "ew"):
            raise ScimError.invalid_filter(f"{node.op} applies to strings only, not to {node.path.full}")
        if node.op not in ("eq", "ne") and kind == "boolean":
            raise ScimError.invalid_filter(f"{node.op} cannot compare booleans")
        value = _typed_literal(kind, node)
        sql_type = {"boolean": "boolean", "integer": "numeric", "decimal": "numeric",
                    "dateTime": "timestamptz"}[kind]
        cast = expression if expression in ("active", "created", "last_modified") else f"({expression})::{sql_type}"
        return f"({cast} {_ORDER_OPS[node.op]} {self.q.param(value)}::{sql_type})"


def _typed_literal(kind: str, node: Compare) -> object:
    value = node.value
    try:
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
        elif kind == "dateTime" and isinstance(value, str):
            return parse_time(node.path.full, value, naive_is_utc=True)
        elif kind in ("integer", "decimal") and isinstance(value, int | float) and not isinstance(value, bool):
            return Decimal(str(value))
    except (ValueError, InvalidOperation):
        pass
    except Rejected as rejected:
        raise ScimError.invalid_filter(rejected.detail) from None
    raise ScimError.invalid_filter(f"{value!r} is not a valid {kind} for {node.path.full}")


def compile_filter(node: Filter, query: SqlQuery) -> str:
    return _Compiler(query).compile(node)


def user_name_key(node: Filter) -> str | None:
    """The folded userName when ``node`` is exactly `userName eq "..."`: a read of the unique
    key. Decided by what this compiler makes of it, so it folds and resolves as every filter;
    only a single comparison can be one, so any other filter is not compiled here as well."""
    if not isinstance(node, Compare):
        return None
    query = SqlQuery(offset=1)
    if compile_filter(node, query) == "(user_name_lower = $2)" and isinstance(query.params[0], str):
        return query.params[0]
    return None


def sort_expression(sort_by: str) -> str:
    """The ORDER BY expression for ``sortBy``; only whitelisted columns or JSON paths."""
    resolved = resolve(sort_by)
    if resolved is None:
        raise ScimError.invalid_value(f"cannot sort by unknown attribute {sort_by!r}")
    dotted = resolved.dotted
    if dotted in _COLUMNS:
        return _COLUMNS[dotted]
    fixed = {"id": "id", "active": "active", "meta.created": "created",
             "meta.lastModified": "last_modified"}
    if dotted in fixed:
        return fixed[dotted]
    if resolved.attribute.multi_valued:
        if resolved.attribute.name == "emails":
            return "emails[1]"
        raise ScimError.invalid_value(f"cannot sort by multi-valued attribute {sort_by!r}")
    if resolved.attribute.type == "complex" and resolved.sub_attribute is None:
        raise ScimError.invalid_value(f"cannot sort by complex attribute {sort_by!r}")
    # Safe to inline: every key comes from the schema, never from the request.
    keys = [k for k in (resolved.extension, resolved.attribute.name,
                        resolved.sub_attribute.name if resolved.sub_attribute else None) if k]
    literal = "{" + ",".join(f'"{k}"' for k in keys) + "}"
    return f"({_DOCUMENT} #>> '{literal}')"


__all__ = ["SqlQuery", "compile_filter", "sort_expression", "uuid"]
