"""``scim-gateway serve``: migrate (as the owner), bootstrap the first tenant, run the HTTP
server (as the application role)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import sys

import asyncpg
import structlog
from aiohttp import web

from domain.errors import Reason, Rejected
from domain.tenant import SCOPES
from eventstore import EventStore
from eventstore.pool import create_pool
from gateway import heap
from gateway.app import create_app
from gateway.database import Database, check_schema, migrate_database
from gateway.keys import kek_path, load_keyring
from gateway.log import configure_logging
from gateway.sealing import check_signing_key
from gateway.settings import Settings
from gateway.tenancy import Tenancy
from projections.tenancy import TenancyProjection

BOOTSTRAP_TENANT = "default"
BOOTSTRAP_OWNER = "scim@localhost.localdomain"

# A worker that cannot bind exits with this, so the supervisor stops instead of respawning.
EXIT_CANNOT_LISTEN = 3


class CannotListen(OSError):
    """The port is taken (or not ours to take)."""


async def _check_schema(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await check_schema(connection)
    finally:
        await connection.close()


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


def console_url(settings: Settings) -> str:
    """Where a browser on this machine reaches the console (a wildcard bind means loopback)."""
    bound = settings.console_host or settings.host if settings.console_port else settings.host
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(bound, bound)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.console_port or settings.port}/admin/"


def _console_socket(settings: Settings) -> socket.socket | None:
    """The console's own listener, when it has one; shared by workers like the API's port."""
    if not settings.console_port:
        return None
    return socket.create_server((settings.console_host or settings.host, settings.console_port),
                                family=socket.AF_INET6 if ":" in (settings.console_host or settings.host)
                                else socket.AF_INET, reuse_port=settings.workers > 1)


def serve(settings: Settings, database: Database) -> None:
    dsn = database.app_dsn
    if not settings.migrate:
        asyncio.run(_check_schema(dsn))
    if settings.background_projector and settings.sealing:
        # Before anything is migrated or listens (and before logging is configured, so a
        # refusal leaves it as it was).
        check_signing_key(settings)
    configure_logging(settings.log_level)
    log = structlog.get_logger("gateway.serve")
    if settings.migrate:
        applied = asyncio.run(migrate_database(database.owner_dsn, database.app_role))
        if applied:
            log.info("migrated", applied=applied)
    _, made = load_keyring(settings)  # before the workers start, so they share one
    if made:
        log.warning("kek_created", path=str(kek_path(settings)),
                    hint="keep a copy outside the database and its backups; set SCIM_GATEWAY_KEK_FILE in production")
    secret = asyncio.run(bootstrap(dsn)) if settings.bootstrap else None
    if secret is not None:
        print(
            f"Created tenant {BOOTSTRAP_TENANT!r}. Its bootstrap token (all scopes) is printed "
            "once on stdout; keep it:",
            file=sys.stderr,
            flush=True,
        )
        print(secret, flush=True)
    print(f"Admin console: {console_url(settings)} (sign in with an admin-scope token)",
          file=sys.stderr, flush=True)
    if settings.workers == 1:
        _run(settings, dsn)
    else:
        _supervise(settings, dsn)


def _run(settings: Settings, dsn: str) -> None:
    """One worker: serve until SIGTERM/SIGINT, then stop accepting, let in-flight requests
    finish (up to ``shutdown_timeout``), and close the pool."""
    log = structlog.get_logger("gateway.serve")

    def listening(_banner: str) -> None:
        # aiohttp calls this once every site is bound, so the line means "connect now".
        log.info("listening", host=settings.host, port=settings.port, pid=os.getpid())
        heap.settle()

    try:
        web.run_app(
            create_app(settings, dsn),
            host=settings.host,
            port=settings.port,
            print=listening,
            access_log=None,
            shutdown_timeout=settings.shutdown_timeout,
            reuse_port=settings.workers > 1,
            sock=_console_socket(settings),
        )
    except OSError as error:
        if error.errno is None or isinstance(error, ConnectionError):
            raise
        raise CannotListen(error.errno, f"cannot listen on {settings.host}:{settings.port}: "
                                        f"{error.strerror}") from error


def _worker(settings: Settings, dsn: str) -> None:
    try:
        _run(settings, dsn)
    except CannotListen as error:
        print(f"scim-gateway: {error.strerror}", file=sys.stderr, flush=True)
        sys.exit(EXIT_CANNOT_LISTEN)


def _supervise(settings: Settings, dsn: str) -> None:
    """``--workers N``: N processes share the port (SO_REUSEPORT); a worker that dies is
    replaced; SIGTERM/SIGINT is passed on and waited for."""
    log = structlog.get_logger("gateway.serve")
    context = multiprocessing.get_context("fork")
    stopping = False
    failed_to_listen = False

    def spawn() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker, args=(settings, dsn), daemon=False)
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
            if worker.exitcode == EXIT_CANNOT_LISTEN and not stopping:
                stop(signal.SIGTERM, None)
                failed_to_listen = True
            elif worker.exitcode is not None and not stopping:
                log.warning("worker_died", pid=worker.pid, exitcode=worker.exitcode)
                workers[index] = spawn()
        if stopping and all(w.exitcode is not None for w in workers):
            if failed_to_listen:
                raise CannotListen(0, f"cannot listen on {settings.host}:{settings.port}")
            return
