"""Re-folding stored keys when the case-folding rule changes (migration 0009).

SQL cannot apply ``domain.identifiers.fold``, so the migration only adds the
columns, and this runs right after it, in Python, over every row of both views.
"""

from __future__ import annotations

import asyncpg
import structlog

from projections import groups_view, users_view

CASE_FOLD_MIGRATION = "projections/0009_one_case_fold"

log = structlog.get_logger("projections.refold")


async def refold_views(connection: asyncpg.Connection) -> None:
    collisions = await users_view.refold(connection)
    await groups_view.refold(connection)
    if collisions:
        # Two accounts whose userNames differed only by a fold the old rule missed (e.g. ß and
        # ss): both stay, with their old keys, until an operator renames or deletes one.
        log.warning("case_fold_collisions", user_ids=collisions)
