"""The aiohttp application factory."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from aiohttp import web

from domain.streams import REFERENCE_PREFIXES
from eventstore import Envelope, EventStore
from eventstore.directory import RoutingPool, parse_shards
from eventstore.pool import create_pool
from gateway.console.routes import add_console
from gateway.console.security import console_guard
from gateway.groups import Groups
from gateway.http import routes
from gateway.http.auth import bearer_auth
from gateway.http.bounds import edge_bounds
from gateway.http.keys import (
    AUDIT_RUNNER,
    DATABASE_URL,
    GROUPS,
    METRICS,
    POOL,
    RATE_LIMITER,
    REVOCATIONS,
    SETTINGS,
    SHARDS,
    STORE,
    TENANCY,
    USERS,
)
from gateway.http.metrics import Metrics
from gateway.http.middleware import request_context
from gateway.http.ratelimit import TokenBuckets
from gateway.keys import make_cipher
from gateway.projector import projectors
from gateway.projector import stop as stop_projectors
from gateway.revocations import RevocationListener
from gateway.settings import Settings
from gateway.shards import open_shards
from gateway.tenancy import Tenancy
from gateway.users import Users
from projections.groups_view import GroupsView
from projections.tenancy import TenancyProjection
from projections.users_view import UsersView


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(
        app[DATABASE_URL],
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=settings.db_timeout,
    )
    users_view = UsersView()
    metrics = app[METRICS]

    def appended(envelopes: Sequence[Envelope]) -> None:
        metrics.appended(envelopes)
        if settings.background_projector:
            running.wake()

    groups_view = GroupsView()
    shards = await open_shards(pool, settings)
    routed = pool if len(shards.pools) == 1 else RoutingPool(shards)
    cipher, _ = make_cipher(settings)
    store = EventStore(routed, [TenancyProjection(), users_view, groups_view], on_appended=appended, cipher=cipher,
                       home_streams=REFERENCE_PREFIXES)
    # Requests catch up their own tenant's database; in the background (unless `serve
    # --no-projector` leaves it to `scim-gateway projector`), one runner per database.
    running = projectors(store, shards, cipher, settings if settings.background_projector
                         else dataclasses.replace(settings, sealing=False))
    app[POOL] = routed
    app[SHARDS] = shards
    app[STORE] = store
    tenancy = Tenancy(store, cache_seconds=settings.token_cache_seconds)
    app[TENANCY] = tenancy
    # Clears the token cache on a revocation and the cipher's cached key on an erasure, made
    # in any process. An erasure announces itself on the tenant's own database: each shard
    # has a listener of its own, for keys only (tokens live on the home database).
    retry = settings.revocation_retry_seconds
    listener = RevocationListener(app[DATABASE_URL], tenancy, cipher=cipher, retry_seconds=retry)
    listeners = [listener, *(RevocationListener(dsn, None, cipher=cipher, retry_seconds=retry)
                             for dsn in parse_shards(settings.shards).values())]
    for each in listeners:
        await each.start()
    app[REVOCATIONS] = listener
    app[AUDIT_RUNNER] = running.audit
    app[USERS] = Users(store, users_view, settings)
    app[GROUPS] = Groups(store, groups_view, timedelta(hours=settings.create_replay_window_hours))
    tasks = running.start() if settings.background_projector else []
    yield
    await stop_projectors(tasks)
    for each in listeners:
        await each.close()
    await tenancy.flush_use()
    await shards.close()



def create_app(settings: Settings, database_url: str) -> web.Application:
    app = web.Application(
        middlewares=[request_context, console_guard, bearer_auth, edge_bounds],
        client_max_size=settings.max_body_bytes,
        # Bodies arrive as sent; gateway.http.bounds refuses content codings with 415.
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app[DATABASE_URL] = database_url
    app[RATE_LIMITER] = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_database)
    routes.add_routes(app)
    add_console(app)
    return app
