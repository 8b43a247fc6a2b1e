"""Reading the audit trail and the provisioning log for export: filters, pages, streaming.

Pages are bounded by ``seq`` before streaming, so the next-page cursor is known up front
and a row committed while a page streams belongs to the next page, never to none.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

KINDS = {
    "events": "audit_trail",
    "provisioning": "provisioning_log",
}

AUDIT_FIELDS = ("seq", "event_id", "position", "recorded_at", "tenant_id", "user_id", "user_name", "action",
                "attribute", "old_value", "new_value", "actor_token_id", "actor_description", "actor_owner",
                "request_id", "client_request_id", "source_ip", "user_agent")
PROVISIONING_FIELDS = ("seq", "id", "position", "recorded_at", "tenant_id", "request_id", "client_request_id",
                       "method", "path",
                       "action", "target_id", "target_user_name", "target_external_id", "result", "status",
                       "scim_type", "detail", "changed_attributes", "ignored_attributes", "duration_ms",
                       "actor_token_id", "actor_description", "actor_owner", "source_ip", "user_agent")
FIELDS = {"events": AUDIT_FIELDS, "provisioning": PROVISIONING_FIELDS}
# The column exported as ``id``: the dedup key for at-least-once consumers.
STABLE_ID = {"events": "event_id", "provisioning": "id"}


def export_columns(kind: str) -> list[str]:
    """The exported row's columns, ``id`` first (the stable id under its export name)."""
    return ["id", *[f for f in FIELDS[kind] if f != STABLE_ID[kind]]]

AUDIT_ACTIONS = frozenset({"create", "update", "ignored_attribute", "deactivate", "reactivate", "delete",
                           "token_issued", "token_revoked", "token_rotated", "tenant_created", "tenant_policy_changed",
                           "group_create", "group_rename", "group_update", "members_added", "members_removed",
                           "group_delete", "user.erased"})
PROVISIONING_ACTIONS = frozenset({"create", "update", "delete", "disable", "enable"})
ACTIONS = {"events": AUDIT_ACTIONS, "provisioning": PROVISIONING_ACTIONS}
RESULTS = frozenset({"success", "failure", "skipped", "replayed"})


@dataclass(frozen=True, slots=True)
class ExportQuery:
    kind: str  # "events" or "provisioning"
    tenant_id: uuid.UUID
    after_seq: int = 0
    since: datetime | None = None
    until: datetime | None = None
    user: str | None = None  # id or userName
    actor: str | None = None  # token id or owner
    action: str | None = None
    result: str | None = None
    # The gateway's request id or the caller's X-Request-Id (both are only ever read within the tenant).
    request_id: str | None = None
    limit: int | None = 1000
    oldest_first: bool = True

    def where(self) -> tuple[str, list[Any]]:
        user_id_column, user_name_column = (
            ("user_id", "user_name") if self.kind == "events" else ("target_id", "target_user_name"))
        user_uuid = _as_uuid(self.user)
        clauses = ["tenant_id = $1", "seq > $2"]
        params: list[Any] = [self.tenant_id, self.after_seq]

        def add(clause: str, *values: Any) -> None:
            for value in values:
                params.append(value)
                clause = clause.replace("?", f"${len(params)}", 1)
            clauses.append(clause)

        if self.since is not None:
            add("recorded_at >= ?", self.since)
        if self.until is not None:
            add("recorded_at < ?", self.until)
        if user_uuid is not None:
            add(f"{user_id_column} = ?", user_uuid)
        elif self.user is not None:
            add(f"lower({user_name_column}) = lower(?)", self.user)
        if self.actor is not None:
            add("(actor_token_id = ? OR lower(actor_owner) = lower(?))", self.actor, self.actor)
        if self.action is not None:
            add("action = ?", self.action)
        if self.result is not None:
            add("result = ?", self.result)
        if self.request_id is not None:
            add("(request_id = ? OR client_request_id = ?)", self.request_id, self.request_id)
        return " AND ".join(clauses), params


def _as_uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def last_seq_of_page(connection: asyncpg.Connection, query: ExportQuery) -> int | None:
    """The ``seq`` of the page's last row, or None when the page is empty."""
    where, params = query.where()
    table = KINDS[query.kind]
    limit = f"LIMIT {int(query.limit)}" if query.limit is not None else ""
    return await connection.fetchval(
        f"SELECT max(seq) FROM (SELECT seq FROM {table} WHERE {where} ORDER BY seq {limit}) AS page", *params)


async def stream_rows(connection: asyncpg.Connection, query: ExportQuery, through_seq: int,
                      prefetch: int = 500) -> AsyncIterator[asyncpg.Record]:
    """Rows with ``seq`` up to ``through_seq``, in order, through a server-side cursor.

    Must run inside a transaction on ``connection``.
    """
    where, params = query.where()
    params.append(through_seq)
    table = KINDS[query.kind]
    columns = ", ".join(FIELDS[query.kind])
    order = "ASC" if query.oldest_first else "DESC"
    statement = f"SELECT {columns} FROM {table} WHERE {where} AND seq <= ${len(params)} ORDER BY seq {order}"
    async for row in connection.cursor(statement, *params, prefetch=prefetch):
        yield row


async def newest_rows(connection: asyncpg.Connection, query: ExportQuery, limit: int) -> list[asyncpg.Record]:
    """The newest ``limit`` rows matching ``query`` (the console's first screen), newest first."""
    where, params = query.where()
    columns = ", ".join(FIELDS[query.kind])
    return await connection.fetch(
        f"SELECT {columns} FROM {KINDS[query.kind]} WHERE {where} ORDER BY seq DESC LIMIT {int(limit)}", *params)


# request_id has no index of its own: the time window (the rows' own, widened) lets the
# (tenant_id, recorded_at) index narrow the scan first.
_CHANGES_OF_REQUESTS = """
SELECT request_id, action, attribute, old_value, new_value FROM audit_trail
WHERE tenant_id = $1 AND recorded_at BETWEEN $3 AND $4 AND request_id = ANY($2::text[]) ORDER BY seq
"""
_WINDOW_MARGIN = timedelta(minutes=1)


async def changes_of_requests(connection: asyncpg.Connection, tenant_id: uuid.UUID,
                              rows: list[asyncpg.Record]) -> dict[str, list[asyncpg.Record]]:
    """The audit rows (attribute, old, new) each provisioning log row's request wrote, by request id."""
    by_request: dict[str, list[asyncpg.Record]] = {}
    request_ids = [row["request_id"] for row in rows if row["request_id"]]
    if not request_ids:
        return by_request
    earliest = min(row["recorded_at"] for row in rows) - _WINDOW_MARGIN
    latest = max(row["recorded_at"] for row in rows) + _WINDOW_MARGIN
    for row in await connection.fetch(_CHANGES_OF_REQUESTS, tenant_id, request_ids, earliest, latest):
        by_request.setdefault(row["request_id"], []).append(row)
    return by_request
