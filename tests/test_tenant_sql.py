"""Every SQL statement of the product, parsed: a statement over a tenant table names the tenant.

The statements are the SQL strings in gateway/, eventstore/ and projections/ (found with
``ast``; module constants and fragments are resolved, and the few fragments built at run time
are filled with what the code puts there). Each is parsed with pglast, PostgreSQL's own parser
(the check itself is tests/tenant_sql_check.py).
A SELECT, UPDATE or DELETE passes when every tenant table it reads or writes has an equality
on its ``tenant_id`` among the AND-ed conditions of its WHERE or JOIN ... ON; an INSERT passes
when it writes ``tenant_id`` and its ON CONFLICT target includes it. A condition under OR does
not count (``$1 IS NULL OR tenant_id = $1`` scopes nothing). Seeded mutants, each with one
tenant condition of a passing statement removed, must all fail. bench/ and tests/ are not
scanned: they inspect the whole database on purpose.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from eventstore.append_sql import APPEND, EVENT_COLUMNS
from eventstore.store import _READ_STREAM
from eventstore.subject_keys import new_keys_cte
from projections.audit_export import KINDS, ExportQuery, _page_statement
from projections.users_view import _UPSERT_AFTER_APPEND
from tests.tenant_sql_check import problems, tables

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("gateway", "eventstore", "projections")

# Tables with a tenant_id that are not tenant data: the tenants themselves, and tokens and
# console sessions, which are looked up by a secret's hash before the tenant is known
# (Citus reference tables).
REFERENCE_TABLES = frozenset({"tenants", "tokens", "console_sessions"})

# Deliberate fan-out: statements over every tenant at once, by "module:owner".
ALLOWED_FAN_OUT = {
    # The whole log in one order: an inline projection's rebuild (projectors read per tenant).
    "eventstore/store.py:_READ_ALL",
    # A projection rebuild's final catch-up, with every writer held off.
    "eventstore/store.py:_READ_ALL_VISIBLE",
    # Every tenant's head in its own order: projectors looking for work, a rebuild's targets.
    "eventstore/positions.py:_HEADS",
    "projections/runner.py:_BEHIND",
    # A catch-up projection's checkpoints, every tenant's: its projectors' progress, and a
    # rebuild holding them off.
    "projections/runner.py:_POSITIONS",
    "projections/rebuild.py:_LIVE_POSITIONS",
    # Rebuild and verify copy and compare whole projection tables, every tenant's rows.
    "projections/rebuild.py:_catch_up",
    "projections/rebuild.py:_compare",
    "projections/rebuild.py:rebuild",
    # A set-based rebuild reads the whole log up to the catch-up reader's bound: every user
    # stream in stream order, or the few event types a projection keeps, and where it ends.
    "projections/users_view_rebuild.py:_USER_EVENTS",
    "projections/users_view_rebuild.py:_COUNT_BELOW",
    "projections/rebuild.py:_OF_TYPES",
    "projections/rebuild_bound.py:_LAST_BELOW",
    # The tenant directory, read whole at start (eventstore/directory.py).
    "eventstore/directory.py:_LOAD",
    # The projection-lag gauge on /metrics: each tenant's head against its audit checkpoint.
    "gateway/http/routes.py:_AUDIT_LAG",
    # The sealer works through the global log like the audit projector, in batches that span
    # tenants (it names them with tenant_id = ANY(...)); `audit verify` of every tenant lists them.
    "projections/sealer.py:_ALREADY_SEALED",
    "projections/sealer.py:_HEADS",
    "projections/sealer.py:_DUE",
    "projections/integrity.py:_SEALED_TENANTS",
    # The console's health page: the same lag, for every catch-up projection.
    "gateway/console/health.py:_CHECKPOINTS",
    # ``keys rotate`` re-wraps every tenant's data keys under the new key-encryption key.
    "eventstore/subject_keys.py:ALL_KEYS",
}

_SAMPLE_EXPORT = ExportQuery(kind="provisioning", tenant_id=None, user="x", actor="x", action="create",  # type: ignore[arg-type]
                             result="success")
_SAMPLE_EXPORT_BY_ID = ExportQuery(kind="events", tenant_id=None, user="00000000-0000-0000-0000-000000000001")  # type: ignore[arg-type]

# What the code puts into the holes of statements built at run time: {(module, hole): values}.
_PAGES = {
    # A Users or Groups page: the compiled SCIM filter, AND-ed after the tenant condition, the
    # sort order, and LIMIT/OFFSET numbered after the filter's parameters.
    "where": ["true"],
    "order": ["created, id"],
    "table": ["users_view", "groups_view"],
    "columns": ["id"],
    "limit": ["2"],
    "offset": ["3"],
}
FILLINGS: dict[tuple[str, str], list[str]] = {
    **{("gateway/scim/page_sql.py", hole): values for hole, values in _PAGES.items()},
    # The export's conditions (the real ones, every filter set), table, page bound, columns.
    ("projections/audit_export.py", "where"): [_SAMPLE_EXPORT.where()[0], _SAMPLE_EXPORT_BY_ID.where()[0]],
    ("projections/audit_export.py", "table"): sorted(KINDS.values()),
    ("projections/audit_export.py", "limit"): ["LIMIT 1000"],
    ("projections/audit_export.py", "columns"): ["seq"],
    ("projections/audit_export.py", "_select_list(query.kind, as_text)"): ["seq"],
    ("projections/audit_export.py", "statement"): [_page_statement(_SAMPLE_EXPORT, as_text=False)[0]],
    ("projections/audit_export.py", "bounds"): ["seq > $9 AND seq <= $10"],
    ("projections/audit_export.py", "_LINES"): ["100"],
    ("projections/audit_export.py", "len(params)"): ["9"],
    ("projections/audit_export.py", "len(params) + 1"): ["9"],
    ("projections/audit_export.py", "len(params) + 2"): ["10"],
    # The folded keys of rows older than projections 0015, table by table.
    ("projections/audit.py", "table"): ["audit_trail", "provisioning_log"],
    ("projections/audit.py", "column"): ["user_name", "actor_owner"],
    ("projections/audit_export.py", "KINDS[query.kind]"): sorted(KINDS.values()),
    ("projections/audit_export.py", "int(limit)"): ["200"],
    # A compiled comparison inside EXISTS (...), and a JSON path parameter.
    ("gateway/scim/users_sql.py", "condition"): ["true"],
    ("gateway/scim/users_sql.py", "path"): ["$9"],
    ("gateway/scim/groups_sql.py", "condition"): ["true"],
    # The one-statement append: the users view's row write.
    ("eventstore/append_sql.py", "view"): [_UPSERT_AFTER_APPEND],
    ("eventstore/store.py", "_COLUMNS"): [EVENT_COLUMNS],
    ("eventstore/history.py", "EVENT_COLUMNS"): [EVENT_COLUMNS],
    # The application role's GRANTs name no rows.
    ("gateway/roles.py", "role"): ["scim_app"],
    # A new user's data key, written by the append's own statement (parameters after the view's).
    ("eventstore/append_sql.py", "keys"): [new_keys_cte(28)],
    ("eventstore/subject_keys.py", "first"): ["28"],
    ("eventstore/subject_keys.py", "first + 1"): ["29"],
    ("eventstore/subject_keys.py", "first + 2"): ["30"],
    # rebuild.py: scratch schema, tables and columns (allow-listed fan-out).
    ("projections/rebuild.py", "schema"): ["scratch"],
    ("projections/rebuild.py", "table"): ["users_view"],
    ("projections/rebuild.py", "tables"): ["public.users_view"],
    ("projections/rebuild.py", "columns"): ["id"],
    ("projections/users_view_rebuild.py", "USER_PREFIX"): ["user-"],
}

_KEYWORD = re.compile(r"\b(SELECT\s|INSERT\s+INTO\s|UPDATE\s+[\w.]+\s+SET\s|DELETE\s+FROM\s)")
_HOLE = re.compile(r"\{([^{}\"']+)\}")


@dataclass(frozen=True)
class Statement:
    owner: str  # module:constant or module:function
    sql: str


# Finding the statements -------------------------------------------------------------

class _Module:
    def __init__(self, path: Path) -> None:
        self.name = str(path.relative_to(ROOT))
        self.tree = ast.parse(path.read_text())
        self.constants: dict[str, str] = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                text = self.text(node.value)
                if text is not None:
                    self.constants[node.targets[0].id] = text

    def text(self, node: ast.AST) -> str | None:
        """The string an expression builds; run-time parts become ``{their source}`` holes."""
        match node:
            case ast.Constant(value=str() as value):
                return value
            case ast.JoinedStr(values=values):
                parts = []
                for value in values:
                    if isinstance(value, ast.Constant):
                        parts.append(str(value.value))
                    elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name) \
                            and value.value.id in self.constants:
                        parts.append(self.constants[value.value.id])
                    else:
                        parts.append("{" + ast.unparse(value.value) + "}")  # type: ignore[attr-defined]
                return "".join(parts)
            case ast.BinOp(left=left, op=ast.Add(), right=right):
                a, b = self.text(left), self.text(right)
                return a + b if a is not None and b is not None else None
            case ast.Name(id=name) if name in self.constants:
                return self.constants[name]
        return None

    def statements(self) -> list[Statement]:
        found: list[Statement] = []

        def visit(node: ast.AST, owner: str, inside_string: bool) -> None:
            text = None if inside_string or isinstance(node, ast.Name) else self.text(node)
            if text is not None and _KEYWORD.search(text) and not _docstring(node):
                found.append(Statement(f"{self.name}:{owner}", text))
            for child in ast.iter_child_nodes(node):
                child_owner = owner
                if isinstance(node, ast.Module) and isinstance(child, ast.Assign) and \
                        isinstance(child.targets[0], ast.Name):
                    child_owner = child.targets[0].id
                elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    child_owner = child.name
                visit(child, child_owner, inside_string or text is not None)

        docstrings = {id(n.body[0].value) for n in ast.walk(self.tree)  # type: ignore[attr-defined]
                      if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                      and n.body and isinstance(n.body[0], ast.Expr)}

        def _docstring(node: ast.AST) -> bool:
            return id(node) in docstrings

        visit(self.tree, "<module>", False)
        return found


def _fill(statement: Statement) -> list[Statement]:
    """The statement with each hole filled with every value the code puts there."""
    match = _HOLE.search(statement.sql)
    if match is None:
        return [statement]
    key = (statement.owner.split(":")[0], match.group(1))
    if key not in FILLINGS:
        raise AssertionError(f"{statement.owner}: no filling for the run-time part {{{key[1]}}}; add it to FILLINGS")
    filled = []
    for value in FILLINGS[key]:
        sql = statement.sql[:match.start()] + value + statement.sql[match.end():]
        filled += _fill(Statement(statement.owner, sql))
    return filled


def product_statements() -> list[Statement]:
    found: list[Statement] = []
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            for statement in _Module(path).statements():
                found += _fill(statement)
    return found


# The tests -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def statements() -> list[Statement]:
    return product_statements()


@pytest.fixture
async def tenant_tables(database_url: str) -> frozenset[str]:
    """Every migrated table with a tenant_id column, but the reference tables."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'tenant_id'")
    finally:
        await connection.close()
    found = frozenset(r["table_name"] for r in rows) - REFERENCE_TABLES
    assert {"events", "users_view", "groups_view", "group_members", "audit_trail", "provisioning_log",
            "audit_identities"} <= found
    return found


def test_the_scan_finds_the_statements_it_must(statements):
    owners = {s.owner for s in statements}
    assert len(statements) > 60
    assert {"eventstore/append_sql.py:APPEND", "eventstore/store.py:_READ_STREAM", "projections/audit.py:_IDENTITIES",
            "gateway/scim/page_sql.py:_PAGE", "projections/audit_export.py:_page_statement",
            "gateway/scim/groups_sql.py:attribute_test"} <= owners
    assert ALLOWED_FAN_OUT <= owners, "an allow-list entry names no statement: remove it"


async def test_every_statement_over_a_tenant_table_names_the_tenant(statements, tenant_tables):
    found = []
    for statement in statements:
        if statement.owner in ALLOWED_FAN_OUT:
            continue
        found += [f"{statement.owner}: {problem}" for problem in problems(statement.sql, tenant_tables)]
    assert found == []


async def test_the_allowed_fan_out_statements_are_fan_out(statements, tenant_tables):
    """An allow-list entry whose statements all name the tenant is stale."""
    for owner in ALLOWED_FAN_OUT:
        assert any(problems(s.sql, tenant_tables) for s in statements if s.owner == owner), owner


_TENANT_CONDITION = re.compile(r"\b(?:\w+\.)?tenant_id\s*=\s*(?:\$\d+|\w+(?:\.\w+)?)")


def mutants(sql: str) -> list[str]:
    """Copies of ``sql``, each with one tenant condition replaced by ``true``."""
    return [sql[:m.start()] + "true" + sql[m.end():] for m in _TENANT_CONDITION.finditer(sql)
            if not sql[:m.start()].rstrip().upper().endswith(("SET", ","))]


async def test_every_seeded_mutant_is_caught(statements, tenant_tables):
    caught = 0
    for statement in statements:
        if statement.owner in ALLOWED_FAN_OUT or not tables(statement.sql) & tenant_tables:
            continue
        seeded = mutants(statement.sql)
        # Only an INSERT has no condition to remove (its tenant_id column is checked instead),
        # and a GRANT names tables without reading them.
        text = statement.sql.strip()
        inserts = text.startswith(("INSERT", "GRANT")) or re.search(r"\)\s*INSERT\s+INTO", text) is not None
        assert seeded or inserts, statement.owner
        for mutant in seeded:
            assert problems(mutant, tenant_tables), f"{statement.owner}: mutant not caught:\n{mutant}"
            caught += 1
    assert caught >= 30


@pytest.mark.parametrize("sql", [
    "SELECT * FROM events WHERE stream_id = $1",
    "SELECT * FROM events WHERE $1::uuid IS NULL OR tenant_id = $1",
    "SELECT * FROM events e JOIN users_view u ON u.id = e.stream_id::uuid WHERE e.tenant_id = $1",
    "SELECT * FROM group_members m JOIN groups_view g ON g.tenant_id = m.tenant_id WHERE g.id = $1",
    "SELECT * FROM users_view WHERE tenant_id = $1 AND id IN (SELECT user_id FROM group_members WHERE group_id = $2)",
    "UPDATE users_view SET active = false WHERE id = $1",
    "DELETE FROM group_members WHERE group_id = $1",
    "INSERT INTO audit_identities (user_id, user_name) VALUES ($1, $2)",
    "INSERT INTO users_view (tenant_id, id) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    "WITH h AS (SELECT max(stream_version) FROM events WHERE stream_id = $1) SELECT * FROM h",
])
async def test_the_checker_refuses_unscoped_shapes(sql, tenant_tables):
    assert problems(sql, tenant_tables)


async def test_the_checker_accepts_the_store_statements(tenant_tables):
    assert problems(APPEND, tenant_tables) == [] and problems(_READ_STREAM, tenant_tables) == []


# Keys ----------------------------------------------------------------------------------

# The export sequence is one gapless sequence over every tenant until positions become per
# tenant (issue 19): its primary key stays ``seq``.
_GLOBAL_KEYS = {"audit_trail_pkey", "provisioning_log_pkey"}


async def test_every_key_of_tenant_data_starts_with_tenant_id(database_url, tenant_tables):
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            """
            SELECT c.relname AS table_name, i.relname AS index_name,
                   (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = x.indkey[0])
                       AS first_column
            FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND x.indisunique AND c.relname = ANY($1::text[])
            """, sorted(tenant_tables))
    finally:
        await connection.close()
    assert len(rows) >= 10
    wrong = [f"{r['table_name']}.{r['index_name']} starts with {r['first_column']}" for r in rows
             if r["first_column"] != "tenant_id" and r["index_name"] not in _GLOBAL_KEYS]
    assert wrong == []
