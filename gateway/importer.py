"""``scim-gateway users import``: bring existing portal accounts under SCIM management.

Each line is a SCIM User; ``loginMethod`` (``sso`` or ``credentials``) at the top level or in
the gateway extension says how the person signs in (default ``credentials``: imported
accounts predate SSO). Imported users can be matched and updated by the identity provider;
under the ``bynder`` profile credential users cannot be deactivated through SCIM.

Lines are prepared first (``gateway.import_lines``: parsed, decided, sealed, each view row
folded), in worker processes when there are any, then written a batch per transaction
(the new users' keys, one statement for the events, one COPY for the view's new rows) while
the next batches are prepared: a batch is in the log whole or not at all, so an interrupted
import resumes with ``--skip-existing``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import asyncpg

from domain.streams import user_stream
from eventstore import ConcurrencyError, Envelope, EventStore, ProjectionConflict
from eventstore.crypto import INDEX_SUBJECT
from eventstore.subject_keys import insert_new_keys
from gateway.import_lines import Batch, Prepared, Rejection, prepare, prepare_in_worker
from gateway.tenancy import Principal
from gateway.writes import RequestContext
from projections.users_view import stamped_row, taken_user_names, write_rows

__all__ = ["ImportOptions", "ImportReport", "ImportStopped", "Importer", "Rejection"]

@dataclass(frozen=True, slots=True)
class ImportOptions:
    batch_size: int = 1000
    # Batches written at once, each in its own transaction: the next is prepared meanwhile.
    writers: int = 2
    skip_existing: bool = False
    continue_on_error: bool = False


@dataclass(slots=True)
class ImportReport:
    """Kept current as the import goes, so an interruption can still say where it stood."""

    imported: int = 0
    skipped: int = 0
    rejected: int = 0
    # Every line up to this one is settled: committed, skipped or rejected.
    settled_through: int = 0


class ImportStopped(Exception):
    """A line was refused and ``--continue-on-error`` was not given; earlier batches stand."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"line {rejection.line}: {rejection.error}")
        self.rejection = rejection


class _PreparedRows:
    """The users view's inline projection for an import: each new user's row was folded when
    its line was prepared; here it only takes its event's time and position."""

    def __init__(self) -> None:
        # By event id (its 16 bytes); a batch's rows stay until it committed (its retry user by
        # user needs them).
        self.rows: dict[bytes, tuple[object, ...]] = {}

    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        await write_rows(connection, [], [stamped_row(self.rows[e.event_id.bytes], e.recorded_at, e.position)
                                          for e in envelopes])


# Batches handed to the worker processes before the one being written: enough to keep them busy.
_AHEAD = 2


class Importer:
    def __init__(self, store: EventStore, principal: Principal, source: str, options: ImportOptions,
                 on_reject: Callable[[Rejection], None], report: ImportReport,
                 workers: Executor | None = None) -> None:
        self.principal = principal
        self.options = options
        self.on_reject = on_reject
        self.report = report
        # Prepares the batches (``import_lines.prepare_in_worker``); None: this process does.
        self.workers = workers
        self._cipher = store.cipher
        self._rows = _PreparedRows()
        # Events come sealed from ``import_lines``, view rows folded: the store seals nothing
        # and runs the one projection that stamps those rows.
        self.store = EventStore(store.pool, [self._rows], on_appended=store.on_appended)
        # Last lines of the batches handed to writers, in file order, and those committed.
        self._order: deque[int] = deque()
        self._committed: set[int] = set()
        # The folded userNames of the batches being written, by last line: a later line with
        # one of them is a duplicate even before that batch commits (the database can't say).
        self._writing: dict[int, set[str]] = {}
        # The lines of the batches being checked or written, by last line: a refusal quotes its line.
        self._lines: dict[int, dict[int, bytes]] = {}
        self._progress: Callable[[int], None] = lambda _line: None
        self._batch_info: Batch | None = None
        # Batches handed to the workers and not yet taken back.
        self._ahead: set[asyncio.Future[list[Prepared | Rejection]]] = set()
        self.context = RequestContext(f"import-{uuid.uuid4()}", "IMPORT", source, None, "scim-gateway users import")

    async def run(self, lines: Iterable[bytes], progress: Callable[[int], None]) -> ImportReport:
        """Prepare batches ahead while the ones before them are written (up to ``writers`` at once)."""
        self._progress = progress
        in_flight: set[asyncio.Task[None]] = set()
        pending: deque[tuple[list[tuple[int, bytes]], int, Callable[[], Awaitable[list[Prepared | Rejection]]]]] = (
            deque())
        ahead = _AHEAD if self.workers is not None else 0
        try:
            self._batch_info = await self._describe()
            for batch, last_line in self._batches(lines, lambda: not in_flight and not self._order and not pending):
                pending.append((batch, last_line, self._prepare(batch)))
                if len(pending) > ahead:
                    await self._settle(*pending.popleft(), in_flight)
            while pending:
                await self._settle(*pending.popleft(), in_flight)
            await self._drain(in_flight, 0)
        except BaseException:
            for task in in_flight:
                task.cancel()
            for future in self._ahead:
                future.cancel()  # prepared for nothing: the import stops here
            await asyncio.gather(*in_flight, *self._ahead, return_exceptions=True)
            raise
        return self.report

    def _batches(self, lines: Iterable[bytes],
                 idle: Callable[[], bool]) -> Iterator[tuple[list[tuple[int, bytes]], int]]:
        """The non-blank lines in batches, each with the file's line number it ends at."""
        batch: list[tuple[int, bytes]] = []
        for number, text in enumerate(lines, start=1):
            if text.strip():
                batch.append((number, text))
            if len(batch) >= self.options.batch_size:
                yield batch, number
                batch = []
            elif not batch and idle():
                self.report.settled_through = number
        if batch:
            yield batch, batch[-1][0]

    async def _describe(self) -> Batch:
        index_key = None
        if self._cipher is not None:
            async with self.store.pool.acquire() as connection:
                keys = await self._cipher.held_keys(connection, self.principal.tenant_id, {INDEX_SUBJECT})
            index_key = keys[INDEX_SUBJECT]
        return Batch(self.principal.tenant_id, self.principal.policy, index_key,
                     stop_at_first=not self.options.continue_on_error)

    def _prepare(self, lines: list[tuple[int, bytes]]) -> Callable[[], Awaitable[list[Prepared | Rejection]]]:
        """Start preparing ``lines``; the callable waits for the result. In a worker process
        the work starts now; in this one, when it is waited for (between writes)."""
        batch = self._batch_info
        assert batch is not None
        if self.workers is None:
            async def here() -> list[Prepared | Rejection]:
                return prepare(self._cipher, batch, lines)
            return here
        future = asyncio.wrap_future(self.workers.submit(prepare_in_worker, batch, lines, self._cipher is not None))
        self._ahead.add(future)

        async def there() -> list[Prepared | Rejection]:
            try:
                return await future
            finally:
                self._ahead.discard(future)
        return there

    async def _settle(self, lines: list[tuple[int, bytes]], last_line: int,
                      prepared: Callable[[], Awaitable[list[Prepared | Rejection]]],
                      in_flight: set[asyncio.Task[None]]) -> None:
        self._lines[last_line] = dict(lines)
        parsed: list[Prepared] = []
        stop: Rejection | None = None
        for result in await prepared():
            if isinstance(result, Rejection):
                if not self.options.continue_on_error:
                    stop = result
                    break
                self._reject(result)
            else:
                parsed.append(result)
        parsed, refused = await self._without_existing(parsed)
        if refused is not None and (stop is None or refused.line < stop.line):
            stop = refused
        if stop is not None:
            # Finish what came before the refused line, then stop there.
            await self._drain(in_flight, 0)
            await self._write([p for p in parsed if p.line < stop.line])
            self.report.settled_through = stop.line - 1
            raise ImportStopped(stop)
        await self._drain(in_flight, self.options.writers - 1)
        self._order.append(last_line)
        self._writing[last_line] = {p.user_name_key for p in parsed}
        in_flight.add(asyncio.create_task(self._write_batch(parsed, last_line)))

    async def _drain(self, in_flight: set[asyncio.Task[None]], keep: int) -> None:
        """Wait until at most ``keep`` writes are running; a failed write raises here."""
        while len(in_flight) > keep:
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                in_flight.discard(task)
                task.result()

    async def _write_batch(self, parsed: list[Prepared], last_line: int) -> None:
        try:
            await self._write(parsed)
        finally:
            del self._writing[last_line]
            del self._lines[last_line]
        # Batches may commit out of order; what is settled is the prefix committed whole.
        self._committed.add(last_line)
        while self._order and self._order[0] in self._committed:
            self.report.settled_through = self._order.popleft()
        self._progress(self.report.settled_through)

    async def _without_existing(self, parsed: list[Prepared]) -> tuple[list[Prepared], Rejection | None]:
        """Drop (skip or reject) lines whose userName is taken; without --continue-on-error the
        first such line is returned instead, with the lines before it."""
        # Taken before the query: a batch that commits meanwhile is then in one or the other.
        taken = set().union(*self._writing.values())
        taken |= await taken_user_names(self.store.pool, self.principal.tenant_id, [p.user_name_key for p in parsed])
        kept: list[Prepared] = []
        for item in parsed:
            if item.user_name_key not in taken:
                taken.add(item.user_name_key)  # a second line with the same userName in this file
                kept.append(item)
            elif self.options.skip_existing:
                self.report.skipped += 1
            else:
                rejection = self._taken(item)
                if not self.options.continue_on_error:
                    return kept, rejection
                self._reject(rejection)
        return kept, None

    async def _write(self, parsed: list[Prepared]) -> None:
        if not parsed:
            return
        for item in parsed:
            self._rows.rows[item.event_id] = item.row
        try:
            await self._append(parsed)
        except (ProjectionConflict, ConcurrencyError):
            # Someone created one of these names meanwhile: settle the batch user by user.
            for item in parsed:
                try:
                    await self._append([item])
                except (ProjectionConflict, ConcurrencyError):
                    if self.options.skip_existing:
                        self.report.skipped += 1
                        continue
                    rejection = self._taken(item)
                    if not self.options.continue_on_error:
                        raise ImportStopped(rejection) from None
                    self._reject(rejection)
        finally:
            for item in parsed:
                self._rows.rows.pop(item.event_id, None)

    async def _append(self, parsed: list[Prepared]) -> None:
        streams = [(user_stream(p.user_id), [p.event()]) for p in parsed]
        keys = [p.key for p in parsed if p.key is not None]
        async with self.store.pool.acquire() as connection, connection.transaction():
            # As the store's sealing append does: the keys first, then the sealed events. (The
            # data keys themselves stayed where they sealed: only their wrapped form is stored.)
            await insert_new_keys(connection, self.principal.tenant_id, [(*key, b"") for key in keys])
            envelopes = await self.store.append_new_streams(
                streams, self.context.metadata(self.principal), tenant_id=self.principal.tenant_id,
                connection=connection)
        self.store.committed(envelopes)
        self.report.imported += len(parsed)

    def _taken(self, item: Prepared) -> Rejection:
        text = next(lines[item.line] for lines in self._lines.values() if item.line in lines)
        return Rejection(item.line, f"a user with userName {item.user_name!r} already exists", text)

    def _reject(self, rejection: Rejection) -> None:
        self.report.rejected += 1
        self.on_reject(rejection)
