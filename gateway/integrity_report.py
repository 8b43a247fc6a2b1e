"""What ``audit verify`` and ``audit export --kind checkpoints`` report (docs/integrity.md);
their command lines are in ``gateway.cli.audit`` and ``gateway.cli.keys``."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import IO, Any

import asyncpg
import orjson

from eventstore import EventStore
from eventstore.directory import tenant_scope
from eventstore.signed_note import Verifier
from gateway.settings import SettingsError
from gateway.tenancy import Tenancy
from gateway.timestamps import timestamp
from projections import sealer
from projections.integrity import TenantReport, sealed_tenants, verify_tenant


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


def summary(reports: list[TenantReport], findings: int) -> dict[str, Any]:
    by_kind: dict[str, int] = {}
    for report in reports:
        for finding in report.findings:
            by_kind[finding.kind] = by_kind.get(finding.kind, 0) + 1
    return {"tenants": len(reports), "events": sum(r.events for r in reports),
            "sealed": sum(r.sealed for r in reports), "unsealed": sum(r.unsealed for r in reports),
            "checkpoints": sum(r.checkpoints for r in reports), "findings": findings, "by_kind": by_kind,
            "intact": findings == 0}


async def verify(store: EventStore, tenancy: Tenancy, tenant: str | None, verifier: Verifier,
                 outside: list[tuple[str, str]]) -> list[TenantReport]:
    """Every tenant's (or one tenant's) history checked against its seals and checkpoints."""
    if tenant is not None:
        tenant_ids = [(await tenancy.tenant(tenant)).tenant_id]
    else:
        known = [t.tenant_id for t in await tenancy.tenants()]
        tenant_ids = list(dict.fromkeys([*known, *await sealed_tenants(store.pool)]))
    reports = []
    for tenant_id in tenant_ids:
        with tenant_scope(tenant_id):  # each tenant's seals are on its own database
            reports.append(await verify_tenant(store, tenant_id, verifier, outside))
    return reports


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
