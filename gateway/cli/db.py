"""``scim-gateway db migrate``: apply pending migrations as the owner role."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.cli.output import say
from gateway.cli.parsers import Parents
from gateway.cli.session import locate, reaching_the_database
from gateway.database import migrate_database
from gateway.settings import Settings


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> list[str]:
        database = await locate(settings, create=True)
        with reaching_the_database():
            return await migrate_database(database.owner_dsn, database.app_role)

    applied = asyncio.run(run())
    say(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    if settings.app_role and settings.database_url:
        say(f"granted {settings.app_role} the application's privileges")
    return 0


def add_parser(commands: Any, parents: Parents) -> None:
    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True, metavar="ACTION")
    migrate = db.add_parser("migrate", parents=[parents.common],
                            help="apply pending migrations (as the owner role); grant SCIM_GATEWAY_APP_ROLE "
                                 "the application's privileges")
    migrate.set_defaults(run=cmd_migrate)
