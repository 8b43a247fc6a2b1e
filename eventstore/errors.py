"""Errors the store raises; asyncpg's are translated here and nowhere else."""

from __future__ import annotations

import asyncpg


class EventStoreError(Exception):
    """Base class for event store errors."""


class ConcurrencyError(EventStoreError):
    """The stream was not at the expected version; nothing was written. Safe to retry."""

    def __init__(self, stream_id: str, expected_version: int | None) -> None:
        super().__init__(f"stream {stream_id!r} is not at version {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version


class ProjectionConflict(EventStoreError):
    """An inline projection refused the events (a unique constraint); nothing was written."""

    def __init__(self, constraint: str, detail: str) -> None:
        super().__init__(f"{constraint}: {detail}")
        self.constraint = constraint
        self.detail = detail


class DatabaseUnavailable(EventStoreError):
    """The database could not be reached or did not answer in time."""


class TenantMoved(DatabaseUnavailable):
    """The tenant's events now live on another database; nothing was written. A retry, once
    the directory names the new database, goes there (the caller sees a 503 meanwhile)."""

    def __init__(self, tenant_id: object, moved_to: str) -> None:
        super().__init__(f"tenant {tenant_id} has moved to {moved_to!r}")
        self.moved_to = moved_to


# The driver's ways of saying the database is not there (down, restarting, out of connections,
# the connection cut): nothing a request did wrong, so the edge answers 503.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError included
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    # The driver's protocol state left mid-operation, which is what a connection cut at the
    # wrong moment (a server stopping) looks like: "cannot switch to state 11; another
    # operation is in progress".
    asyncpg.exceptions.InternalClientError,
)


# The driver's own errors, for a caller that tells the database's failures from its own.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError,
                                                  asyncpg.exceptions.InternalClientError)
# Anything a database call can fail with, the driver's and ours: what a caller that must carry
# on whatever the database did (a metrics scrape, a health page, a background listener, a
# best-effort write) catches, so nobody above the store names the driver's errors.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, *DRIVER_ERRORS, DatabaseUnavailable)


def translate(error: BaseException, stream_id: str = "", expected_version: int | None = None) -> Exception | None:
    """The store's error for a driver error, or None when it is none of the store's to name."""
    if isinstance(error, asyncpg.UniqueViolationError):
        if error.constraint_name == "events_stream_version_key":
            return ConcurrencyError(stream_id, expected_version)
        return ProjectionConflict(error.constraint_name or "", error.detail or "")
    if isinstance(error, _UNAVAILABLE):
        return DatabaseUnavailable(str(error))
    return None


def unavailable(error: BaseException) -> bool:
    """Whether ``error``, translated or not (a read outside the store raises the driver's), means
    the database could not be reached."""
    return isinstance(error, DatabaseUnavailable) or isinstance(error, _UNAVAILABLE)
