"""Tenants and tokens: the administrative service behind the CLI and bearer authentication."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from eventstore import EventStore, ProjectionConflict
from gateway.domain import tenant as domain
from gateway.domain.codec import encode_all
from gateway.domain.errors import Reason, Rejected
from gateway.domain.policy import Policy, policy_for

TOKEN_PREFIX = "scgw_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant their token decides, and the token's owner and scopes."""

    tenant_id: uuid.UUID
    tenant_name: str
    token_id: uuid.UUID
    owner: str
    description: str
    scopes: frozenset[str]
    policy: Policy

    def actor(self) -> dict[str, str]:
        return {
            "token_id": str(self.token_id),
            "owner": self.owner,
            "token_description": self.description,
        }


@dataclass(frozen=True, slots=True)
class TenantRow:
    tenant_id: uuid.UUID
    name: str
    profile: str
    settings: dict[str, object]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_id: uuid.UUID
    tenant: str
    owner: str
    description: str
    scopes: list[str]
    issued_at: datetime
    revoked_at: datetime | None


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


_AUTHENTICATE = """
SELECT k.token_id, k.owner, k.description, k.scopes, t.tenant_id, t.name, t.profile, t.settings
FROM tokens k JOIN tenants t USING (tenant_id)
WHERE k.secret_sha256 = $1 AND k.revoked_at IS NULL
"""
_TENANT_BY_NAME = "SELECT tenant_id, name, profile, settings, created_at FROM tenants WHERE name = $1"
_TENANTS = "SELECT tenant_id, name, profile, settings, created_at FROM tenants ORDER BY name"
_TOKENS = """
SELECT k.token_id, t.name AS tenant, k.owner, k.description, k.scopes, k.issued_at, k.revoked_at
FROM tokens k JOIN tenants t USING (tenant_id)
WHERE t.name = $1 ORDER BY k.issued_at
"""
_TOKEN = """
SELECT k.token_id, k.tenant_id, k.revoked_at FROM tokens k WHERE k.token_id = $1
"""


class Tenancy:
    def __init__(self, store: EventStore, cache_seconds: float = 0.0) -> None:
        self.store = store
        self.pool = store.pool
        # Valid credentials are cached briefly; a revocation or policy change anywhere
        # clears the cache through NOTIFY (``forget``), the expiry bounds a lost notice.
        self.cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        # Set by the RevocationListener while it hears NOTIFY; otherwise nothing would clear
        # the cache, so it is neither read nor filled (fail closed).
        self.listening = False
        # Bumped by ``forget``: a lookup that raced a revocation does not cache its answer.
        self._generation = 0

    def forget(self, *_: object) -> None:
        self._generation += 1
        self._cache.clear()

    async def authenticate(self, secret: str) -> Principal | None:
        # Lookup by hash: the secret itself is never compared, so there is no timing oracle.
        digest = hash_secret(secret)
        caching = self.cache_seconds > 0 and self.listening
        cached = self._cache.get(digest) if caching else None
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        generation = self._generation
        row = await self.pool.fetchrow(_AUTHENTICATE, digest)
        if row is None:
            return None
        principal = self._principal(row)
        if caching and self.listening and generation == self._generation:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (principal, time.monotonic() + self.cache_seconds)
        return principal

    @staticmethod
    def _principal(row: asyncpg.Record) -> Principal:
        return Principal(
            tenant_id=row["tenant_id"],
            tenant_name=row["name"],
            token_id=row["token_id"],
            owner=row["owner"],
            description=row["description"],
            scopes=frozenset(row["scopes"]),
            policy=policy_for(row["profile"], row["settings"]),
        )

    async def tenant(self, name: str) -> TenantRow:
        row = await self.pool.fetchrow(_TENANT_BY_NAME, name)
        if row is None:
            raise Rejected(Reason.NOT_FOUND, f"no tenant named {name!r}")
        return TenantRow(**dict(row))

    async def tenants(self) -> list[TenantRow]:
        return [TenantRow(**dict(row)) for row in await self.pool.fetch(_TENANTS)]

    async def create_tenant(
        self, name: str, profile: str, actor: dict[str, str], default_profile: str | None = None
    ) -> TenantRow:
        tenant_id = uuid.uuid4()
        events: list[domain.TenantCreated | domain.TenantPolicyChanged] = []
        events += domain.create_tenant(str(tenant_id), name, profile)
        if default_profile is not None:
            state = domain.TenantState(str(tenant_id), name, profile, {})
            events += domain.change_settings(state, {"default_profile": default_profile})
        await self._append(f"tenant-{tenant_id}", 0, events, actor, tenant_id)
        return await self.tenant(name)

    async def set_tenant(self, name: str, assignments: dict[str, str], actor: dict[str, str]) -> TenantRow:
        row = await self.tenant(name)
        state = domain.TenantState(str(row.tenant_id), row.name, row.profile, dict(row.settings))
        events = domain.change_settings(state, assignments)
        await self._append(f"tenant-{row.tenant_id}", None, events, actor, row.tenant_id)
        self.forget()
        return await self.tenant(name)

    async def create_token(
        self,
        tenant: str,
        owner: str,
        description: str,
        scopes: tuple[str, ...],
        actor: dict[str, str],
    ) -> tuple[uuid.UUID, str]:
        """Issue a token; the secret is returned once and only its hash is stored."""
        row = await self.tenant(tenant)
        token_id = uuid.uuid4()
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        events = domain.issue_token(
            str(token_id), str(row.tenant_id), owner, description, scopes,
            hash_secret(secret).hex(),
        )
        await self._append(f"token-{token_id}", 0, events, actor, row.tenant_id)
        return token_id, secret

    async def tokens(self, tenant: str) -> list[TokenRow]:
        await self.tenant(tenant)
        return [TokenRow(**dict(row)) for row in await self.pool.fetch(_TOKENS, tenant)]

    async def _token(self, token_id: str) -> asyncpg.Record:
        try:
            parsed = uuid.UUID(token_id)
        except ValueError:
            raise Rejected(Reason.INVALID_VALUE, f"{token_id!r} is not a token id") from None
        row = await self.pool.fetchrow(_TOKEN, parsed)
        if row is None:
            raise Rejected(Reason.NOT_FOUND, f"no token with id {token_id}")
        return row

    async def token_tenant(self, token_id: str) -> uuid.UUID:
        """The tenant a token belongs to (tokens are looked up before the tenant is known)."""
        return (await self._token(token_id))["tenant_id"]

    async def revoke_token(self, token_id: str, actor: dict[str, str]) -> None:
        row = await self._token(token_id)
        parsed = row["token_id"]
        events = domain.revoke_token(token_id, row["revoked_at"] is not None)
        await self._append(f"token-{parsed}", None, events, actor, row["tenant_id"])
        self.forget()

    async def _append(
        self,
        stream_id: str,
        expected_version: int | None,
        events: list,
        actor: dict[str, str],
        tenant_id: uuid.UUID,
    ) -> None:
        try:
            await self.store.append(
                stream_id, expected_version, encode_all(events), {"actor": actor},
                tenant_id=tenant_id,
            )
        except ProjectionConflict as conflict:
            if conflict.constraint == "tenants_name_key":
                raise Rejected(Reason.UNIQUENESS, "a tenant with that name already exists") from None
            raise
