"""SCIM filters on Groups compiled to parameterised SQL on ``groups_view`` and ``group_members``."""

from __future__ import annotations

from domain.schema import EXTERNAL_ID, GROUP_SCHEMA, ID
from gateway.scim.errors import ScimError
from gateway.scim.filter import Compare, Filter, Present, ValuePath
from gateway.scim.users_sql import SqlQuery, _Compiler

_MEMBER_VALUE = GROUP_SCHEMA.attribute("members").sub("value")  # type: ignore[union-attr]
# A membership of the outer query's group row, which is already limited to one tenant.
_MEMBER_OF_ROW = "gm.tenant_id = groups_view.tenant_id AND gm.group_id = groups_view.id"


class _GroupCompiler(_Compiler):
    def attribute_test(self, node: Compare | Present) -> str:
        name = node.path.full.lower().removeprefix(GROUP_SCHEMA.id.lower() + ":")
        if name == "id":
            return self.compare_text("id::text", True, node, ID)
        if name == "displayname":
            return self.compare_text("display_name_folded", False, node,
                                     GROUP_SCHEMA.attribute("displayName"))  # type: ignore[arg-type]
        if name == "externalid":
            return self.compare_text("external_id", True, node, EXTERNAL_ID)
        if name in ("meta.created", "meta.lastmodified"):
            return self.compare_typed("created" if name == "meta.created" else "last_modified", "dateTime", node)
        if name in ("members", "members.value"):
            if isinstance(node, Present):
                return f"EXISTS (SELECT 1 FROM group_members gm WHERE {_MEMBER_OF_ROW})"
            # A uuid's text is lower-case hex, which is its own fold.
            condition = self.compare_text("gm.user_id::text", False, node, _MEMBER_VALUE)  # type: ignore[arg-type]
            return f"EXISTS (SELECT 1 FROM group_members gm WHERE {_MEMBER_OF_ROW} AND {condition})"
        raise ScimError.invalid_filter(f"unsupported attribute in a Group filter: {node.path.full!r}")

    def value_path(self, node: ValuePath) -> str:
        if node.path.full.lower() != "members" or node.then is not None:
            raise ScimError.invalid_filter(f"unsupported value filter on {node.path.full!r}")
        return self.compile(_rebase(node.filter))


def _rebase(node: Filter) -> Filter:
    """``members[value eq "x"]`` means ``members.value eq "x"``."""
    from dataclasses import replace

    from gateway.scim.filter import And, AttrPath, Not, Or

    match node:
        case Compare() | Present():
            return replace(node, path=AttrPath(None, "members", node.path.name))
        case And() | Or():
            return type(node)(_rebase(node.left), _rebase(node.right))
        case Not():
            return Not(_rebase(node.inner))
    raise ScimError.invalid_filter("value filters cannot be nested")


def compile_group_filter(node: Filter, query: SqlQuery) -> str:
    return _GroupCompiler(query).compile(node)


__all__ = ["compile_group_filter"]
