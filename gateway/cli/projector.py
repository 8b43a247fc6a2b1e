"""``scim-gateway projector``: the catch-up audit projector and the sealer, without serving.

Run beside ``serve --no-projector`` to keep their CPU off the serving path; any number may
run at once (they share the tenants, gateway/projector.py).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.cli.parsers import Parents
from gateway.cli.session import open_store
from gateway.settings import Settings


def cmd_projector(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import heap
    from gateway.log import configure_logging
    from gateway.projector import projectors, run_until_signalled
    from gateway.sealing import check_signing_key

    async def run() -> None:
        # One connection per runner and one for the sealer's signing round.
        async with open_store(settings, projections=(), pool_size=4) as session:
            if settings.sealing:
                check_signing_key(settings)  # as ``serve``: a missing key stops the start, with its path
            configure_logging(settings.log_level)
            assert session.store.cipher is not None
            heap.settle()
            await run_until_signalled(projectors(session.store, session.shards, session.store.cipher, settings))

    asyncio.run(run())
    return 0


def add_parser(commands: Any, parents: Parents) -> None:
    projector = commands.add_parser(
        "projector", parents=[parents.common],
        help="run the audit projector and the sealer until SIGTERM/SIGINT (beside `serve --no-projector`)")
    projector.set_defaults(run=cmd_projector)
