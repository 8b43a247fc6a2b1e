"""``scim-gateway serve``: migrate unless told not to, then serve HTTP (and, unless
``--no-projector``, run the background projectors in the same process)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.cli.output import UserError
from gateway.cli.parsers import Parents
from gateway.cli.session import CannotUseDatabase, locate
from gateway.settings import Settings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.serve import CannotListen, serve

    database = asyncio.run(locate(settings, create=settings.migrate))
    try:
        serve(settings, database)
    except CannotListen as error:
        raise UserError(error.strerror) from None
    except (ConnectionError, TimeoutError) as error:
        raise CannotUseDatabase(str(error)) from error
    return 0


def add_parser(commands: Any, parents: Parents) -> None:
    serve = commands.add_parser("serve", parents=[parents.common],
                                help="migrate (unless --no-migrate), then serve HTTP")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument("--workers", type=int, help="processes sharing the port (default 1)")
    serve.add_argument("--console-port", type=int,
                       help="serve the admin console on this port only (default: on the API's port)")
    serve.add_argument("--console-host", help="listen address of --console-port (default: --host)")
    serve.add_argument("--no-migrate", action="store_true",
                       help="do not touch the schema (env SCIM_GATEWAY_MIGRATE=false); refuse to start "
                            "if migrations are pending")
    serve.add_argument("--no-projector", action="store_true",
                       help="serve only: leave the audit projector and the sealer to `scim-gateway projector` "
                            "processes (env SCIM_GATEWAY_BACKGROUND_PROJECTOR=false)")
    serve.set_defaults(run=cmd_serve)
