"""Which database holds each tenant, and the pool that reaches it (issue 19's shard seam).

``Shards.pool_for(tenant)`` is the one place that decides. By default there is one pool, the
home database, and every tenant lives there. With more databases (``SCIM_GATEWAY_SHARDS``),
``tenant_directory`` on the home database names each placed tenant's shard; tenants, tokens
and the directory itself stay on the home database (Citus would make the first two reference
tables and need no directory).

``RoutingPool`` stands where one pool stood, so the code above the store does not change: a
call goes to the pool of the tenant the current request is for (``current_tenant``, set by
the authentication middleware), or to the home database outside a tenant's request.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg

HOME = "home"

current_tenant: ContextVar[uuid.UUID | None] = ContextVar("scim_gateway_current_tenant", default=None)

# Every placement at once: a deliberate fan-out, read at start and after a move.
_LOAD = "SELECT tenant_id, shard FROM tenant_directory"
_PLACE = """
INSERT INTO tenant_directory (tenant_id, shard) VALUES ($1, $2)
ON CONFLICT (tenant_id) DO UPDATE SET shard = EXCLUDED.shard, placed_at = now()
"""


def parse_shards(text: str) -> dict[str, str]:
    """``name=dsn;name=dsn`` (the ``SCIM_GATEWAY_SHARDS`` setting) as {name: dsn}."""
    shards: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, separator, dsn = item.partition("=")
        if not separator or not name.strip() or not dsn.strip():
            raise ValueError(f"a shard is name=dsn, not {item!r}")
        if name.strip() == HOME:
            raise ValueError(f"{HOME!r} is the main database's name; choose another")
        shards[name.strip()] = dsn.strip()
    return shards


@contextmanager
def tenant_scope(tenant_id: uuid.UUID | None) -> Iterator[None]:
    """Route the database calls made inside to ``tenant_id``'s database."""
    token = current_tenant.set(tenant_id)
    try:
        yield
    finally:
        current_tenant.reset(token)


def enter_tenant(tenant_id: uuid.UUID) -> None:
    """Route the database calls of the rest of the current task to ``tenant_id``'s database: a
    command-line run that has resolved the one tenant it works on."""
    current_tenant.set(tenant_id)


class Shards:
    def __init__(self, pools: Mapping[str, asyncpg.Pool], placements: Mapping[uuid.UUID, str] | None = None) -> None:
        if HOME not in pools:
            raise ValueError(f"the {HOME!r} pool is required")
        self.pools = dict(pools)
        self.placements = dict(placements or {})

    @classmethod
    def single(cls, pool: asyncpg.Pool) -> Shards:
        return cls({HOME: pool})

    @property
    def home(self) -> asyncpg.Pool:
        return self.pools[HOME]

    def shard_of(self, tenant_id: uuid.UUID) -> str:
        return self.placements.get(tenant_id, HOME)

    def pool_for(self, tenant_id: uuid.UUID | None) -> asyncpg.Pool:
        """The pool of the database holding ``tenant_id`` (the home database for None)."""
        return self.home if tenant_id is None else self.pools[self.shard_of(tenant_id)]

    async def load(self) -> None:
        """Read the directory from the home database."""
        rows = await self.home.fetch(_LOAD)
        self.placements = {row["tenant_id"]: row["shard"] for row in rows}

    async def place(self, tenant_id: uuid.UUID, shard: str) -> None:
        """Record that ``tenant_id`` lives on ``shard`` from now on."""
        if shard not in self.pools:
            raise ValueError(f"no shard named {shard!r}")
        await self.home.execute(_PLACE, tenant_id, shard)
        self.placements[tenant_id] = shard

    async def close(self) -> None:
        """Close every pool; one whose server is gone is terminated instead of waited for."""
        for pool in self.pools.values():
            try:
                async with asyncio.timeout(10):
                    await pool.close()
            except (TimeoutError, OSError, asyncpg.InterfaceError):
                pool.terminate()


def home_of(pool: Any) -> Any:
    """The home database's pool behind ``pool`` (``pool`` itself when it does not route): for
    reference data (tenants, tokens, console sessions), wherever the current tenant lives."""
    return pool.shards.home if isinstance(pool, RoutingPool) else pool


class RoutingPool:
    """The current tenant's pool, behind the part of asyncpg's Pool interface the code uses."""

    def __init__(self, shards: Shards) -> None:
        self.shards = shards

    def current(self) -> asyncpg.Pool:
        return self.shards.pool_for(current_tenant.get())

    def acquire(self, *, timeout: float | None = None) -> Any:
        return self.current().acquire(timeout=timeout)

    async def release(self, connection: asyncpg.Connection) -> None:
        await self.current().release(connection)

    async def fetch(self, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        return await self.current().fetch(*args, **kwargs)

    async def fetchrow(self, *args: Any, **kwargs: Any) -> asyncpg.Record | None:
        return await self.current().fetchrow(*args, **kwargs)

    async def fetchval(self, *args: Any, **kwargs: Any) -> Any:
        return await self.current().fetchval(*args, **kwargs)

    async def execute(self, *args: Any, **kwargs: Any) -> str:
        return await self.current().execute(*args, **kwargs)

    async def executemany(self, *args: Any, **kwargs: Any) -> None:
        await self.current().executemany(*args, **kwargs)

    # The pool gauges on /metrics describe the home database's pool.
    def get_size(self) -> int:
        return self.shards.home.get_size()

    def get_max_size(self) -> int:
        return self.shards.home.get_max_size()

    def get_idle_size(self) -> int:
        return self.shards.home.get_idle_size()

    def get_min_size(self) -> int:
        return self.shards.home.get_min_size()

    async def close(self) -> None:
        await self.shards.close()
