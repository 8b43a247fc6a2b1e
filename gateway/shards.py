"""The gateway's databases: the home pool and, with ``SCIM_GATEWAY_SHARDS``, one per shard."""

from __future__ import annotations

import asyncpg

from eventstore.directory import HOME, Shards, parse_shards
from eventstore.pool import create_pool
from gateway.database import migrate_database
from gateway.settings import Settings


async def open_shards(home: asyncpg.Pool, settings: Settings, *, migrate: bool = True) -> Shards:
    """Migrate (unless told not to: a command other than ``serve``) and open each configured
    shard; read the tenant directory. A shard that is down at start fails the start: its
    tenants could not be served."""
    pools = {HOME: home}
    try:
        for name, dsn in parse_shards(settings.shards).items():
            if migrate:
                await migrate_database(dsn)
            pools[name] = await create_pool(dsn, min_size=1, max_size=settings.pool_max_size,
                                            command_timeout=settings.db_timeout)
        shards = Shards(pools)
        await shards.load()
    except BaseException:
        for name, pool in pools.items():
            if name != HOME:
                await pool.close()
        raise
    return shards
