"""``scim-gateway audit export``: the HTTP export's rows, streamed to a file or stdout."""

from __future__ import annotations

import argparse
from typing import BinaryIO

from domain.errors import Reason, Rejected
from eventstore import EventStore
from gateway.export_formats import as_dict, csv_header, csv_line, jsonl_line
from gateway.integrity_report import export_checkpoints
from gateway.progress import ProgressBar
from gateway.tenancy import Tenancy
from gateway.timestamps import parse_time
from projections.audit import AuditProjection
from projections.audit_export import (
    ACTIONS,
    FIELDS,
    STABLE_ID,
    ExportQuery,
    export_columns,
    last_seq_of_page,
    stream_rows,
)
from projections.runner import CatchUpRunner


def check_action(kind: str, action: str | None) -> None:
    if action is not None and action not in ACTIONS.get(kind, ()):
        expected = sorted(ACTIONS.get(kind, ()))
        raise Rejected(Reason.INVALID_VALUE, f"unknown action {action!r}; expected one of {expected}")


async def export_to(store: EventStore, args: argparse.Namespace, output: BinaryIO) -> int:
    pool = store.pool
    tenant = await Tenancy(store).tenant(args.tenant)
    if args.kind == "checkpoints":  # the signed notes a SIEM keeps (docs/integrity.md)
        if args.format != "jsonl":
            raise Rejected(Reason.INVALID_VALUE, "checkpoints export as jsonl only (each carries a signed note)")
        try:
            return await export_checkpoints(pool, tenant.tenant_id, output)
        finally:
            output.flush()
    await CatchUpRunner(store, "audit", AuditProjection()).catch_up_tenant(tenant.tenant_id)
    query = ExportQuery(kind=args.kind, tenant_id=tenant.tenant_id, since=parse_time("--since", args.since),
                        until=parse_time("--until", args.until), user=args.user, actor=args.actor,
                        action=args.action, limit=None)
    fields = export_columns(args.kind)
    bar = ProgressBar(f"exporting {args.kind}")
    count = 0
    try:
        async with pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            last = await last_seq_of_page(connection, query)
            if args.format == "csv":
                output.write(csv_header(fields))
            if last is not None:
                async for row in stream_rows(connection, query, last, prefetch=2000):
                    item = as_dict(row, FIELDS[args.kind], STABLE_ID[args.kind])
                    output.write(csv_line(item, fields) if args.format == "csv" else jsonl_line(item))
                    count += 1
                    bar.update(count)
    finally:
        bar.close()
        output.flush()
    return count
