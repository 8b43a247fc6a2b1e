"""``scim-gateway audit verify``, ``keys public`` and the checkpoint export (docs/integrity.md).

Findings are machine output (stdout), one per line; the summary is for people (stderr), and
with ``--json`` also a last JSON line on stdout. Exit status 1 on any finding.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import uuid
from pathlib import Path
from typing import IO, Any

import asyncpg
import orjson

from eventstore import EventStore
from eventstore.pool import create_pool
from eventstore.signed_note import NoteError, Verifier
from gateway.database import migrate_database
from gateway.settings import Settings, SettingsError
from gateway.signing_key import load_signing_key, signing_key_path
from gateway.tenancy import Tenancy
from gateway.timestamps import timestamp
from projections import sealer
from projections.integrity import TenantReport, sealed_tenants, verify_tenant


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_parsers(commands: argparse._SubParsersAction, audit: argparse._SubParsersAction,
                common: argparse.ArgumentParser) -> None:
    verify = audit.add_parser("verify", parents=[common],
                              help="check the stored history against its seals and signed checkpoints")
    verify.add_argument("--tenant", help="tenant name (default: every tenant)")
    verify.add_argument("--checkpoint", action="append", default=[], metavar="FILE",
                        help="signed checkpoints kept elsewhere: a signed note, or the JSON lines of "
                             "`audit export --kind checkpoints` (repeatable)")
    verify.add_argument("--public-key", metavar="FILE",
                        help="the verifier key `keys public` printed (default: this installation's key)")
    verify.set_defaults(run=cmd_audit_verify)

    keys = commands.add_parser("keys", help="keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION")
    public = keys.add_parser("public", parents=[common], help="print the checkpoint signing key's public half")
    public.set_defaults(run=cmd_keys_public)


def cmd_keys_public(args: argparse.Namespace, settings: Settings, dsn: str | None = None) -> int:
    key, created = load_signing_key(settings)
    if created:
        _say(f"made a new checkpoint signing key at {signing_key_path(settings)}; keep it outside the database")
    verifier = key.verifier
    if args.json:
        sys.stdout.write(orjson.dumps({"name": verifier.name, "key_id": verifier.key_id.hex(),
                                       "verifier_key": verifier.text()}).decode() + "\n")
    else:
        print(verifier.text(), flush=True)
    return 0


def _verifier(args: argparse.Namespace, settings: Settings) -> Verifier:
    if args.public_key:
        try:
            return Verifier.parse(Path(args.public_key).read_text())
        except NoteError as error:
            raise SettingsError(f"{args.public_key}: {error}") from None
    # Trusting the key beside the database proves less than a copy kept elsewhere: say so.
    _say(f"verifying with the key at {signing_key_path(settings)}; pass --public-key to use a copy kept elsewhere")
    return load_signing_key(settings, create=False)[0].verifier


def read_checkpoint_file(path: str) -> list[tuple[str, str]]:
    """(source, signed note) pairs from a file holding one note, or export JSON lines."""
    text = Path(path).read_text()
    if text.lstrip().startswith("{"):
        notes = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    notes.append((f"{path}:{number}", orjson.loads(line)["note"]))
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    raise SettingsError(f"{path}:{number}: not a checkpoint export line") from None
        return notes
    return [(path, text)]


def cmd_audit_verify(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    verifier = _verifier(args, settings)
    outside = [note for path in args.checkpoint for note in read_checkpoint_file(path)]
    reports = asyncio.run(_verify(dsn, args.tenant, verifier, outside))
    findings = [finding for report in reports for finding in report.findings]
    for finding in findings:
        item = finding.as_dict()
        if args.json:
            sys.stdout.write(orjson.dumps(item).decode() + "\n")
        else:
            where = " ".join(f"{k}={item[k]}" for k in ("tenant_id", "seq", "position", "event_id")
                             if item[k] is not None)
            print(f"{finding.kind} {where}: {finding.detail}")
    summary = _summary(reports, len(findings))
    if args.json:
        sys.stdout.write(orjson.dumps({"summary": summary}).decode() + "\n")
    sys.stdout.flush()
    _say(f"{summary['tenants']} tenant(s), {summary['sealed']} sealed event(s) checked against "
         f"{summary['checkpoints']} signed checkpoint(s), {summary['unsealed']} not sealed yet: "
         + (f"{len(findings)} finding(s)" if findings else "intact"))
    return 1 if findings else 0


def _summary(reports: list[TenantReport], findings: int) -> dict[str, Any]:
    by_kind: dict[str, int] = {}
    for report in reports:
        for finding in report.findings:
            by_kind[finding.kind] = by_kind.get(finding.kind, 0) + 1
    return {"tenants": len(reports), "events": sum(r.events for r in reports),
            "sealed": sum(r.sealed for r in reports), "unsealed": sum(r.unsealed for r in reports),
            "checkpoints": sum(r.checkpoints for r in reports), "findings": findings, "by_kind": by_kind,
            "intact": findings == 0}


async def _verify(dsn: str, tenant: str | None, verifier: Verifier,
                  outside: list[tuple[str, str]]) -> list[TenantReport]:
    await migrate_database(dsn)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        store = EventStore(pool)
        tenancy = Tenancy(store)
        if tenant is not None:
            tenant_ids = [(await tenancy.tenant(tenant)).tenant_id]
        else:
            known = [t.tenant_id for t in await tenancy.tenants()]
            tenant_ids = list(dict.fromkeys([*known, *await sealed_tenants(pool)]))
        return [await verify_tenant(store, tenant_id, verifier, outside) for tenant_id in tenant_ids]
    finally:
        await pool.close()


async def export_checkpoints(pool: asyncpg.Pool, tenant_id: uuid.UUID, output: IO[bytes]) -> int:
    """Every checkpoint of a tenant as JSON lines, for ``audit export --kind checkpoints``."""
    count = 0
    after = 0
    while rows := await sealer.checkpoints(pool, tenant_id, after, 1000):
        for row in rows:
            output.write(orjson.dumps({
                "tenant_id": str(tenant_id), "tree_size": row["tree_size"],
                "root_hash": row["root_hash"], "signed_at": timestamp(row["signed_at"]), "note": row["note"],
            }, default=_b64) + b"\n")
            count += 1
        after = rows[-1]["tree_size"]
    return count


def _b64(value: object) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)
