"""``scim-gateway users import``: bring existing portal accounts under SCIM management.

Each line is a SCIM User; ``loginMethod`` (``sso`` or ``credentials``) at the top level or in
the gateway extension says how the person signs in (default ``credentials``: imported
accounts predate SSO). Imported users can be matched and updated by the identity provider;
under the ``bynder`` profile credential users cannot be deactivated through SCIM.

Lines are parsed and decided first, then written a batch per transaction (one statement
for the events, one COPY for the view's new rows), the next batch parsed while earlier
ones are written: a batch is in the log whole or not at all, so an interrupted import
resumes with ``--skip-existing``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from domain.errors import Reason, Rejected
from domain.identifiers import fold
from domain.policy import Policy
from domain.schema import GATEWAY_USER
from domain.streams import user_stream
from domain.user import CREDENTIALS, SSO, CreateUser, decide
from eventstore import ConcurrencyError, EventStore, NewEvent, ProjectionConflict
from gateway.scim.errors import ScimError
from gateway.scim.resource import parse_user
from gateway.tenancy import Principal
from gateway.writes import RequestContext
from projections.codec import encode_all

# Names already taken in the tenant, folded as the view's unique index keys them.
_EXISTING = """
SELECT n FROM unnest($2::text[]) AS n
WHERE EXISTS (SELECT 1 FROM users_view v
              WHERE v.tenant_id = $1 AND v.user_name_lower = n AND NOT v.deleted)
"""


@dataclass(frozen=True, slots=True)
class ImportOptions:
    batch_size: int = 1000
    # Batches written at once, each in its own transaction: the next is parsed meanwhile.
    writers: int = 2
    skip_existing: bool = False
    continue_on_error: bool = False


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    error: str
    text: bytes


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


@dataclass(frozen=True, slots=True)
class _Parsed:
    line: int
    text: bytes
    user_id: str
    user_name: str
    events: list[NewEvent]


def _login_method(body: dict) -> str:
    extension = body.get(GATEWAY_USER) if isinstance(body.get(GATEWAY_USER), dict) else {}
    method = body.get("loginMethod") or extension.get("loginMethod") or CREDENTIALS
    if method not in (SSO, CREDENTIALS):
        raise Rejected(Reason.INVALID_VALUE, f"loginMethod must be {SSO} or {CREDENTIALS}")
    return str(method)


def parse_line(number: int, text: bytes, policy: Policy, now: datetime) -> _Parsed | Rejection:
    """One line to the events that create its user, or the reason it cannot be imported."""
    try:
        body = orjson.loads(text)
        if not isinstance(body, dict):
            raise ScimError.invalid_syntax("not a JSON object")
        method = _login_method(body)
        attributes, active = parse_user(body)
        user_id = str(uuid.uuid4())
        events = decide(None, CreateUser(user_id, attributes, active, method), policy, now)
    except orjson.JSONDecodeError as error:
        return Rejection(number, f"invalid JSON: {error}", text)
    except ScimError as error:
        return Rejection(number, error.detail, text)
    except Rejected as error:
        return Rejection(number, error.detail, text)
    user_name = getattr(events[0], "user_name", "")
    return _Parsed(number, text, user_id, user_name, encode_all(list(events)))


class Importer:
    def __init__(self, store: EventStore, principal: Principal, source: str, options: ImportOptions,
                 on_reject: Callable[[Rejection], None], report: ImportReport) -> None:
        self.store = store
        self.principal = principal
        self.options = options
        self.on_reject = on_reject
        self.report = report
        # Last lines of the batches handed to writers, in file order, and those committed.
        self._order: deque[int] = deque()
        self._committed: set[int] = set()
        self._progress: Callable[[int], None] = lambda _line: None
        self.context = RequestContext(f"import-{uuid.uuid4()}", "IMPORT", source, None, "scim-gateway users import")

    async def run(self, lines: Iterable[bytes], progress: Callable[[int], None]) -> ImportReport:
        """Parse a batch while the batches before it are being written (up to ``writers`` at once)."""
        self._progress = progress
        in_flight: set[asyncio.Task[None]] = set()
        try:
            batch: list[tuple[int, bytes]] = []
            for number, text in enumerate(lines, start=1):
                if text.strip():
                    batch.append((number, text))
                if len(batch) >= self.options.batch_size:
                    await self._batch(batch, number, in_flight)
                    batch = []
                elif not batch and not in_flight and not self._order:
                    self.report.settled_through = number
            if batch:
                await self._batch(batch, batch[-1][0], in_flight)
            await self._drain(in_flight, 0)
        except BaseException:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            raise
        return self.report

    async def _batch(self, lines: list[tuple[int, bytes]], last_line: int, in_flight: set[asyncio.Task[None]]) -> None:
        now = datetime.now(UTC)
        parsed: list[_Parsed] = []
        stop: Rejection | None = None
        for number, text in lines:
            result = parse_line(number, text, self.principal.policy, now)
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
        in_flight.add(asyncio.create_task(self._write_batch(parsed, last_line)))

    async def _drain(self, in_flight: set[asyncio.Task[None]], keep: int) -> None:
        """Wait until at most ``keep`` writes are running; a failed write raises here."""
        while len(in_flight) > keep:
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                in_flight.discard(task)
                task.result()

    async def _write_batch(self, parsed: list[_Parsed], last_line: int) -> None:
        await self._write(parsed)
        # Batches may commit out of order; what is settled is the prefix committed whole.
        self._committed.add(last_line)
        while self._order and self._order[0] in self._committed:
            self.report.settled_through = self._order.popleft()
        self._progress(self.report.settled_through)

    async def _without_existing(self, parsed: list[_Parsed]) -> tuple[list[_Parsed], Rejection | None]:
        """Drop (skip or reject) lines whose userName is taken; without --continue-on-error the
        first such line is returned instead, with the lines before it."""
        rows = await self.store.pool.fetch(_EXISTING, self.principal.tenant_id, [fold(p.user_name) for p in parsed])
        taken = {row["n"] for row in rows}
        kept: list[_Parsed] = []
        for item in parsed:
            key = fold(item.user_name)
            if key not in taken:
                taken.add(key)  # a second line with the same userName in this file
                kept.append(item)
            elif self.options.skip_existing:
                self.report.skipped += 1
            else:
                rejection = Rejection(item.line, f"a user with userName {item.user_name!r} already exists", item.text)
                if not self.options.continue_on_error:
                    return kept, rejection
                self._reject(rejection)
        return kept, None

    async def _write(self, parsed: list[_Parsed]) -> None:
        if not parsed:
            return
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
                    rejection = Rejection(item.line, f"a user with userName {item.user_name!r} already exists",
                                          item.text)
                    if not self.options.continue_on_error:
                        raise ImportStopped(rejection) from None
                    self._reject(rejection)

    async def _append(self, parsed: list[_Parsed]) -> None:
        streams = [(user_stream(p.user_id), p.events) for p in parsed]
        async with self.store.pool.acquire() as connection, connection.transaction():
            envelopes = await self.store.append_new_streams(
                streams, self.context.metadata(self.principal), tenant_id=self.principal.tenant_id,
                connection=connection)
        self.store.committed(envelopes)
        self.report.imported += len(parsed)

    def _reject(self, rejection: Rejection) -> None:
        self.report.rejected += 1
        self.on_reject(rejection)
