"""``scim-gateway projections rebuild``: rebuild read models from the event log (as the owner)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.cli.output import say
from gateway.cli.parsers import Parents
from gateway.cli.session import open_store
from gateway.progress import ProgressBar
from gateway.settings import Settings
from projections.catalog import PROJECTIONS


def cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from projections.rebuild import rebuild

    names = [args.name] if args.name else list(PROJECTIONS)

    async def run() -> None:
        # Scratch schemas need CREATE on the database: the owner's privilege.
        async with open_store(settings, owner=True, projections=()) as session:
            for name in names:
                bar = ProgressBar(f"rebuilding {name}")
                rows = await rebuild(session.dsn, session.store, name,
                                     progress=lambda done, head, b=bar: b.update(done, head))
                bar.close()
                say(f"rebuilt {name}: {rows} row(s)")

    asyncio.run(run())
    return 0


def add_parser(commands: Any, parents: Parents) -> None:
    projections = commands.add_parser("projections", help="read models").add_subparsers(
        dest="projections_command", required=True, metavar="ACTION")
    rebuild = projections.add_parser("rebuild", parents=[parents.common],
                                     help="rebuild projections from the event log and swap them in (as the owner)")
    rebuild.add_argument("name", nargs="?", choices=list(PROJECTIONS), metavar="NAME",
                         help=f"one of {', '.join(PROJECTIONS)} (default: all)")
    rebuild.set_defaults(run=cmd_rebuild)
