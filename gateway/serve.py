"""``scim-gateway serve``: migrate, bootstrap the first tenant, run the HTTP server."""

from __future__ import annotations

import asyncio
import sys

import structlog
from aiohttp import web

from eventstore import EventStore
from eventstore.pool import create_pool
from gateway.app import create_app
from gateway.database import migrate_database
from gateway.domain.errors import Reason, Rejected
from gateway.domain.tenant import SCOPES
from gateway.log import configure_logging
from gateway.settings import Settings
from gateway.tenancy import Tenancy
from projections.tenancy import TenancyProjection

BOOTSTRAP_TENANT = "default"
BOOTSTRAP_OWNER = "scim@localhost.localdomain"


async def bootstrap(dsn: str) -> str | None:
    """On first start, create tenant ``default`` and return one token secret for it."""
    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        tenancy = Tenancy(EventStore(pool, [TenancyProjection()]))
        if await tenancy.tenants():
            return None
        actor = {"token_id": "", "owner": "bootstrap", "token_description": "first start"}
        try:
            await tenancy.create_tenant(BOOTSTRAP_TENANT, "bynder", actor)
        except Rejected as rejected:
            if rejected.reason is Reason.UNIQUENESS:
                return None  # another instance starting at the same moment bootstrapped
            raise
        _, secret = await tenancy.create_token(
            BOOTSTRAP_TENANT, BOOTSTRAP_OWNER, "bootstrap token", SCOPES, actor
        )
        return secret
    finally:
        await pool.close()


def serve(settings: Settings, dsn: str) -> None:
    configure_logging(settings.log_level)
    log = structlog.get_logger("gateway.serve")
    applied = asyncio.run(migrate_database(dsn))
    if applied:
        log.info("migrated", applied=applied)
    secret = asyncio.run(bootstrap(dsn))
    if secret is not None:
        print(
            f"Created tenant {BOOTSTRAP_TENANT!r}. Its bootstrap token (all scopes) is printed "
            "once on stdout; keep it:",
            file=sys.stderr,
            flush=True,
        )
        print(secret, flush=True)
    log.info("listening", host=settings.host, port=settings.port)
    web.run_app(
        create_app(settings, dsn),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        shutdown_timeout=10.0,
    )
