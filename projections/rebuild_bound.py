"""Where a set-based rebuild stops reading: what the gap-free catch-up reader returns now.

Everything below the oldest running transaction is final; the rebuild reads exactly that and
hands the locked catch-up the reader's checkpoint of its last event, so the catch-up continues
exactly after it (``EventStore.read_all`` orders by transaction id, then position).
"""

from __future__ import annotations

import asyncpg

from eventstore import Checkpoint

_BOUND = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
_LAST_BELOW = """
SELECT transaction_id, position FROM public.events WHERE transaction_id < $1
ORDER BY transaction_id DESC, position DESC LIMIT 1
"""


async def read_bound(connection: asyncpg.Connection) -> tuple[int, Checkpoint | None]:
    """(the transaction id to read below, the checkpoint of the last event below it or None)."""
    bound = await connection.fetchval(_BOUND)
    last = await connection.fetchrow(_LAST_BELOW, bound)
    return bound, None if last is None else Checkpoint(last["transaction_id"], last["position"])
