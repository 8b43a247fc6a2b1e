"""The audit trail and the provisioning log, folded from the log by one catch-up projector.

Each table numbers each tenant's rows with a gapless ``seq`` in the tenant's order; a tenant's
rows are written by one projector at a time (it holds the tenant's checkpoint), batch by
batch, so a consumer of that tenant resuming after ``seq`` N never misses a row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from domain.events import GROUP_EVENT_TYPES, REQUEST_EVENT_TYPES, USER_EVENT_TYPES
from domain.identifiers import fold
from eventstore import Envelope
from eventstore.crypto import ERASED
from projections.audit_vocabulary import REQUEST_RESULTS, Actor, audit_entry
from projections.personal import erase_attributes, erase_value

_USER_EVENTS = USER_EVENT_TYPES
_GROUP_EVENTS = GROUP_EVENT_TYPES
_REQUEST_EVENTS = REQUEST_EVENT_TYPES

# The ``*_folded`` columns hold ``domain.identifiers.fold`` of their neighbour: what the
# export's ``user=`` and ``actor=`` filters compare with (projections migration 0015).
AUDIT_COLUMNS = ("seq", "event_id", "position", "recorded_at", "tenant_id", "user_id", "user_name",
                 "action", "attribute", "old_value", "new_value", "actor_token_id",
                 "actor_description", "actor_owner", "request_id", "client_request_id", "source_ip", "user_agent",
                 "user_name_folded", "actor_owner_folded")
PROVISIONING_COLUMNS = ("seq", "id", "position", "recorded_at", "tenant_id", "request_id", "client_request_id",
                        "method",
                        "path", "action", "target_id", "target_user_name", "target_external_id",
                        "result", "status", "scim_type", "detail", "changed_attributes",
                        "ignored_attributes", "duration_ms", "actor_token_id", "actor_description",
                        "actor_owner", "source_ip", "user_agent", "target_user_name_folded", "actor_owner_folded")

# Who the users named in a batch were, by (tenant, user id) pairs.
_IDENTITIES = """
SELECT i.tenant_id, i.user_id, i.user_name, i.external_id
FROM audit_identities i
JOIN unnest($1::uuid[], $2::uuid[]) AS k(tenant_id, user_id) ON i.tenant_id = k.tenant_id AND i.user_id = k.user_id
"""
_SAVE_IDENTITY = """
INSERT INTO audit_identities (tenant_id, user_id, user_name, external_id) VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant_id, user_id) DO UPDATE SET user_name = EXCLUDED.user_name, external_id = EXCLUDED.external_id
"""
# ``seq`` numbers each tenant's rows (the export cursor, per tenant: projections 0013).
_AUDIT_SEQ = "SELECT coalesce(max(seq), 0) FROM audit_trail WHERE tenant_id = $1"
_PROVISIONING_SEQ = "SELECT coalesce(max(seq), 0) FROM provisioning_log WHERE tenant_id = $1"

# Erasure: every row written before it shows what a rebuild from the log, its key gone, shows.
_ERASED_ROWS = """
SELECT seq, action, attribute, old_value, new_value FROM audit_trail
WHERE tenant_id = $1 AND user_id = $2 AND action IN ('create', 'update', 'ignored_attribute')
"""
_ERASE_VALUES = "UPDATE audit_trail SET old_value = $3, new_value = $4 WHERE tenant_id = $1 AND seq = $2"
# $3 is ``[erased]``; a NULL stays NULL (a rebuild finds no value there either).
_ERASE_NAMES = """
UPDATE audit_trail SET user_name = $3, user_name_folded = $4
WHERE tenant_id = $1 AND user_id = $2 AND user_name IS NOT NULL
"""
_ERASE_PROVISIONING = """
UPDATE provisioning_log SET
    target_user_name = CASE WHEN target_user_name IS NULL THEN NULL ELSE $3 END,
    target_user_name_folded = CASE WHEN target_user_name IS NULL THEN NULL ELSE $4 END,
    target_external_id = CASE WHEN target_external_id IS NULL THEN NULL ELSE $3 END,
    detail = CASE WHEN result = 'failure' AND detail IS NOT NULL THEN $3 ELSE detail END
WHERE tenant_id = $1 AND target_id = $2
"""
_ERASE_IDENTITY = """
UPDATE audit_identities SET user_name = CASE WHEN user_name IS NULL THEN NULL ELSE $3 END,
    external_id = CASE WHEN external_id IS NULL THEN NULL ELSE $3 END
WHERE tenant_id = $1 AND user_id = $2
"""

# Rows older than migration 0015 get their folded keys here, by the distinct names of each
# tenant (a few per user, not one per row).
FOLD_MIGRATION = "projections/0015_audit_folded_keys"
_TENANTS = "SELECT tenant_id FROM tenants ORDER BY tenant_id"
_NAMES = """
SELECT user_name FROM audit_trail WHERE tenant_id = $1 AND user_name IS NOT NULL
UNION SELECT actor_owner FROM audit_trail WHERE tenant_id = $1 AND actor_owner IS NOT NULL
UNION SELECT target_user_name FROM provisioning_log WHERE tenant_id = $1 AND target_user_name IS NOT NULL
UNION SELECT actor_owner FROM provisioning_log WHERE tenant_id = $1 AND actor_owner IS NOT NULL
"""
_REFOLD = [f"""
UPDATE {table} SET {column}_folded = k.folded FROM unnest($2::text[], $3::text[]) AS k(name, folded)
WHERE {table}.tenant_id = $1 AND {table}.{column} = k.name
""" for table, column in (("audit_trail", "user_name"), ("audit_trail", "actor_owner"),
                          ("provisioning_log", "target_user_name"), ("provisioning_log", "actor_owner"))]

_METHOD_ACTIONS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}


def _folded(text: str | None) -> str | None:
    return None if text is None else fold(text)


def _duration_ms(envelope: Envelope) -> float | None:
    received = envelope.metadata.get("received_at")
    if not received:
        return None
    try:
        return round((envelope.recorded_at - datetime.fromisoformat(received)).total_seconds() * 1000, 3)
    except (TypeError, ValueError):
        return None


Identities = dict[tuple[uuid.UUID, uuid.UUID], tuple[str | None, str | None]]


@dataclass
class AuditRows:
    """What one batch of envelopes adds: rows in ``AUDIT_COLUMNS`` / ``PROVISIONING_COLUMNS``
    order, and who each user named in it is now."""

    audit: list[tuple[Any, ...]] = field(default_factory=list)
    provisioning: list[tuple[Any, ...]] = field(default_factory=list)
    # Who each user was, by (tenant, user id): a refusal in one tenant naming another
    # tenant's user id must not find that user (issue 12, item 1).
    identities: Identities = field(default_factory=dict)


def identity_keys(envelopes: Sequence[Envelope]) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """The (tenant, user id) pairs whose identities ``audit_rows`` needs to know beforehand."""
    keys = {(e.tenant_id, uuid.UUID(e.data["user_id"])) for e in envelopes if e.type in _USER_EVENTS}
    keys |= {(e.tenant_id, uuid.UUID(e.data["target_id"])) for e in envelopes
             if e.type in _REQUEST_EVENTS and _is_uuid(e.data.get("target_id"))}
    return keys


def audit_rows(envelopes: Sequence[Envelope], identities: Identities, audit_seq: dict[uuid.UUID, int],
               provisioning_seq: dict[uuid.UUID, int]) -> AuditRows:
    """The audit trail and provisioning log rows of ``envelopes`` (in their tenants' order).

    ``identities`` holds who the users of ``identity_keys(envelopes)`` were before the batch
    (absent: unknown); ``audit_seq`` and ``provisioning_seq`` each tenant's last ``seq``, and
    are advanced past the rows made. Pure: the caller reads and writes the tables.
    """
    rows = AuditRows(identities=dict(identities))
    for group in _requests(envelopes):
        tenant_id = group[0].tenant_id
        for envelope in group:
            row = _audit_row(rows.identities, envelope)
            if row is not None:
                audit_seq[tenant_id] = audit_seq.get(tenant_id, 0) + 1
                rows.audit.append((audit_seq[tenant_id], *row))
        row = _provisioning_row(rows.identities, group)
        if row is not None:
            provisioning_seq[tenant_id] = provisioning_seq.get(tenant_id, 0) + 1
            rows.provisioning.append((provisioning_seq[tenant_id], *row))
    return rows


class AuditProjection:
    """Writes ``audit_trail``, ``provisioning_log`` and its helper ``audit_identities``."""

    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        known: Identities = {}
        if keys := identity_keys(envelopes):
            tenants, users = zip(*keys, strict=True)
            found = await connection.fetch(_IDENTITIES, list(tenants), list(users))
            known = {(r["tenant_id"], r["user_id"]): (r["user_name"], r["external_id"]) for r in found}
        audit_seq: dict[uuid.UUID, int] = {}
        provisioning_seq: dict[uuid.UUID, int] = {}
        for tenant_id in {e.tenant_id for e in envelopes}:
            audit_seq[tenant_id] = await connection.fetchval(_AUDIT_SEQ, tenant_id)
            provisioning_seq[tenant_id] = await connection.fetchval(_PROVISIONING_SEQ, tenant_id)
        rows = audit_rows(envelopes, known, audit_seq, provisioning_seq)

        if rows.audit:
            await connection.copy_records_to_table("audit_trail", records=rows.audit, columns=AUDIT_COLUMNS)
        if rows.provisioning:
            await connection.copy_records_to_table(
                "provisioning_log", records=rows.provisioning, columns=PROVISIONING_COLUMNS)
        if rows.identities:
            await connection.executemany(
                _SAVE_IDENTITY, [(*key, *identity) for key, identity in rows.identities.items()])
        for envelope in envelopes:
            if envelope.type == "UserErased":
                await _erase(connection, envelope.tenant_id, uuid.UUID(envelope.data["user_id"]))


def _audit_row(identities: Identities, envelope: Envelope) -> tuple[Any, ...] | None:
    """The audit trail row of one event (without its ``seq``), in the shared vocabulary."""
    entry = audit_entry(envelope)
    if entry is None or not entry.in_trail:
        return None
    user_id = uuid.UUID(entry.user_id) if entry.user_id is not None else None
    if user_id is not None:
        key = (envelope.tenant_id, user_id)
        if envelope.type == "UserCreated":
            identities[key] = (envelope.data["user_name"], envelope.data["attributes"].get("externalId"))
        elif envelope.type == "AttributeChanged" and entry.attribute in ("userName", "externalId"):
            name, external = identities.get(key, (None, None))
            identities[key] = (entry.new, external) if entry.attribute == "userName" else (name, entry.new)
    user_name = identities.get((envelope.tenant_id, user_id), (None, None))[0] if user_id else None
    actor = entry.actor
    return (entry.event_id, entry.position, entry.recorded_at, entry.tenant_id, user_id, user_name,
            entry.action, entry.attribute, entry.old, entry.new, actor.token_id, actor.description, actor.owner,
            entry.request_id, entry.client_request_id, entry.source_ip, entry.user_agent,
            _folded(user_name), _folded(actor.owner))


def _provisioning_row(identities: Identities, group: list[Envelope]) -> tuple[Any, ...] | None:
    first = group[0]
    meta = first.metadata
    types = [e.type for e in group]
    if first.type in _REQUEST_EVENTS:
        data = first.data
        target = uuid.UUID(data["target_id"]) if _is_uuid(data.get("target_id")) else None
        action = _METHOD_ACTIONS.get(data["method"], data["method"].lower())
        result = REQUEST_RESULTS[first.type]
        status, scim_type, detail = data["status"], data.get("scim_type"), data.get("detail")
        if first.type == "RequestReplayed":
            detail = (f"a retried create, answered as request {data['original_request_id']} was "
                      f"(matched by {data['matched_by']}); nothing appended")
        changed: list[str] = []
        ignored: list[str] = []
        method, path = data["method"], data["path"]
    elif first.type in _GROUP_EVENTS:
        target = uuid.UUID(first.data["group_id"])
        action, status = {"GroupCreated": ("create", 201), "GroupDeleted": ("delete", 204)}.get(
            first.type, ("update", 200))
        result, scim_type, detail, ignored = "success", None, None, []
        changed = sorted({"members" if t.startswith("Members") else "displayName" if t == "GroupRenamed"
                          else "externalId" for t in types if t not in ("GroupCreated", "GroupDeleted")})
        method, path = meta.get("method"), meta.get("path")
    elif first.type in _USER_EVENTS and first.type != "UserErased":  # never a SCIM request
        target = uuid.UUID(first.data["user_id"])
        if "UserCreated" in types:
            action, status = "create", 201
        elif "UserDeleted" in types:
            action, status = "delete", 204
        elif "UserDeactivated" in types:
            action, status = "disable", 200
        elif "UserReactivated" in types:
            action, status = "enable", 200
        else:
            action, status = "update", 200
        result, scim_type, detail = "success", None, None
        changed = [e.data["attribute"] for e in group if e.type == "AttributeChanged"]
        changed += ["active"] * any(t in ("UserDeactivated", "UserReactivated") for t in types)
        ignored = [e.data["attribute"] for e in group if e.type == "AttributeIgnored"]
        method, path = meta.get("method"), meta.get("path")
    else:
        return None
    name, external = identities.get((first.tenant_id, target), (None, None)) if target else (None, None)
    actor = Actor.of(meta)
    return (first.event_id, first.position, first.recorded_at, first.tenant_id, meta.get("request_id"),
            meta.get("client_request_id"), method, path, action, target, name, external, result, status,
            scim_type, detail, changed, ignored, _duration_ms(first), actor.token_id, actor.description,
            actor.owner, meta.get("source_ip"), meta.get("user_agent"), _folded(name), _folded(actor.owner))


async def _erase(connection: asyncpg.Connection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    updates = []
    for row in await connection.fetch(_ERASED_ROWS, tenant_id, user_id):
        if row["action"] == "create":
            old, new = row["old_value"], erase_attributes(row["new_value"] or {})
        else:
            old, new = erase_value(row["attribute"], row["old_value"]), erase_value(row["attribute"], row["new_value"])
        updates.append((tenant_id, row["seq"], old, new))
    await connection.executemany(_ERASE_VALUES, updates)
    await connection.execute(_ERASE_NAMES, tenant_id, user_id, ERASED, fold(ERASED))
    await connection.execute(_ERASE_PROVISIONING, tenant_id, user_id, ERASED, fold(ERASED))
    await connection.execute(_ERASE_IDENTITY, tenant_id, user_id, ERASED)


async def refold(connection: asyncpg.Connection) -> None:
    """Fill the folded keys of rows written before migration 0015, tenant by tenant."""
    for tenant in await connection.fetch(_TENANTS):
        names = [row[0] for row in await connection.fetch(_NAMES, tenant["tenant_id"])]
        for statement in _REFOLD:
            await connection.execute(statement, tenant["tenant_id"], names, [fold(name) for name in names])


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _requests(envelopes: Sequence[Envelope]) -> list[list[Envelope]]:
    """Consecutive events of one append (same transaction and stream) form one request."""
    groups: list[list[Envelope]] = []
    for envelope in envelopes:
        last = groups[-1][-1] if groups else None
        if last is not None and (last.transaction_id, last.tenant_id, last.stream_id) == (
                envelope.transaction_id, envelope.tenant_id, envelope.stream_id):
            groups[-1].append(envelope)
        else:
            groups.append([envelope])
    return groups
