"""Reading the audit trail and the provisioning log for export: filters, pages, and the one
streamer of export bytes that both the HTTP API and ``audit export`` use.

Pages are bounded by ``seq`` before streaming, so the next-page cursor is known up front
and a row committed while a page streams belongs to the next page, never to none.

PostgreSQL writes the JSON itself (``row_to_json``) and sends it with ``COPY ... TO
STDOUT``: Python forwards bytes in large chunks and builds no object per row, which is what
lets an export run at the speed of the socket (docs/benchmarks.md, "Replay and export").
The audit trail holds plaintext (the store opens sealed values before any projector sees
them, and an erasure rewrites the rows), so nothing needs decrypting on the way out.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from domain.identifiers import fold
from projections.audit_vocabulary import TRAIL_ACTIONS

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

AUDIT_ACTIONS = TRAIL_ACTIONS
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
            add(f"{user_name_column}_folded = ?", fold(self.user))
        if self.actor is not None:
            add("(actor_token_id = ? OR actor_owner_folded = ?)", self.actor, fold(self.actor))
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


# Every time leaves as RFC 3339 UTC with six fractional digits (gateway/timestamps.py).
_TIME = """to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
# Columns whose values are JSON of any type: CSV carries them as JSON text, so they read back
# exactly ("Ann" stays a string, true a boolean).
_JSON_COLUMNS = frozenset({"old_value", "new_value"})
_ARRAY_COLUMNS = frozenset({"changed_attributes", "ignored_attributes"})
OUTPUTS = ("json", "jsonl", "csv")
# COPY's CSV mode with a quote and a delimiter that JSON text never holds raw (PostgreSQL
# escapes every control character in JSON strings): the JSON leaves as PostgreSQL wrote it.
# Each COPY row carries up to _LINES rows' lines joined by newlines (one protocol message
# for many rows, so less work per row on both sides); CSV mode quotes such a value with
# \x01, which the reader drops (no other \x01 can be in the bytes).
_COPY_JSON_LINES = {"format": "csv", "quote": "\x01", "delimiter": "\x02"}
_QUOTE = b"\x01"
_LINES = 100
_CHUNK = 1 << 16  # bytes gathered before a write: few, large writes
_WINDOW = 5000  # seq values per COPY
_BATCH = 5000  # CSV rows formatted at once
# After a small read, wait this long before the next: PostgreSQL fills the socket meanwhile,
# and the loop handles a few large reads instead of many small ones (half the CPU per row,
# docs/benchmarks.md). Short enough that PostgreSQL never waits on a full socket buffer.
_SMALL_READ = 1 << 16
_GATHER_SECONDS = 0.001

Write = Callable[[bytes | bytearray], Awaitable[None]]


def _select_list(kind: str, as_text: bool) -> str:
    """The exported columns in ``export_columns`` order; ``as_text``: each as CSV cell text."""
    parts = []
    for name in export_columns(kind):
        if name == "id":
            expression = STABLE_ID[kind]
        elif name == "recorded_at":
            expression = _TIME
        elif as_text and name in _ARRAY_COLUMNS:
            expression = f"array_to_json({name})"
        else:
            expression = name
        parts.append(f"{expression}::text AS {name}" if as_text else f"{expression} AS {name}")
    return ", ".join(parts)


def _page_statement(query: ExportQuery, as_text: bool) -> tuple[str, list[Any]]:
    """The page's rows in order; the last two parameters bound ``seq`` (after, through)."""
    where, params = query.where()
    bounds = f"seq > ${len(params) + 1} AND seq <= ${len(params) + 2}"
    return (f"SELECT {_select_list(query.kind, as_text)} FROM {KINDS[query.kind]} "
            f"WHERE {where} AND {bounds} ORDER BY seq"), params


async def stream_export(connection: asyncpg.Connection, query: ExportQuery, through_seq: int | None,
                        output: str, write: Write, progress: Callable[[int], None] | None = None) -> int:
    """Write the page's rows (``seq`` up to ``through_seq``; None: an empty page) as ``output``
    and return how many: ``jsonl`` one object a line, ``json`` the array of them, ``csv`` a
    header and RFC 4180 rows. Must run inside a transaction on ``connection``."""
    sink = _Chunks(write, progress)
    if output == "json":
        sink.as_array()
    if output == "csv":
        await sink.add(_csv([export_columns(query.kind)]), 0)
        if through_seq is not None:
            await _csv_rows(connection, query, through_seq, sink)
    elif through_seq is not None:
        await _json_lines(connection, query, through_seq, sink)
    await sink.close()
    sink.check()
    return sink.rows


async def _json_lines(connection: asyncpg.Connection, query: ExportQuery, through_seq: int, sink: _Chunks) -> None:
    """One COPY per window of ``seq``: each is bounded by the connection's command timeout, as a
    cursor's fetch is, so a slow reader of a long export fails no sooner than before."""
    statement, params = _page_statement(query, as_text=False)
    copy = (f"SELECT string_agg(row_to_json(page)::text, E'\\n' ORDER BY page.seq) FROM ({statement}) AS page "
            f"GROUP BY page.seq / {_LINES} ORDER BY page.seq / {_LINES}")
    low = query.after_seq
    while low < through_seq:
        high = min(low + _WINDOW, through_seq)
        before = sink.rows
        await connection.copy_from_query(copy, *params, low, high, output=sink.add_lines, **_COPY_JSON_LINES)
        sink.check()
        low = high
        if sink.rows == before:  # a gap (old global numbers) or a sparse filter: skip to the next row
            following = await _next_seq(connection, query, low, through_seq)
            if following is None:
                return
            low = following - 1


async def _next_seq(connection: asyncpg.Connection, query: ExportQuery, after: int, through: int) -> int | None:
    where, params = query.where()
    return await connection.fetchval(
        f"SELECT min(seq) FROM {KINDS[query.kind]} WHERE {where} AND seq > ${len(params) + 1} "
        f"AND seq <= ${len(params) + 2}", *params, after, through)


async def _csv_rows(connection: asyncpg.Connection, query: ExportQuery, through_seq: int, sink: _Chunks) -> None:
    statement, params = _page_statement(query, as_text=True)
    batch: list[asyncpg.Record] = []
    async for row in connection.cursor(statement, *params, query.after_seq, through_seq, prefetch=_BATCH):
        batch.append(row)
        if len(batch) == _BATCH:
            await sink.add(_csv(batch), len(batch))
            sink.check()
            batch = []
    await sink.add(_csv(batch), len(batch))


def _csv(rows: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


class _Chunks:
    """Gathers the streamed bytes into large writes; as a JSON array, lines become items."""

    def __init__(self, write: Write, progress: Callable[[int], None] | None) -> None:
        self.write, self.progress = write, progress
        self.parts: list[bytes | bytearray] = []
        self.size = self.rows = 0
        self.array = self.comma = False
        # A reader gone mid-COPY (a closed pipe, a dropped client): kept until the COPY ends,
        # so the connection is idle again when the error leaves (then a rollback is clean).
        self.failed: OSError | None = None

    def as_array(self) -> None:
        self.array = True
        self.parts.append(b"[")

    async def add(self, data: bytes | bytearray, rows: int) -> None:
        if self.array and data:
            # JSON text holds no raw newline: each is a row's end, and becomes the comma
            # before the next row (held back until one comes).
            data = (b"," if self.comma else b"") + data.replace(b"\n", b",")
            self.comma = data.endswith(b",")
            data = data[:-1] if self.comma else data
        self.parts.append(data)
        self.size += len(data)
        self.rows += rows
        if self.size >= _CHUNK:
            await self._flush()

    async def add_lines(self, data: bytes) -> None:
        """What COPY sends (rows of lines); reading pauses until this returns."""
        if self.failed is not None:
            return  # nobody reads any more: let this window's COPY run out
        lines = data.replace(_QUOTE, b"")
        await self.add(lines, lines.count(b"\n"))
        if len(data) < _SMALL_READ:
            await asyncio.sleep(_GATHER_SECONDS)

    async def close(self) -> None:
        if self.array:
            self.parts.append(b"]")
        await self._flush()

    def check(self) -> None:
        if self.failed is not None:
            raise self.failed

    async def _flush(self) -> None:
        if self.parts and self.failed is None:
            try:
                # A large read is written as it came (no copy); small ones are gathered first.
                await self.write(self.parts[0] if len(self.parts) == 1 else b"".join(self.parts))
            except OSError as error:
                self.failed = error
        self.parts, self.size = [], 0
        if self.progress is not None:
            self.progress(self.rows)


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
