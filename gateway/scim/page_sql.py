"""One page of a view's live rows (RFC 7644 section 3.4.2.4): the SQL Users and Groups lists share.

The filter's parameters follow the tenant's ($2, $3, ...); LIMIT and OFFSET come after them, so
the count, which needs neither, binds exactly what it uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg

from gateway.scim.filter import Filter
from gateway.scim.listing import ListQuery
from gateway.scim.users_sql import SqlQuery

_PAGE = """
SELECT {columns}, count(*) OVER () AS total
FROM {table}
WHERE tenant_id = $1 AND NOT deleted AND {where}
ORDER BY {order}
LIMIT ${limit} OFFSET ${offset}
"""
_COUNT = "SELECT count(*) FROM {table} WHERE tenant_id = $1 AND NOT deleted AND {where}"


async def fetch_page(executor: asyncpg.Pool | asyncpg.Connection, table: str, columns: str,
                     tenant_id: uuid.UUID, query: ListQuery, compile_filter: Callable[[Filter, SqlQuery], str],
                     order: str) -> tuple[int, list[asyncpg.Record]]:
    """(totalResults, rows) of ``table`` (``users_view``, ``groups_view``) for one tenant's page."""
    sql = SqlQuery(offset=1)
    where = compile_filter(query.filter, sql) if query.filter is not None else "true"
    rows: list[asyncpg.Record] = []
    if query.count:
        limit = len(sql.params) + 2
        statement = _PAGE.format(columns=columns, table=table, where=where, order=order, limit=limit,
                                 offset=limit + 1)
        rows = await executor.fetch(statement, tenant_id, *sql.params, query.count, query.start_index - 1)
    if rows:
        return rows[0]["total"], rows
    # An empty page (or count=0) still says how many match.
    return await executor.fetchval(_COUNT.format(table=table, where=where), tenant_id, *sql.params), rows
