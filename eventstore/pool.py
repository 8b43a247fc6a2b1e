"""Connection pool set-up: orjson for json/jsonb, registered once per connection."""

from __future__ import annotations

import asyncpg
import orjson


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def _jsonb_encode(value: object) -> bytes:
    # jsonb's binary wire format is a version byte (1) followed by the JSON text; binary
    # is also what COPY needs.
    return b"\x01" + orjson.dumps(value)


def _jsonb_decode(data: bytes) -> object:
    return orjson.loads(data[1:])


async def init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog", format="binary"
    )
    await connection.set_type_codec("json", encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset round trip (RESET ALL, UNLISTEN, ...).

    asyncpg still rolls back an open transaction first; this code changes no session
    state outside transactions, so there is nothing else to reset.
    """


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    command_timeout: float = 10.0,
    idle_in_transaction_timeout_ms: int = 30_000,
) -> asyncpg.Pool:
    # A stuck transaction holds catch-up readers back (they read below the oldest running
    # transaction), so the server ends idle ones rather than letting them linger.
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        init=init_connection,
        reset=_keep_session,
        server_settings={
            "idle_in_transaction_session_timeout": str(idle_in_transaction_timeout_ms),
            "application_name": "scim-gateway",
        },
    )
    assert pool is not None
    return pool


async def connect(dsn: str, *, connect_timeout: float = 10.0) -> asyncpg.Connection:
    connection = await asyncpg.connect(dsn, timeout=connect_timeout)
    await init_connection(connection)
    return connection
