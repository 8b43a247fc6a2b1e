"""``scim-gateway audit export`` and ``audit verify`` (docs/audit.md, docs/integrity.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from domain.errors import Reason, Rejected
from eventstore import EventStore
from eventstore.signed_note import NoteError, Verifier
from gateway.cli.output import UserError, say
from gateway.cli.parsers import Parents
from gateway.cli.session import open_store, work_on
from gateway.settings import Settings, SettingsError
from gateway.signing_key import load_signing_key, signing_key_path


def open_output(path: str | None) -> BinaryIO:
    """The file to write (checked before any database work), or stdout."""
    if path is None:
        return sys.stdout.buffer
    target = Path(path)
    if not target.parent.is_dir():
        raise UserError(f"cannot write {target}: directory {target.parent} does not exist")
    try:
        return target.open("wb")
    except OSError as error:
        raise UserError(f"cannot write {target}: {error.strerror}") from None


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from projections.audit_export import ACTIONS

    if args.action is not None and args.action not in ACTIONS.get(args.kind, ()):
        raise Rejected(Reason.INVALID_VALUE,
                       f"unknown action {args.action!r}; expected one of {sorted(ACTIONS.get(args.kind, ()))}")
    output = open_output(args.output)

    async def run() -> int:
        async with open_store(settings, projections=()) as session:
            return await _export_to(session.store, args, output)

    try:
        count = asyncio.run(run())
    finally:
        if args.output:
            output.close()
    say(f"exported {count} row(s)")
    return 0


async def _export_to(store: EventStore, args: argparse.Namespace, output: BinaryIO) -> int:
    """The HTTP export's bytes (projections.audit_export.stream_export), every page at once."""
    from gateway.integrity_report import export_checkpoints
    from gateway.progress import ProgressBar
    from gateway.tenancy import Tenancy
    from gateway.timestamps import parse_time
    from projections.audit import AuditProjection
    from projections.audit_export import ExportQuery, last_seq_of_page, stream_export
    from projections.runner import CatchUpRunner

    tenant = await work_on(Tenancy(store), args.tenant)
    if args.kind == "checkpoints":  # the signed notes a SIEM keeps (docs/integrity.md)
        if args.format != "jsonl":
            raise Rejected(Reason.INVALID_VALUE, "checkpoints export as jsonl only (each carries a signed note)")
        try:
            return await export_checkpoints(store.pool, tenant.tenant_id, output)
        finally:
            output.flush()
    await CatchUpRunner(store, "audit", AuditProjection()).catch_up_tenant(tenant.tenant_id)
    query = ExportQuery(kind=args.kind, tenant_id=tenant.tenant_id, since=parse_time("--since", args.since),
                        until=parse_time("--until", args.until), user=args.user, actor=args.actor,
                        action=args.action, limit=None)

    async def write(chunk: bytes | bytearray) -> None:
        output.write(chunk)

    bar = ProgressBar(f"exporting {args.kind}")
    try:
        async with store.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            last = await last_seq_of_page(connection, query)
            return await stream_export(connection, query, last, args.format, write, bar.update)
    finally:
        bar.close()
        output.flush()


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Findings are machine output (stdout), one per line; the summary is for people (stderr),
    and with ``--json`` also a last JSON line on stdout. Exit status 1 on any finding."""
    from gateway.integrity_report import read_checkpoint_file, summary, verify

    verifier = _verifier(args, settings)
    outside = [note for path in args.checkpoint for note in read_checkpoint_file(path)]

    async def run() -> list:
        async with open_store(settings, projections=()) as session:
            return await verify(session.store, session.tenancy, args.tenant, verifier, outside)

    reports = asyncio.run(run())
    findings = [finding for report in reports for finding in report.findings]
    for finding in findings:
        item = finding.as_dict()
        if args.json:
            sys.stdout.write(orjson.dumps(item).decode() + "\n")
        else:
            where = " ".join(f"{k}={item[k]}" for k in ("tenant_id", "seq", "position", "event_id")
                             if item[k] is not None)
            print(f"{finding.kind} {where}: {finding.detail}")
    total = summary(reports, len(findings))
    if args.json:
        sys.stdout.write(orjson.dumps({"summary": total}).decode() + "\n")
    sys.stdout.flush()
    say(f"{total['tenants']} tenant(s), {total['sealed']} sealed event(s) checked against "
        f"{total['checkpoints']} signed checkpoint(s), {total['unsealed']} not sealed yet: "
        + (f"{len(findings)} finding(s)" if findings else "intact"))
    return 1 if findings else 0


def _verifier(args: argparse.Namespace, settings: Settings) -> Verifier:
    if args.public_key:
        try:
            return Verifier.parse(Path(args.public_key).read_text())
        except (NoteError, OSError) as error:
            raise SettingsError(f"{args.public_key}: {error}") from None
    # Trusting the key beside the database proves less than a copy kept elsewhere: say so.
    say(f"verifying with the key at {signing_key_path(settings)}; pass --public-key to use a copy kept elsewhere")
    return load_signing_key(settings, create=False)[0].verifier


def add_parser(commands: Any, parents: Parents) -> None:
    audit = commands.add_parser("audit", help="audit trail").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION")
    export = audit.add_parser("export", parents=[parents.common],
                              help="export the audit trail or provisioning log")
    export.add_argument("--tenant", required=True)
    export.add_argument("--kind", choices=("events", "provisioning", "checkpoints"), default="events")
    export.add_argument("--since", help="RFC 3339 time, inclusive")
    export.add_argument("--until", help="RFC 3339 time, exclusive")
    export.add_argument("--user", help="user id or userName")
    export.add_argument("--actor", help="token id or owner")
    export.add_argument("--action")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.set_defaults(run=cmd_export)

    verify = audit.add_parser("verify", parents=parents.data(),
                              help="check the stored history against its seals and signed checkpoints")
    verify.add_argument("--tenant", help="tenant name (default: every tenant)")
    verify.add_argument("--checkpoint", action="append", default=[], metavar="FILE",
                        help="signed checkpoints kept elsewhere: a signed note, or the JSON lines of "
                             "`audit export --kind checkpoints` (repeatable)")
    verify.add_argument("--public-key", metavar="FILE",
                        help="the verifier key `keys public` printed (default: this installation's key)")
    verify.set_defaults(run=cmd_verify)
