import asyncio

import asyncpg

from gateway.database import migrate_database


async def test_migrating_twice_applies_nothing_the_second_time(database_url: str):
    assert await migrate_database(database_url) == []


async def test_two_processes_migrating_at_once_apply_each_migration_once(
    database_url: str, pool: asyncpg.Pool
):
    await pool.execute("DROP TABLE schema_migrations")
    await pool.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")

    first, second = await asyncio.gather(
        migrate_database(database_url), migrate_database(database_url)
    )

    assert sorted(first + second) == sorted(set(first + second))
    assert len(first + second) == await pool.fetchval("SELECT count(*) FROM schema_migrations")
