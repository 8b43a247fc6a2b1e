"""``scim-gateway audit export``: the HTTP export's rows, streamed to a file or stdout."""

from __future__ import annotations

import argparse
import sys

from eventstore import EventStore
from eventstore.pool import create_pool
from gateway.database import migrate_database
from gateway.domain.errors import Reason, Rejected
from gateway.export_formats import as_dict, csv_header, csv_line, jsonl_line
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


async def export_to(dsn: str, args: argparse.Namespace) -> int:
    if args.action is not None and args.action not in ACTIONS[args.kind]:
        expected = sorted(ACTIONS[args.kind])
        raise Rejected(Reason.INVALID_VALUE, f"unknown action {args.action!r}; expected one of {expected}")
    await migrate_database(dsn)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        store = EventStore(pool)
        tenant = await Tenancy(store).tenant(args.tenant)
        await CatchUpRunner(store, "audit", AuditProjection()).catch_up_tenant(tenant.tenant_id)
        query = ExportQuery(kind=args.kind, tenant_id=tenant.tenant_id, since=parse_time("--since", args.since),
                            until=parse_time("--until", args.until), user=args.user, actor=args.actor,
                            action=args.action, limit=None)
        fields = export_columns(args.kind)
        output = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: ASYNC230
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
            if args.output:
                output.close()
            else:
                output.flush()
        return count
    finally:
        await pool.close()
