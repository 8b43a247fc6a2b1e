"""Wiring: templates, the console's state, headers, and its URL map under /admin/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from eventstore.directory import home_of
from gateway.console import health, provisioning, signin, tenant_settings, tokens, users
from gateway.console.keys import FAILED_SIGNINS, SESSIONS
from gateway.console.security import add_headers, see_other
from gateway.console.sessions import Sessions
from gateway.console.signin_limit import FailedSignIns
from gateway.http.keys import POOL, SETTINGS
from gateway.timestamps import timestamp

HERE = Path(__file__).resolve().parent


async def _sessions(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[SESSIONS] = Sessions(home_of(app[POOL]), timedelta(minutes=settings.console_idle_minutes),
                             timedelta(hours=settings.console_absolute_hours))
    yield


async def home(request: web.Request) -> web.Response:
    return see_other(signin.HOME)


def add_console(app: web.Application) -> None:
    """Call after the database's cleanup context is added: sessions need its pool."""
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                               undefined=jinja2.StrictUndefined)
    env.filters["timestamp"] = lambda moment: timestamp(moment) if moment is not None else ""
    app[FAILED_SIGNINS] = FailedSignIns()
    app.cleanup_ctx.append(_sessions)
    app.on_response_prepare.append(add_headers)
    router = app.router
    router.add_get("/admin/", home)
    router.add_get("/admin/signin", signin.signin_form)
    router.add_post("/admin/signin", signin.signin)
    router.add_post("/admin/signout", signin.signout)
    router.add_get("/admin/tokens", tokens.tokens_page)
    router.add_post("/admin/tokens", tokens.create_token)
    router.add_post("/admin/tokens/{token_id}/revoke", tokens.revoke_token)
    router.add_get("/admin/log", provisioning.log_page)
    router.add_get("/admin/log/download", provisioning.download)
    router.add_get("/admin/users", users.users_page)
    router.add_get("/admin/users/{user_id}", users.user_page)
    router.add_post("/admin/users/{user_id}/deactivate", users.deactivate)
    router.add_post("/admin/users/{user_id}/erase", users.erase)
    router.add_get("/admin/settings", tenant_settings.settings_page)
    router.add_post("/admin/settings", tenant_settings.save_settings)
    router.add_get("/admin/health", health.health_page)
    router.add_static("/admin/static/", HERE / "static")
