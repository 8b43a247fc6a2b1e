"""The background projectors, one of each per database: the catch-up audit projector and the sealer.

They run inside ``serve`` by default (a single-process install keeps working), or on their own
under ``scim-gateway projector`` with ``serve --no-projector`` serving only, so their CPU is off
the serving path. Any number of processes may run them: each batch claims one tenant's
checkpoint row with ``FOR UPDATE SKIP LOCKED`` (projections/runner.py), so they share the
tenants and no event is projected twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from eventstore import EventStore
from eventstore.crypto import FieldCipher
from eventstore.directory import Shards
from gateway.sealing import start_sealers
from gateway.settings import Settings
from projections.audit import AuditProjection
from projections.runner import CatchUpRunner
from projections.sealer import SealerRunner

log = structlog.get_logger("gateway.projector")


@dataclass(frozen=True, slots=True)
class Projectors:
    # ``audit`` projects the store's own database; ``background`` is one runner per database
    # (the same runner when there is one database), and so is ``sealers`` (none with sealing off).
    audit: CatchUpRunner
    background: Sequence[CatchUpRunner]
    sealers: Sequence[SealerRunner]

    def wake(self) -> None:
        for runner in (*self.background, *self.sealers):
            runner.wake()

    def start(self) -> list[asyncio.Task[None]]:
        return [*(asyncio.create_task(each.run(), name="audit-projector") for each in self.background),
                *(asyncio.create_task(each.run(), name="sealer") for each in self.sealers)]


def projectors(store: EventStore, shards: Shards, cipher: FieldCipher, settings: Settings) -> Projectors:
    """The runners for ``store`` (whose pool routes over ``shards`` when there are several)."""
    audit = CatchUpRunner(store, "audit", AuditProjection())
    stores = [store] if len(shards.pools) == 1 else [EventStore(pool, cipher=cipher) for pool in shards.pools.values()]
    background = [audit] if len(stores) == 1 else [CatchUpRunner(each, "audit", AuditProjection()) for each in stores]
    return Projectors(audit, background, start_sealers(stores, settings) if settings.sealing else [])


async def stop(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_until_signalled(running: Projectors) -> None:
    """``scim-gateway projector``: run until SIGTERM or SIGINT, then stop (a batch and its
    checkpoint commit together, so a batch cut short rolls back and is simply done again)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    received: list[str] = []

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum.name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    tasks = running.start()
    log.info("projector_started", pid=os.getpid(), databases=len(running.background),
             sealing=bool(running.sealers))
    try:
        await stopping.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await stop(tasks)
    log.info("projector_stopped", pid=os.getpid(), signal=received[0] if received else None)
