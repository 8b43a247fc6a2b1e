"""Console sessions in PostgreSQL: opened at sign-in, checked and touched per request, revoked.

The cookie carries a random secret; the table keeps its SHA-256 only, so a database dump
holds no usable session. A session is valid while it is not revoked, not past its absolute
expiry, used within the idle limit, and its token is still valid (checked by the caller
through ``Tenancy.principal_of``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

COOKIE = "__Host-scgw_session"

_OPEN = """
INSERT INTO console_sessions (session_sha256, tenant_id, token_id, csrf_token, expires_at, source_ip, user_agent)
VALUES ($1, $2, $3, $4, now() + $5::interval, $6, $7)
"""
# One round trip: the row is touched only while it is still live, and returned if so.
_TOUCH = """
UPDATE console_sessions SET last_seen_at = now()
WHERE session_sha256 = $1 AND revoked_at IS NULL AND expires_at > now() AND last_seen_at > now() - $2::interval
RETURNING tenant_id, token_id, csrf_token
"""
_REVOKE = "UPDATE console_sessions SET revoked_at = now() WHERE session_sha256 = $1 AND revoked_at IS NULL"


@dataclass(frozen=True, slots=True)
class Session:
    tenant_id: uuid.UUID
    token_id: uuid.UUID
    csrf_token: str


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class Sessions:
    def __init__(self, pool: asyncpg.Pool, idle: timedelta, absolute: timedelta) -> None:
        self.pool = pool
        self.idle = idle
        self.absolute = absolute

    async def open(self, tenant_id: uuid.UUID, token_id: uuid.UUID, source_ip: str | None,
                   user_agent: str | None) -> tuple[str, Session]:
        """A new session; returns the cookie secret (shown to nobody else) and the session."""
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        await self.pool.execute(_OPEN, _digest(secret), tenant_id, token_id, csrf, self.absolute,
                                source_ip, (user_agent or "")[:500])
        return secret, Session(tenant_id, token_id, csrf)

    async def touch(self, secret: str) -> Session | None:
        if not secret or len(secret) > 100:
            return None
        row = await self.pool.fetchrow(_TOUCH, _digest(secret), self.idle)
        return None if row is None else Session(row["tenant_id"], row["token_id"], row["csrf_token"])

    async def revoke(self, secret: str) -> None:
        if secret and len(secret) <= 100:
            await self.pool.execute(_REVOKE, _digest(secret))
