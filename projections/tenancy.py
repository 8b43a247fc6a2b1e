"""Tenants and tokens tables, kept inline so a new token works the moment it is printed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from eventstore import Envelope

_TENANT_CREATED = """
INSERT INTO tenants (tenant_id, name, profile, created_at, position)
VALUES ($1, $2, $3, $4, $5)
"""
_POLICY_CHANGED_PROFILE = "UPDATE tenants SET profile = $2, position = $3 WHERE tenant_id = $1"
_POLICY_CHANGED_SETTING = """
UPDATE tenants SET settings = jsonb_set(settings, ARRAY[$2::text], $3::jsonb), position = $4
WHERE tenant_id = $1
"""
_TOKEN_ISSUED = """
INSERT INTO tokens (token_id, tenant_id, owner, description, scopes, secret_sha256,
                    issued_at, position, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::timestamptz)
"""
_TOKEN_REVOKED = "UPDATE tokens SET revoked_at = $2, position = $3 WHERE token_id = $1"
_TOKEN_ROTATED = """
UPDATE tokens SET previous_secret_sha256 = secret_sha256, secret_sha256 = $2,
    previous_valid_until = $3::text::timestamptz, expires_at = $4::text::timestamptz, position = $5
WHERE token_id = $1
"""

# Delivered at commit to every gateway process, so cached credentials are dropped at once.
TENANCY_CHANNEL = "scim_gateway_tenancy"
_NOTIFY = f"SELECT pg_notify('{TENANCY_CHANNEL}', $1)"


class TenancyProjection:
    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            data = envelope.data
            match envelope.type:
                case "TenantCreated":
                    await connection.execute(
                        _TENANT_CREATED, uuid.UUID(data["tenant_id"]), data["name"],
                        data["profile"], envelope.recorded_at, envelope.position,
                    )
                case "TenantPolicyChanged" if data["setting"] == "profile":
                    await connection.execute(
                        _POLICY_CHANGED_PROFILE, uuid.UUID(data["tenant_id"]), data["new"],
                        envelope.position,
                    )
                case "TenantPolicyChanged":
                    await connection.execute(
                        _POLICY_CHANGED_SETTING, uuid.UUID(data["tenant_id"]), data["setting"],
                        data["new"], envelope.position,
                    )
                case "TokenIssued":
                    await connection.execute(
                        _TOKEN_ISSUED, uuid.UUID(data["token_id"]), uuid.UUID(data["tenant_id"]),
                        data["owner"], data["description"], list(data["scopes"]),
                        bytes.fromhex(data["secret_sha256"]), envelope.recorded_at,
                        envelope.position, data.get("expires_at"),
                    )
                case "TokenRevoked":
                    await connection.execute(
                        _TOKEN_REVOKED, uuid.UUID(data["token_id"]), envelope.recorded_at,
                        envelope.position,
                    )
                case "TokenRotated":
                    await connection.execute(
                        _TOKEN_ROTATED, uuid.UUID(data["token_id"]), bytes.fromhex(data["secret_sha256"]),
                        data["previous_valid_until"], data["expires_at"], envelope.position,
                    )
            if envelope.type in ("TokenRevoked", "TokenRotated", "TenantPolicyChanged"):
                await connection.execute(_NOTIFY, envelope.type)
