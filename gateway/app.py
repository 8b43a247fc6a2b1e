"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from eventstore import EventStore
from eventstore.pool import create_pool
from gateway.http import routes
from gateway.http.auth import bearer_auth
from gateway.http.keys import DATABASE_URL, POOL, SETTINGS, STORE, TENANCY, USERS
from gateway.http.middleware import request_context
from gateway.settings import Settings
from gateway.tenancy import Tenancy
from gateway.users import Users
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
    store = EventStore(pool, [TenancyProjection(), users_view])
    app[POOL] = pool
    app[STORE] = store
    app[TENANCY] = Tenancy(store)
    app[USERS] = Users(store, users_view, settings)
    yield
    await pool.close()


def create_app(settings: Settings, database_url: str) -> web.Application:
    app = web.Application(
        middlewares=[request_context, bearer_auth],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[DATABASE_URL] = database_url
    app.cleanup_ctx.append(_database)
    routes.add_routes(app)
    return app
