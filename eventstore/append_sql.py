"""An append as SQL: one statement that checks the stream's version, takes the tenant's next
positions, inserts the events and, in the same statement, writes a read model's row and a
new subject's data key. ``store.EventStore`` runs these; it and this module are the only
places that write the ``events`` table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eventstore.subject_keys import new_keys_cte

# What a read of ``events`` returns.
EVENT_COLUMNS = """position, transaction_id, event_id, tenant_id, stream_id, stream_version,
    type, schema_version, data, metadata, recorded_at, tenant_position"""
# What an append returns of the rows it wrote: only what the server chose. The caller has the
# rest, and sending the (sealed) data back would cost both sides a JSON encoding and a decoding.
APPENDED_COLUMNS = "event_id, position, transaction_id, stream_version, recorded_at, tenant_position"

# One statement: read the stream's head, and insert only if it is the expected version.
# Two writers that both pass the check collide on (tenant_id, stream_id, stream_version).
# The events take the next numbers of the tenant's own order from its head row, which stays
# locked until this append commits or rolls back: one tenant's appends commit in
# tenant_position order, densely (eventstore 0007). The head moves only when the version
# check passed; a failed check inserts nothing.
# A moved tenant's head row refuses its appends (eventstore 0008; projections/moves.py).
_FENCE = " WHERE t.moved_to IS NULL"
_APPEND_HEADS = f"""
head AS (
    SELECT coalesce(max(stream_version), 0) AS version FROM events WHERE tenant_id = $2 AND stream_id = $1
), tenant_head AS (
    INSERT INTO tenant_heads AS t (tenant_id, position)
    SELECT $2, cardinality($3::uuid[]) FROM head WHERE $9::integer IS NULL OR head.version = $9::integer
    ON CONFLICT (tenant_id) DO UPDATE SET position = t.position + EXCLUDED.position{_FENCE}
    RETURNING t.position - cardinality($3::uuid[]) AS before
)"""
_APPEND_INSERT = f"""
INSERT INTO events (event_id, tenant_id, stream_id, stream_version, type, schema_version,
                    data, metadata, idempotency_key, tenant_position)
SELECT e.event_id, $2, $1, head.version + e.ord, e.type, e.schema_version, e.data, $7, $8,
       tenant_head.before + e.ord
FROM head, tenant_head,
     unnest($3::uuid[], $4::text[], $5::integer[], $6::jsonb[])
         WITH ORDINALITY AS e(event_id, type, schema_version, data, ord)
RETURNING {APPENDED_COLUMNS}
"""
APPEND = f"WITH {_APPEND_HEADS} {_APPEND_INSERT}"

# Where a tenant went, when its head row refused an append (eventstore 0008).
MOVED_TO = "SELECT moved_to FROM tenant_heads WHERE tenant_id = $1"

# Many new streams in one statement (bulk imports): versions are numbered by the caller;
# a stream that already exists collides on (stream_id, stream_version). Tenant positions come
# from the tenant's head row, as for every append (none when the tenant has moved).
APPEND_NEW_STREAMS = f"""
WITH tenant_head AS (
    INSERT INTO tenant_heads AS t (tenant_id, position) VALUES ($1, cardinality($4::uuid[]))
    ON CONFLICT (tenant_id) DO UPDATE SET position = t.position + EXCLUDED.position WHERE t.moved_to IS NULL
    RETURNING t.position - cardinality($4::uuid[]) AS before
)
INSERT INTO events (event_id, tenant_id, stream_id, stream_version, type, schema_version, data, metadata,
                    tenant_position)
SELECT e.event_id, $1, e.stream_id, e.stream_version, e.type, e.schema_version, e.data, $7, tenant_head.before + e.ord
FROM tenant_head, unnest($2::text[], $3::integer[], $4::uuid[], $5::text[], $6::integer[], $8::jsonb[])
    WITH ORDINALITY AS e(stream_id, stream_version, event_id, type, schema_version, data, ord)
RETURNING {APPENDED_COLUMNS}
"""


# The appended events' rows are the CTE ``appended``; a view write's parameters follow the
# append's nine. See ``ViewWrite``.
VIEW_PARAMS_START = 10
# (PostgreSQL allows data-modifying CTEs only at the top level, so the append's own CTEs come first.)
_APPENDED = f"WITH {_APPEND_HEADS}, appended AS ({_APPEND_INSERT})"
_APPEND_WITH_VIEW = _APPENDED + ", view_write AS ({view}) SELECT * FROM appended"
# A new subject's data key (eventstore/crypto.py), its parameters after the view's.
_APPEND_WITH_KEYS = _APPENDED + ", new_keys AS ({keys}) SELECT * FROM appended"
_APPEND_WITH_VIEW_AND_KEYS = _APPENDED + ", view_write AS ({view}), new_keys AS ({keys}) SELECT * FROM appended"


@dataclass(frozen=True, slots=True)
class ViewWrite:
    """A read model's row write made in the append's own statement: one round trip for both,
    and no transaction to open or commit around them.

    ``sql`` is one data-modifying statement whose parameters are numbered from
    ``$VIEW_PARAMS_START``. It may read ``appended`` (the new events' rows) and must do
    nothing when ``appended`` is empty (the append lost its expected-version check). With a
    view write the inline projections do not run: the write is those events' projection.
    """

    sql: str
    params: tuple[object, ...]


def append_statement(view: ViewWrite | None, new_keys: Sequence[tuple[str, str, bytes, bytes]],
                     arguments: tuple[object, ...], *, fenced: bool = True) -> tuple[str, tuple[object, ...]]:
    """The append's one statement: with the view write and the new subjects' keys if any.

    ``fenced``: refused once the tenant has moved (its head row's ``moved_to``). A stream of
    reference data, which stays on the home database when the tenant moves, is not."""
    parameters = arguments + (view.params if view is not None else ())
    keys = new_keys_cte(len(parameters) + 1) if new_keys else ""
    if new_keys:
        parameters += ([k[0] for k in new_keys], [k[1] for k in new_keys], [k[2] for k in new_keys])
    if view is not None and new_keys:
        sql = _APPEND_WITH_VIEW_AND_KEYS.format(view=view.sql, keys=keys)
    elif view is not None:
        sql = _APPEND_WITH_VIEW.format(view=view.sql)
    elif new_keys:
        sql = _APPEND_WITH_KEYS.format(keys=keys)
    else:
        sql = APPEND
    return (sql if fenced else sql.replace(_FENCE, "")), parameters
