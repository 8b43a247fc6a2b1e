"""The connection that hears token revocations, policy changes and shredded data keys from
every gateway process.

While it listens, ``Tenancy`` may answer from its token cache: a revocation anywhere clears
the cache through NOTIFY. While it is down nothing would clear it, so the cache is bypassed
(fail closed: every request is authenticated against the database) and the connection is
re-established with exponential backoff. A restart of PostgreSQL drops it (issue 12, item 6).

An erasure anywhere makes the cipher drop that user's cached data key at once (NOTIFY on
``KEYS_CHANNEL``). When the connection drops or comes back the cipher's whole cache is
dropped, since a shredding may have gone unheard; while it is down, a cached key lives
until its cache entry expires, as in a process that does not listen.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from eventstore.crypto import FieldCipher
from eventstore.errors import DATABASE_ERRORS
from eventstore.pool import connect
from eventstore.subject_keys import KEYS_CHANNEL
from gateway.tenancy import Tenancy
from projections.tenancy import TENANCY_CHANNEL

log = structlog.get_logger("gateway.revocations")


class RevocationListener:
    def __init__(self, dsn: str, tenancy: Tenancy | None, *, cipher: FieldCipher | None = None,
                 retry_seconds: float = 0.1, max_retry_seconds: float = 5.0) -> None:
        self.dsn = dsn
        self.tenancy = tenancy
        self.cipher = cipher
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max(max_retry_seconds, retry_seconds)
        self.reconnects = 0
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, then keep listening; a first connection that fails is retried in the background."""
        try:
            await self._connect()
        except DATABASE_ERRORS as error:
            log.warning("revocation_listener_down", error=type(error).__name__, retry_in=self.retry_seconds)
            self._lost.set()
        self._task = asyncio.create_task(self._keep_listening(), name="revocation-listener")

    def _forget(self) -> None:
        if self.tenancy is not None:
            self.tenancy.forget()
        if self.cipher is not None:
            self.cipher.forget_all()

    def _tokens_listening(self, listening: bool) -> None:
        if self.tenancy is not None:
            self.tenancy.listening = listening

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.remove_termination_listener(self._terminated)
            await connection.close()
        self._tokens_listening(False)

    async def _connect(self) -> None:
        connection = await connect(self.dsn)
        try:
            if self.tenancy is not None:
                await connection.add_listener(TENANCY_CHANNEL, self.tenancy.forget)
            if self.cipher is not None:
                await connection.add_listener(KEYS_CHANNEL, self.cipher.heard)
        except BaseException:
            await connection.close()
            raise
        connection.add_termination_listener(self._terminated)
        self._connection = connection
        self._lost.clear()
        # A revocation committed while nobody listened was never announced: drop what the
        # caches hold, now that every later one will be.
        self._forget()
        self._tokens_listening(True)

    def _terminated(self, connection: asyncpg.Connection) -> None:
        if connection is not self._connection:
            return
        self._tokens_listening(False)
        self._forget()
        self._connection = None
        self._lost.set()
        log.warning("revocation_listener_lost", retry_in=self.retry_seconds)

    async def _keep_listening(self) -> None:
        while True:
            await self._lost.wait()
            delay = self.retry_seconds
            while True:
                await asyncio.sleep(delay)
                try:
                    await self._connect()
                except DATABASE_ERRORS as error:
                    delay = min(delay * 2, self.max_retry_seconds)
                    log.warning("revocation_listener_down", error=type(error).__name__, retry_in=delay)
                    continue
                self.reconnects += 1
                log.info("revocation_listener_reconnected", reconnects=self.reconnects)
                break
