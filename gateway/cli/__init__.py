"""The ``scim-gateway`` command line (DESIGN.md section 6).

One module per command family, each adding its parser with ``add_parser``; every command
reaches the database through ``gateway.cli.session.open_store``. Human messages go to
stderr, machine output to stdout. Exit status: 0 success, 1 a user error (one line on
stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from domain.errors import Rejected
from eventstore.errors import DRIVER_ERRORS
from gateway.cli import audit, db, keys, projections, projector, replay, serve, tenant, token, users
from gateway.cli.output import UserError, say
from gateway.cli.parsers import Parents
from gateway.cli.session import CannotUseDatabase
from gateway.database import NoDatabase, SchemaNotCurrent
from gateway.settings import SettingsError, load_settings

# Command families in the order ``--help`` lists them.
FAMILIES = (serve, projector, db, tenant, token, users, projections, audit, replay, keys)


def _version() -> str:
    # Imported here: reading package metadata costs every command ~40 ms of start-up.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scim-gateway")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


class _Version(argparse.Action):
    """``--version``, looked up only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(f"scim-gateway {_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", help="PostgreSQL URL (env SCIM_GATEWAY_DATABASE_URL); "
                        "default: embedded PostgreSQL under --data-dir")
    common.add_argument("--data-dir", type=Path,
                        help="embedded PostgreSQL home (env SCIM_GATEWAY_DATA_DIR, default ./.scim-gateway)")
    json = argparse.ArgumentParser(add_help=False)
    json.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    parser = argparse.ArgumentParser(prog="scim-gateway", description="Event-sourced SCIM 2.0 gateway")
    parser.add_argument("--version", action=_Version, nargs=0, help="show program's version number and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = Parents(common, json)
    for family in FAMILIES:
        family.add_parser(commands, parents)
    return parser


def _quiet_broken_pipe() -> int:
    # The reader went away (``| head``): stop without a traceback, and keep Python's exit-time
    # flush of stdout from failing again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(
            database_url=args.database_url,
            data_dir=args.data_dir,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
            console_port=getattr(args, "console_port", None),
            console_host=getattr(args, "console_host", None),
            migrate=False if getattr(args, "no_migrate", False) else None,
            background_projector=False if getattr(args, "no_projector", False) else None,
        )
        return args.run(args, settings)
    except (UserError, SettingsError, NoDatabase, SchemaNotCurrent) as error:
        say(f"scim-gateway: {error}")
        return 1
    except Rejected as error:
        say(f"scim-gateway: {error.detail}")
        return 1
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (CannotUseDatabase, *DRIVER_ERRORS) as error:
        say(f"scim-gateway: cannot use the database: {error}")
        return 1
    except OSError as error:
        # Not the database (that is CannotUseDatabase): a file or a socket of ours.
        where = f": {error.filename}" if error.filename else ""
        say(f"scim-gateway: {error.strerror or error}{where}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
