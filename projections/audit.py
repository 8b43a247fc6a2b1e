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
from eventstore import Envelope
from eventstore.crypto import ERASED
from projections.personal import erase_attributes, erase_value

_USER_EVENTS = USER_EVENT_TYPES
_GROUP_EVENTS = GROUP_EVENT_TYPES
_REQUEST_EVENTS = REQUEST_EVENT_TYPES
_REQUEST_RESULTS = {"RequestRejected": "failure", "RequestSkipped": "skipped", "RequestReplayed": "replayed"}

_AUDIT_COLUMNS = ("seq", "event_id", "position", "recorded_at", "tenant_id", "user_id", "user_name",
                  "action", "attribute", "old_value", "new_value", "actor_token_id",
                  "actor_description", "actor_owner", "request_id", "client_request_id", "source_ip", "user_agent")
_PROVISIONING_COLUMNS = ("seq", "id", "position", "recorded_at", "tenant_id", "request_id", "client_request_id",
                         "method",
                         "path", "action", "target_id", "target_user_name", "target_external_id",
                         "result", "status", "scim_type", "detail", "changed_attributes",
                         "ignored_attributes", "duration_ms", "actor_token_id", "actor_description",
                         "actor_owner", "source_ip", "user_agent")

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
UPDATE audit_trail SET user_name = $3 WHERE tenant_id = $1 AND user_id = $2 AND user_name IS NOT NULL
"""
_ERASE_PROVISIONING = """
UPDATE provisioning_log SET
    target_user_name = CASE WHEN target_user_name IS NULL THEN NULL ELSE $3 END,
    target_external_id = CASE WHEN target_external_id IS NULL THEN NULL ELSE $3 END,
    detail = CASE WHEN result = 'failure' AND detail IS NOT NULL THEN $3 ELSE detail END
WHERE tenant_id = $1 AND target_id = $2
"""
_ERASE_IDENTITY = """
UPDATE audit_identities SET user_name = CASE WHEN user_name IS NULL THEN NULL ELSE $3 END,
    external_id = CASE WHEN external_id IS NULL THEN NULL ELSE $3 END
WHERE tenant_id = $1 AND user_id = $2
"""

_METHOD_ACTIONS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}


def _actor(metadata: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    actor = metadata.get("actor") or {}
    return actor.get("token_id") or None, actor.get("token_description"), actor.get("owner")


def _duration_ms(envelope: Envelope) -> float | None:
    received = envelope.metadata.get("received_at")
    if not received:
        return None
    try:
        return round((envelope.recorded_at - datetime.fromisoformat(received)).total_seconds() * 1000, 3)
    except (TypeError, ValueError):
        return None


@dataclass
class _Batch:
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    provisioning: list[tuple[Any, ...]] = field(default_factory=list)
    # Who each user was, by (tenant, user id): a refusal in one tenant naming another
    # tenant's user id must not find that user (issue 12, item 1).
    identities: dict[tuple[uuid.UUID, uuid.UUID], tuple[str | None, str | None]] = field(default_factory=dict)


class AuditProjection:
    """Writes ``audit_trail``, ``provisioning_log`` and its helper ``audit_identities``."""

    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        batch = _Batch()
        keys = {(e.tenant_id, uuid.UUID(e.data["user_id"])) for e in envelopes if e.type in _USER_EVENTS}
        keys |= {(e.tenant_id, uuid.UUID(e.data["target_id"])) for e in envelopes
                 if e.type in _REQUEST_EVENTS and _is_uuid(e.data.get("target_id"))}
        if keys:
            tenants, users = zip(*keys, strict=True)
            rows = await connection.fetch(_IDENTITIES, list(tenants), list(users))
            batch.identities = {(r["tenant_id"], r["user_id"]): (r["user_name"], r["external_id"]) for r in rows}
        audit_seq: dict[uuid.UUID, int] = {}
        provisioning_seq: dict[uuid.UUID, int] = {}
        for tenant_id in {e.tenant_id for e in envelopes}:
            audit_seq[tenant_id] = await connection.fetchval(_AUDIT_SEQ, tenant_id)
            provisioning_seq[tenant_id] = await connection.fetchval(_PROVISIONING_SEQ, tenant_id)

        for group in _requests(envelopes):
            tenant_id = group[0].tenant_id
            for envelope in group:
                row = self._audit_row(batch, envelope)
                if row is not None:
                    audit_seq[tenant_id] += 1
                    batch.audit.append((audit_seq[tenant_id], *row))
            row = self._provisioning_row(batch, group)
            if row is not None:
                provisioning_seq[tenant_id] += 1
                batch.provisioning.append((provisioning_seq[tenant_id], *row))

        if batch.audit:
            await connection.copy_records_to_table("audit_trail", records=batch.audit, columns=_AUDIT_COLUMNS)
        if batch.provisioning:
            await connection.copy_records_to_table(
                "provisioning_log", records=batch.provisioning, columns=_PROVISIONING_COLUMNS)
        if batch.identities:
            await connection.executemany(
                _SAVE_IDENTITY, [(*key, *identity) for key, identity in batch.identities.items()])
        for envelope in envelopes:
            if envelope.type == "UserErased":
                await _erase(connection, envelope.tenant_id, uuid.UUID(envelope.data["user_id"]))

    def _audit_row(self, batch: _Batch, envelope: Envelope) -> tuple[Any, ...] | None:
        data = envelope.data
        user_id: uuid.UUID | None = None
        attribute: str | None = None
        old: Any = None
        new: Any = None
        match envelope.type:
            case "UserCreated":
                user_id = uuid.UUID(data["user_id"])
                identity = (data["user_name"], data["attributes"].get("externalId"))
                batch.identities[envelope.tenant_id, user_id] = identity
                action, new = "create", {**data["attributes"], "active": data["active"]}
            case "AttributeChanged":
                user_id = uuid.UUID(data["user_id"])
                action, attribute, old, new = "update", data["attribute"], data["old"], data["new"]
                name, external = batch.identities.get((envelope.tenant_id, user_id), (None, None))
                if attribute == "userName":
                    name = new
                elif attribute == "externalId":
                    external = new
                batch.identities[envelope.tenant_id, user_id] = (name, external)
            case "AttributeIgnored":
                user_id = uuid.UUID(data["user_id"])
                action, attribute, new = "ignored_attribute", data["attribute"], data["value"]
            case "UserDeactivated":
                user_id = uuid.UUID(data["user_id"])
                action, attribute, old, new = "deactivate", "active", True, False
            case "UserReactivated":
                user_id = uuid.UUID(data["user_id"])
                action, attribute, old, new = "reactivate", "active", False, True
            case "UserDeleted":
                user_id = uuid.UUID(data["user_id"])
                action = "delete"
            case "UserErased":
                user_id = uuid.UUID(data["user_id"])
                action, new = "user.erased", {"reason": data["reason"], "ticket": data.get("ticket")}
            case "GroupCreated":
                action, attribute = "group_create", "displayName"
                new = {"displayName": data["display_name"], "externalId": data["external_id"],
                       "id": data["group_id"]}
            case "GroupRenamed":
                action, attribute, old, new = "group_rename", "displayName", data["old"], data["new"]
            case "GroupExternalIdChanged":
                action, attribute, old, new = "group_update", "externalId", data["old"], data["new"]
            case "MembersAdded":
                action, attribute, new = "members_added", "members", {"group_id": data["group_id"],
                                                                      "member_ids": data["member_ids"]}
            case "MembersRemoved":
                action, attribute, old = "members_removed", "members", {"group_id": data["group_id"],
                                                                        "member_ids": data["member_ids"]}
            case "GroupDeleted":
                action, new = "group_delete", {"group_id": data["group_id"]}
            case "TokenIssued":
                action = "token_issued"
                new = {k: data[k] for k in ("token_id", "owner", "description", "scopes")}
                new["expires_at"] = data.get("expires_at")
            case "TokenRevoked":
                action, new = "token_revoked", {"token_id": data["token_id"]}
            case "TokenRotated":
                action = "token_rotated"
                new = {k: data[k] for k in ("token_id", "previous_valid_until", "expires_at")}
            case "TenantCreated":
                action, new = "tenant_created", {"name": data["name"], "profile": data["profile"]}
            case "TenantPolicyChanged":
                action, attribute, old, new = "tenant_policy_changed", data["setting"], data["old"], data["new"]
            case _:
                return None
        user_name = batch.identities.get((envelope.tenant_id, user_id), (None, None))[0] if user_id else None
        token_id, description, owner = _actor(envelope.metadata)
        meta = envelope.metadata
        return (envelope.event_id, envelope.position, envelope.recorded_at, envelope.tenant_id, user_id,
                user_name, action, attribute, old, new, token_id, description, owner,
                meta.get("request_id"), meta.get("client_request_id"), meta.get("source_ip"), meta.get("user_agent"))

    def _provisioning_row(self, batch: _Batch, group: list[Envelope]) -> tuple[Any, ...] | None:
        first = group[0]
        meta = first.metadata
        types = [e.type for e in group]
        if first.type in _REQUEST_EVENTS:
            data = first.data
            target = uuid.UUID(data["target_id"]) if _is_uuid(data.get("target_id")) else None
            action = _METHOD_ACTIONS.get(data["method"], data["method"].lower())
            result = _REQUEST_RESULTS[first.type]
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
        name, external = batch.identities.get((first.tenant_id, target), (None, None)) if target else (None, None)
        token_id, description, owner = _actor(meta)
        return (first.event_id, first.position, first.recorded_at, first.tenant_id, meta.get("request_id"),
                meta.get("client_request_id"), method, path, action, target, name, external, result, status,
                scim_type, detail, changed, ignored, _duration_ms(first), token_id, description, owner,
                meta.get("source_ip"), meta.get("user_agent"))


async def _erase(connection: asyncpg.Connection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    updates = []
    for row in await connection.fetch(_ERASED_ROWS, tenant_id, user_id):
        if row["action"] == "create":
            old, new = row["old_value"], erase_attributes(row["new_value"] or {})
        else:
            old, new = erase_value(row["attribute"], row["old_value"]), erase_value(row["attribute"], row["new_value"])
        updates.append((tenant_id, row["seq"], old, new))
    await connection.executemany(_ERASE_VALUES, updates)
    await connection.execute(_ERASE_NAMES, tenant_id, user_id, ERASED)
    await connection.execute(_ERASE_PROVISIONING, tenant_id, user_id, ERASED)
    await connection.execute(_ERASE_IDENTITY, tenant_id, user_id, ERASED)


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
