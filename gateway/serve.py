"""``scim-gateway serve``: migrate, bootstrap the first tenant, run the HTTP server."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys

import structlog
from aiohttp import web

from eventstore import EventStore
from eventstore.pool import create_pool
from gateway.app import create_app
from gateway.database import migrate_database
from gateway.domain.errors import Reason, Rejected
from gateway.domain.tenant import SCOPES
from gateway.keys import kek_path, load_keyring
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
    _, made = load_keyring(settings)  # before the workers start, so they share one
    if made:
        log.warning("kek_created", path=str(kek_path(settings)),
                    hint="keep a copy outside the database and its backups; set SCIM_GATEWAY_KEK_FILE in production")
    secret = asyncio.run(bootstrap(dsn))
    if secret is not None:
        print(
            f"Created tenant {BOOTSTRAP_TENANT!r}. Its bootstrap token (all scopes) is printed "
            "once on stdout; keep it:",
            file=sys.stderr,
            flush=True,
        )
        print(secret, flush=True)
    if settings.workers == 1:
        _run(settings, dsn)
    else:
        _supervise(settings, dsn)


def _run(settings: Settings, dsn: str) -> None:
    """One worker: serve until SIGTERM/SIGINT, then stop accepting, let in-flight requests
    finish (up to ``shutdown_timeout``), and close the pool."""
    structlog.get_logger("gateway.serve").info("listening", host=settings.host, port=settings.port, pid=os.getpid())
    web.run_app(
        create_app(settings, dsn),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        shutdown_timeout=settings.shutdown_timeout,
        reuse_port=settings.workers > 1,
    )


def _supervise(settings: Settings, dsn: str) -> None:
    """``--workers N``: N processes share the port (SO_REUSEPORT); a worker that dies is
    replaced; SIGTERM/SIGINT is passed on and waited for."""
    log = structlog.get_logger("gateway.serve")
    context = multiprocessing.get_context("fork")
    stopping = False

    def spawn() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_run, args=(settings, dsn), daemon=False)
        process.start()
        return process

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signum)

    workers = [spawn() for _ in range(settings.workers)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        for index, worker in enumerate(workers):
            worker.join(timeout=0.5)
            if worker.exitcode is not None and not stopping:
                log.warning("worker_died", pid=worker.pid, exitcode=worker.exitcode)
                workers[index] = spawn()
        if stopping and all(w.exitcode is not None for w in workers):
            return
