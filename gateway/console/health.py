"""Health page: the database, how far each catch-up projection is behind the log."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from aiohttp import web

from eventstore.directory import home_of
from eventstore.errors import DATABASE_ERRORS
from gateway.console.security import render
from gateway.http.keys import POOL, PRINCIPAL, SETTINGS
from projections import sealer

_CHECKPOINTS = """
SELECT c.name, c.position, c.updated_at,
       coalesce((SELECT position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1), 0)
           - c.position AS lag
FROM projection_checkpoints c ORDER BY c.name
"""
_COUNTS = """
SELECT count(*) AS users, count(*) FILTER (WHERE active) AS active_users
FROM users_view WHERE tenant_id = $1 AND NOT deleted
"""
_TOKEN_COUNT = "SELECT count(*) FROM tokens WHERE tenant_id = $1 AND revoked_at IS NULL"
_SEALED = "SELECT coalesce((SELECT tree_size FROM integrity_heads WHERE tenant_id = $1), 0)"


async def health_page(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    settings = request.app[SETTINGS]
    database: dict[str, object] = {"ok": False}
    checkpoints: list[asyncpg.Record] = []
    counts: dict[str, int] | None = None
    integrity: dict[str, object] | None = None
    try:
        async with asyncio.timeout(settings.db_timeout):
            started = time.perf_counter()
            version = await request.app[POOL].fetchval("SHOW server_version")
            database = {"ok": True, "version": version,
                        "round_trip_ms": round((time.perf_counter() - started) * 1000, 1)}
            checkpoints = await request.app[POOL].fetch(_CHECKPOINTS)
            latest = await sealer.latest_checkpoint(request.app[POOL], principal.tenant_id)
            if latest is not None:
                integrity = {"tree_size": latest["tree_size"], "signed_at": latest["signed_at"],
                             "sealed": await request.app[POOL].fetchval(_SEALED, principal.tenant_id)}
            counts = {**await request.app[POOL].fetchrow(_COUNTS, principal.tenant_id),
                      "tokens": await home_of(request.app[POOL]).fetchval(_TOKEN_COUNT, principal.tenant_id)}
    except DATABASE_ERRORS as error:
        database = {"ok": False, "error": type(error).__name__}
    return render(request, "health.html", {
        "section": "health", "database": database, "checkpoints": checkpoints, "counts": counts,
        "integrity": integrity})
