"""Tenants and tokens: the administrative service behind the CLI and bearer authentication."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from domain import tenant as domain
from domain.errors import Reason, Rejected
from domain.policy import Policy, policy_for
from domain.streams import tenant_stream, token_stream
from eventstore import EventStore, ProjectionConflict
from eventstore.directory import home_of
from eventstore.errors import DATABASE_ERRORS
from projections.codec import encode_all

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
    expires_at: datetime | None
    last_used_at: datetime | None


def _new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


# The current secret, or a rotated token's previous one within its grace period; never
# a revoked or expired token. ``valid_until`` bounds how long the answer may be cached.
_AUTHENTICATE = """
SELECT k.token_id, k.owner, k.description, k.scopes, t.tenant_id, t.name, t.profile, t.settings,
       least(k.expires_at, CASE WHEN k.secret_sha256 = $1 THEN NULL ELSE k.previous_valid_until END)
           AS valid_until
FROM tokens k JOIN tenants t USING (tenant_id)
WHERE (k.secret_sha256 = $1 OR (k.previous_secret_sha256 = $1 AND k.previous_valid_until > now()))
  AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
"""
_PRINCIPAL_BY_TOKEN_ID = """
SELECT k.token_id, k.owner, k.description, k.scopes, t.tenant_id, t.name, t.profile, t.settings
FROM tokens k JOIN tenants t USING (tenant_id)
WHERE k.token_id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
"""
# At most once a minute per token and process, in the background (``_note_use``).
_TOKEN_USED = """
INSERT INTO token_usage (token_id, last_used_at) VALUES ($1, now())
ON CONFLICT (token_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at
"""
USE_RECORD_SECONDS = 60.0
_TENANT_BY_NAME = "SELECT tenant_id, name, profile, settings, created_at FROM tenants WHERE name = $1"
_TENANTS = "SELECT tenant_id, name, profile, settings, created_at FROM tenants ORDER BY name"
_TOKENS = """
SELECT k.token_id, t.name AS tenant, k.owner, k.description, k.scopes, k.issued_at, k.revoked_at,
       k.expires_at, u.last_used_at
FROM tokens k JOIN tenants t USING (tenant_id) LEFT JOIN token_usage u USING (token_id)
WHERE t.name = $1 ORDER BY k.issued_at
"""
_TOKEN = """
SELECT k.token_id, k.tenant_id, k.revoked_at, k.expires_at FROM tokens k WHERE k.token_id = $1
"""
_TOKEN_BY_SECRET = """
SELECT k.token_id FROM tokens k WHERE k.secret_sha256 = $1 OR k.previous_secret_sha256 = $1
"""


class Tenancy:
    def __init__(self, store: EventStore, cache_seconds: float = 0.0) -> None:
        self.store = store
        self.pool = home_of(store.pool)  # tenants and tokens: reference data
        # Valid credentials are cached briefly; a revocation or policy change anywhere
        # clears the cache through NOTIFY (``forget``), the expiry bounds a lost notice.
        self.cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        # Set by the RevocationListener while it hears NOTIFY; otherwise nothing would clear
        # the cache, so it is neither read nor filled (fail closed).
        self.listening = False
        # Bumped by ``forget``: a lookup that raced a revocation does not cache its answer.
        self._generation = 0
        # token id -> monotonic time its use was last written; the writes run as tasks.
        self._use_noted: dict[uuid.UUID, float] = {}
        self._use_writes: set[asyncio.Task[None]] = set()

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
        self._note_use(principal.token_id)
        if caching and self.listening and generation == self._generation:
            if len(self._cache) > 10_000:
                self._cache.clear()
            seconds = self.cache_seconds
            if row["valid_until"] is not None:
                seconds = min(seconds, (row["valid_until"] - datetime.now(UTC)).total_seconds())
            self._cache[digest] = (principal, time.monotonic() + seconds)
        return principal

    async def principal_of(self, token_id: uuid.UUID) -> Principal | None:
        """The principal of a token that is still valid (the console's session holds its id)."""
        row = await self.pool.fetchrow(_PRINCIPAL_BY_TOKEN_ID, token_id)
        return None if row is None else self._principal(row)
    def _note_use(self, token_id: uuid.UUID) -> None:
        """Record the token's last use off the request's path, at most once a minute.

        Best effort: a lost write costs a minute of precision in ``token list``, never a request.
        """
        now = time.monotonic()
        if now - self._use_noted.get(token_id, -USE_RECORD_SECONDS) < USE_RECORD_SECONDS:
            return
        self._use_noted[token_id] = now
        if len(self._use_noted) > 10_000:
            self._use_noted = {token_id: now}
        task = asyncio.get_running_loop().create_task(self._write_use(token_id))
        self._use_writes.add(task)
        task.add_done_callback(self._use_writes.discard)

    async def _write_use(self, token_id: uuid.UUID) -> None:
        try:
            await self.pool.execute(_TOKEN_USED, token_id)
        except DATABASE_ERRORS:
            self._use_noted.pop(token_id, None)

    async def flush_use(self) -> None:
        """Wait for pending last-used writes (before the pool closes, and in tests)."""
        if self._use_writes:
            await asyncio.gather(*self._use_writes, return_exceptions=True)

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
        await self._append(tenant_stream(tenant_id), 0, events, actor, tenant_id)
        return await self.tenant(name)

    async def set_tenant(self, name: str, assignments: dict[str, str], actor: dict[str, str]) -> TenantRow:
        row = await self.tenant(name)
        state = domain.TenantState(str(row.tenant_id), row.name, row.profile, dict(row.settings))
        events = domain.change_settings(state, assignments)
        await self._append(tenant_stream(row.tenant_id), None, events, actor, row.tenant_id)
        self.forget()
        return await self.tenant(name)

    async def create_token(
        self,
        tenant: str,
        owner: str,
        description: str,
        scopes: tuple[str, ...],
        actor: dict[str, str],
        expires_at: datetime | None = None,
    ) -> tuple[uuid.UUID, str]:
        """Issue a token; the secret is returned once and only its hash is stored."""
        row = await self.tenant(tenant)
        token_id = uuid.uuid4()
        secret = _new_secret()
        events = domain.issue_token(
            str(token_id), str(row.tenant_id), owner, description, scopes,
            hash_secret(secret).hex(), expires_at,
        )
        await self._append(token_stream(token_id), 0, events, actor, row.tenant_id)
        return token_id, secret

    async def token(self, token_id: uuid.UUID) -> TokenRow:
        row = await self.pool.fetchrow(_TOKENS.replace("WHERE t.name = $1", "WHERE k.token_id = $1"), token_id)
        if row is None:
            raise Rejected(Reason.NOT_FOUND, f"no token with id {token_id}")
        return TokenRow(**dict(row))

    async def rotate_token(self, token_id: str, grace: timedelta, actor: dict[str, str],
                           expires_at: datetime | None = None) -> tuple[uuid.UUID, str]:
        """A new secret for the token; the old one keeps working for ``grace``. Returns the
        token's id and the new secret."""
        parsed, row = await self._token_row(token_id)
        secret = _new_secret()
        events = domain.rotate_token(
            str(parsed), row["revoked_at"] is not None, hash_secret(secret).hex(), grace,
            expires_at if expires_at is not None else row["expires_at"], datetime.now(UTC))
        await self._append(token_stream(parsed), None, events, actor, row["tenant_id"])
        self.forget()
        return parsed, secret

    async def tokens(self, tenant: str) -> list[TokenRow]:
        await self.tenant(tenant)
        return [TokenRow(**dict(row)) for row in await self.pool.fetch(_TOKENS, tenant)]

    async def token_tenant(self, token_id: str) -> uuid.UUID:
        """The tenant a token belongs to (tokens are looked up before the tenant is known)."""
        return (await self._token_row(token_id))[1]["tenant_id"]

    async def revoke_token(self, token: str, actor: dict[str, str]) -> uuid.UUID:
        """Revoke by id, or by secret (a leaked secret is what an admin has in hand); the
        secret is never repeated in a message. Returns the token id."""
        parsed, row = await self._token_row(token)
        events = domain.revoke_token(str(parsed), row["revoked_at"] is not None)
        await self._append(token_stream(parsed), None, events, actor, row["tenant_id"])
        self.forget()
        return parsed

    async def _token_row(self, token: str) -> tuple[uuid.UUID, asyncpg.Record]:
        if token.startswith(TOKEN_PREFIX):
            found = await self.pool.fetchval(_TOKEN_BY_SECRET, hash_secret(token))
            if found is None:
                raise Rejected(Reason.NOT_FOUND, "no token has that secret")
            parsed = found
        else:
            try:
                parsed = uuid.UUID(token)
            except ValueError:
                raise Rejected(Reason.INVALID_VALUE,
                               "not a token id: give the id from `token list` (or the token's secret)") from None
        row = await self.pool.fetchrow(_TOKEN, parsed)
        if row is None:
            raise Rejected(Reason.NOT_FOUND, f"no token with id {parsed}")
        return parsed, row

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
