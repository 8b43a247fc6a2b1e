"""``scim-gateway audit export`` (and, beside it, the integrity commands)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, BinaryIO

from gateway.cli.output import UserError, say
from gateway.cli.parsers import Parents
from gateway.cli.session import open_store
from gateway.settings import Settings


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
    from gateway.audit_export import check_action, export_to

    check_action(args.kind, args.action)
    output = open_output(args.output)

    async def run() -> int:
        async with open_store(settings, projections=()) as session:
            return await export_to(session.store, args, output)

    try:
        count = asyncio.run(run())
    finally:
        if args.output:
            output.close()
    say(f"exported {count} row(s)")
    return 0


def add_parser(commands: Any, parents: Parents) -> None:
    audit = commands.add_parser("audit", help="audit trail").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION")
    export = audit.add_parser("export", parents=[parents.common],
                              help="export the audit trail or provisioning log")
    export.add_argument("--tenant", required=True)
    export.add_argument("--kind", choices=("events", "provisioning"), default="events")
    export.add_argument("--since", help="RFC 3339 time, inclusive")
    export.add_argument("--until", help="RFC 3339 time, exclusive")
    export.add_argument("--user", help="user id or userName")
    export.add_argument("--actor", help="token id or owner")
    export.add_argument("--action")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.set_defaults(run=cmd_export)
