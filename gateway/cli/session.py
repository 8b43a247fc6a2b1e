"""``open_store``: the one way a command reaches the database.

Find the database (refusing to create an embedded one unless the command may), connect as
the application role (the owner only where a command changes the schema), check that the
schema is current, and close everything on the way out. Only ``db migrate`` and ``serve``
migrate; every other command works under the application role's GRANTs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import asyncpg

from domain.streams import REFERENCE_PREFIXES
from eventstore import EventStore, InlineProjection
from eventstore.directory import RoutingPool, Shards, enter_tenant
from eventstore.errors import DATABASE_ERRORS
from eventstore.pool import create_pool
from gateway.cli.output import say
from gateway.database import Database, check_schema, open_database
from gateway.keys import cli_cipher
from gateway.settings import Settings
from gateway.tenancy import Tenancy, TenantRow
from projections.groups_view import GroupsView
from projections.tenancy import TenancyProjection
from projections.users_view import UsersView


class CannotUseDatabase(Exception):
    """The database did not answer, or refused us: the one error that says so."""


@dataclass(frozen=True, slots=True)
class Session:
    database: Database
    dsn: str
    # The home database's pool, or with SCIM_GATEWAY_SHARDS one that routes to the database of
    # the tenant the command named (``work_on``).
    pool: asyncpg.Pool
    store: EventStore
    tenancy: Tenancy
    shards: Shards


async def work_on(tenancy: Tenancy, name: str) -> TenantRow:
    """The tenant ``name``; the command's database calls go to that tenant's database from here
    on (``directory.enter_tenant``)."""
    tenant = await tenancy.tenant(name)
    enter_tenant(tenant.tenant_id)
    return tenant


def inline_projections() -> list[InlineProjection]:
    return [TenancyProjection(), UsersView(), GroupsView()]


@contextmanager
def reaching_the_database() -> Iterator[None]:
    """Around connecting only: a failure there is the database's, and says so."""
    try:
        yield
    except DATABASE_ERRORS as error:
        raise CannotUseDatabase(str(error) or type(error).__name__) from error


async def locate(settings: Settings, *, create: bool = False) -> Database:
    """The database the settings name; says where an embedded one lives."""
    with reaching_the_database():
        database = await open_database(settings, create=create)
    if database.data_dir is not None:
        say(f"scim-gateway: data dir {database.data_dir}")
    return database


@asynccontextmanager
async def open_store(
    settings: Settings,
    *,
    owner: bool = False,
    projections: Sequence[InlineProjection] | None = None,
    pool_size: int = 2,
) -> AsyncIterator[Session]:
    database = await locate(settings)
    dsn = database.owner_dsn if owner else database.app_dsn
    with reaching_the_database():
        pool = await create_pool(dsn, min_size=1, max_size=pool_size)
    shards = Shards.single(pool)
    try:
        async with pool.acquire() as connection:
            await check_schema(connection)
        if settings.shards:
            from gateway.shards import open_shards
            with reaching_the_database():
                shards = await open_shards(pool, settings, migrate=False)
        routed = pool if len(shards.pools) == 1 else RoutingPool(shards)
        store = EventStore(routed, inline_projections() if projections is None else projections,
                           cipher=cli_cipher(settings), home_streams=REFERENCE_PREFIXES)
        yield Session(database, dsn, routed, store, Tenancy(store), shards)
    finally:
        await shards.close()  # the home pool with the others
