"""One SQL statement checked for its tenant scope with pglast, PostgreSQL's own parser: the
analysis behind tests/test_tenant_sql.py (which finds the statements and holds the policy).

A SELECT, UPDATE or DELETE passes when every tenant table it reads or writes has an equality
on its ``tenant_id`` among the AND-ed conditions of its WHERE or JOIN ... ON; an INSERT passes
when it writes ``tenant_id`` and its ON CONFLICT target includes it.
"""

from __future__ import annotations

import re

from pglast import ast as sql_ast
from pglast import enums, parse_sql
from pglast.visitors import Visitor


def _parse(sql: str) -> list[sql_ast.Node]:
    text = sql.strip()
    if re.match(r"(?i)\w+\s+AS\s*\(", text):
        text = f"WITH {text} SELECT 1"  # a list of CTEs, shared by the statements that use it
    elif re.match(r"(?i)WITH\b", text) and text.endswith(")"):
        text = f"{text} SELECT 1"  # a WITH clause that statements complete with their own CTEs
    elif not re.match(r"(?i)(SELECT|INSERT|UPDATE|DELETE|WITH|GRANT|DO|CREATE|ALTER)\b", text):
        text = f"SELECT {text}"  # a fragment, such as EXISTS (SELECT ...), parsed as an expression
    return [raw.stmt for raw in parse_sql(text)]


def _conjuncts(node: sql_ast.Node | None) -> list[sql_ast.Node]:
    if node is None:
        return []
    if isinstance(node, sql_ast.BoolExpr) and node.boolop == enums.BoolExprType.AND_EXPR:
        return [c for arg in node.args for c in _conjuncts(arg)]
    return [node]


def _column(node: sql_ast.Node) -> tuple[str, ...] | None:
    if isinstance(node, sql_ast.ColumnRef) and all(isinstance(f, sql_ast.String) for f in node.fields):
        return tuple(f.sval for f in node.fields)
    return None


def _equalities(conditions: list[sql_ast.Node]) -> list[tuple[sql_ast.Node, sql_ast.Node]]:
    return [(c.lexpr, c.rexpr) for c in conditions
            if isinstance(c, sql_ast.A_Expr) and c.kind == enums.A_Expr_Kind.AEXPR_OP
            and [n.sval for n in c.name] == ["="]]


def _relations(items: tuple | None, quals: list[sql_ast.Node]) -> list[sql_ast.RangeVar]:
    """Tables named in a FROM list (through joins, not into subqueries); collects join conditions."""
    found = []
    for item in items or ():
        if isinstance(item, sql_ast.RangeVar):
            found.append(item)
        elif isinstance(item, sql_ast.JoinExpr):
            found += _relations((item.larg, item.rarg), quals)
            quals += _conjuncts(item.quals)
    return found


def _unscoped(relations: list[sql_ast.RangeVar], conditions: list[sql_ast.Node],
              tenant_tables: frozenset[str]) -> list[str]:
    """Tenant tables whose tenant_id no AND-ed equality binds to a value.

    Equalities join columns into classes; a class is bound when it holds a parameter or
    literal, or a column of something outside this query level's tenant tables (an outer
    query's row, a function's result such as ``unnest($1::uuid[])``). Two tenant tables
    joined on tenant_id are bound only if one of them is.
    """
    tenant_relations = [r for r in relations if r.relname in tenant_tables]
    local = {(r.alias.aliasname if r.alias is not None else r.relname) for r in tenant_relations}
    parent: dict[object, object] = {}

    def find(key: object) -> object:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    def key_of(node: sql_ast.Node) -> object:
        column = _column(node)
        if column is None:
            return "bound"  # a parameter, a literal, an expression of them
        if len(column) == 1:
            if column[0] == "tenant_id" and len(tenant_relations) == 1:
                return (next(iter(local)), "tenant_id")
            return column
        if column[-2] not in local:
            return "bound"
        return column[-2:]

    for left, right in _equalities(conditions):
        a, b = find(key_of(left)), find(key_of(right))
        if a != b:
            if a == "bound":
                a, b = b, a
            parent[a] = b
    missing = []
    for relation in tenant_relations:
        alias = relation.alias.aliasname if relation.alias is not None else relation.relname
        if find((alias, "tenant_id")) != "bound":
            missing.append(relation.relname)
    return missing


class _Checker(Visitor):
    def __init__(self, tenant_tables: frozenset[str]) -> None:
        self.tenant_tables = tenant_tables
        self.problems: list[str] = []

    def visit_SelectStmt(self, ancestors, node: sql_ast.SelectStmt) -> None:
        if node.op != enums.SetOperation.SETOP_NONE:
            return  # each arm is a SelectStmt of its own
        quals: list[sql_ast.Node] = []
        relations = _relations(node.fromClause, quals)
        for table in _unscoped(relations, _conjuncts(node.whereClause) + quals, self.tenant_tables):
            self.problems.append(f"SELECT from {table} without a tenant_id condition")

    def visit_UpdateStmt(self, ancestors, node: sql_ast.UpdateStmt) -> None:
        quals: list[sql_ast.Node] = []
        relations = [node.relation, *_relations(node.fromClause, quals)]
        for table in _unscoped(relations, _conjuncts(node.whereClause) + quals, self.tenant_tables):
            self.problems.append(f"UPDATE of {table} without a tenant_id condition")

    def visit_DeleteStmt(self, ancestors, node: sql_ast.DeleteStmt) -> None:
        quals: list[sql_ast.Node] = []
        relations = [node.relation, *_relations(node.usingClause, quals)]
        for table in _unscoped(relations, _conjuncts(node.whereClause) + quals, self.tenant_tables):
            self.problems.append(f"DELETE from {table} without a tenant_id condition")

    def visit_InsertStmt(self, ancestors, node: sql_ast.InsertStmt) -> None:
        if node.relation.relname not in self.tenant_tables:
            return
        columns = [c.name for c in node.cols or ()]
        if "tenant_id" not in columns:
            self.problems.append(f"INSERT into {node.relation.relname} without tenant_id")
        conflict = node.onConflictClause
        if conflict is not None and conflict.infer is not None and conflict.infer.indexElems:
            target = [e.name for e in conflict.infer.indexElems]
            if "tenant_id" not in target:
                self.problems.append(f"ON CONFLICT ({', '.join(target)}) on {node.relation.relname} "
                                     "without tenant_id")


class _Tables(Visitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_RangeVar(self, ancestors, node: sql_ast.RangeVar) -> None:
        self.names.add(node.relname)


def tables(sql: str) -> set[str]:
    collector = _Tables()
    for statement in _parse(sql):
        collector(statement)
    return collector.names


def problems(sql: str, tenant_tables: frozenset[str]) -> list[str]:
    checker = _Checker(tenant_tables)
    for statement in _parse(sql):
        checker(statement)
    return checker.problems
