"""Errors the store raises; asyncpg's are translated here and nowhere else."""


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
