"""The ``scim-gateway`` command line (DESIGN.md section 6).

Human messages go to stderr, machine output to stdout. Exit status: 0 success, 1 a user
error (one line on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from eventstore import EventStore
from eventstore.pool import create_pool
from gateway import erasure_cli, replay_cli
from gateway.database import migrate_database, resolve_database_url
from gateway.domain.errors import Rejected
from gateway.domain.policy import PROFILES
from gateway.keys import cli_cipher
from gateway.settings import Settings, SettingsError, load_settings
from gateway.tenancy import Tenancy
from projections.tenancy import TenancyProjection
from projections.users_view import UsersView


class UserError(Exception):
    """Reported as one line on stderr with exit status 1."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cli_actor() -> dict[str, str]:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return {"token_id": "", "owner": f"cli:{user}", "token_description": "scim-gateway CLI"}


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


async def _with_tenancy(dsn: str, action: Callable[[Tenancy], Awaitable[Any]]) -> Any:
    await migrate_database(dsn)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        store = EventStore(pool, [TenancyProjection(), UsersView()])
        return await action(Tenancy(store))
    finally:
        await pool.close()


# Commands ------------------------------------------------------------------------------


def cmd_db_migrate(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    applied = asyncio.run(migrate_database(dsn))
    _say(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_tenant_create(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    row = asyncio.run(_with_tenancy(dsn, lambda t: t.create_tenant(
        args.name, args.profile, _cli_actor(), default_profile=args.default_profile)))
    if args.json:
        _print_json(_tenant_dict(row))
    else:
        _say(f"created tenant {row.name} ({row.profile} profile), id {row.tenant_id}")
    return 0


def _tenant_dict(row: Any) -> dict[str, Any]:
    return {"id": str(row.tenant_id), "name": row.name, "profile": row.profile,
            "settings": row.settings, "created": row.created_at.isoformat()}


def cmd_tenant_list(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    rows = [_tenant_dict(r) for r in asyncio.run(_with_tenancy(dsn, lambda t: t.tenants()))]
    if args.json:
        _print_json(rows)
    else:
        _print_table(rows, ["name", "profile", "settings", "id", "created"])
    return 0


def cmd_tenant_set(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    assignments: dict[str, str] = {}
    for item in args.assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"expected KEY=VALUE, got {item!r}")
        assignments[key] = value
    row = asyncio.run(_with_tenancy(dsn, lambda t: t.set_tenant(args.name, assignments, _cli_actor())))
    if args.json:
        _print_json(_tenant_dict(row))
    else:
        _say(f"tenant {row.name}: profile {row.profile}, settings {dict(row.settings)}")
    return 0


def cmd_token_create(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    token_id, secret = asyncio.run(_with_tenancy(dsn, lambda t: t.create_token(
        args.tenant, args.owner, args.description, tuple(args.scope or ()), _cli_actor())))
    _say(f"token {token_id} issued to {args.owner} on tenant {args.tenant}; "
         "the secret below is shown once")
    print(secret, flush=True)
    return 0


def cmd_token_list(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    rows = [
        {"id": str(r.token_id), "owner": r.owner, "description": r.description,
         "scopes": " ".join(r.scopes), "issued": r.issued_at.isoformat(),
         "revoked": r.revoked_at.isoformat() if r.revoked_at else ""}
        for r in asyncio.run(_with_tenancy(dsn, lambda t: t.tokens(args.tenant)))
    ]
    if args.json:
        _print_json(rows)
    else:
        _print_table(rows, ["id", "owner", "description", "scopes", "issued", "revoked"])
    return 0


def cmd_token_revoke(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    asyncio.run(_with_tenancy(dsn, lambda t: t.revoke_token(args.token_id, _cli_actor())))
    _say(f"token {args.token_id} revoked")
    return 0


def cmd_users_import(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    from gateway.importer import import_users

    count = asyncio.run(import_users(dsn, settings, args.tenant, Path(args.file), _cli_actor()))
    _say(f"imported {count} user(s) into tenant {args.tenant}")
    return 0


def cmd_projections_rebuild(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    from gateway.progress import ProgressBar
    from projections.catalog import PROJECTIONS
    from projections.rebuild import rebuild

    names = [args.name] if args.name else list(PROJECTIONS)
    if args.name and args.name not in PROJECTIONS:
        raise UserError(f"unknown projection {args.name!r}; expected one of {sorted(PROJECTIONS)}")

    async def run() -> None:
        await migrate_database(dsn)
        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            store = EventStore(pool, cipher=cli_cipher(settings))
            for name in names:
                bar = ProgressBar(f"rebuilding {name}")
                rows = await rebuild(dsn, store, name, progress=lambda done, head, b=bar: b.update(done))
                bar.close()
                _say(f"rebuilt {name}: {rows} row(s)")
        finally:
            await pool.close()

    asyncio.run(run())
    return 0


def cmd_audit_export(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    from gateway.audit_export import export_to

    count = asyncio.run(export_to(dsn, args, cli_cipher(settings)))
    _say(f"exported {count} row(s)")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    from gateway.serve import serve

    serve(settings, dsn)
    return 0


# Parser --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", help="PostgreSQL URL (env SCIM_GATEWAY_DATABASE_URL); "
                        "default: embedded PostgreSQL under --data-dir")
    common.add_argument("--data-dir", type=Path,
                        help="embedded PostgreSQL home (env SCIM_GATEWAY_DATA_DIR, default ./.scim-gateway)")
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    parser = argparse.ArgumentParser(prog="scim-gateway",
                                     description="Event-sourced SCIM 2.0 gateway")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="migrate, then serve HTTP")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument("--workers", type=int, help="processes sharing the port (default 1)")
    serve.set_defaults(run=cmd_serve)

    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True, metavar="ACTION")
    db.add_parser("migrate", parents=[common], help="apply pending migrations").set_defaults(
        run=cmd_db_migrate)

    tenant = commands.add_parser("tenant", help="tenants").add_subparsers(
        dest="tenant_command", required=True, metavar="ACTION")
    create = tenant.add_parser("create", parents=[common], help="create a tenant")
    create.add_argument("name")
    create.add_argument("--profile", choices=PROFILES, default="bynder")
    create.add_argument("--default-profile", help="permission profile given to new users")
    create.set_defaults(run=cmd_tenant_create)
    tenant.add_parser("list", parents=[common], help="list tenants").set_defaults(run=cmd_tenant_list)
    tset = tenant.add_parser("set", parents=[common], help="change tenant settings")
    tset.add_argument("name")
    tset.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    tset.set_defaults(run=cmd_tenant_set)

    token = commands.add_parser("token", help="bearer tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION")
    tcreate = token.add_parser("create", parents=[common], help="issue a token; prints the secret")
    tcreate.add_argument("--tenant", required=True)
    tcreate.add_argument("--owner", required=True, help="email of the dedicated SCIM user")
    tcreate.add_argument("--description", default="SCIM Token")
    tcreate.add_argument("--scope", action="append",
                         help="scim:read, scim:write, audit:read or admin (repeatable; "
                              "default scim:read and scim:write)")
    tcreate.set_defaults(run=cmd_token_create)
    tlist = token.add_parser("list", parents=[common], help="list a tenant's tokens")
    tlist.add_argument("--tenant", required=True)
    tlist.set_defaults(run=cmd_token_list)
    trevoke = token.add_parser("revoke", parents=[common], help="revoke a token at once")
    trevoke.add_argument("token_id")
    trevoke.set_defaults(run=cmd_token_revoke)

    projections = commands.add_parser("projections", help="read models").add_subparsers(
        dest="projections_command", required=True, metavar="ACTION")
    prebuild = projections.add_parser("rebuild", parents=[common],
                                      help="rebuild projections from the event log and swap them in")
    prebuild.add_argument("name", nargs="?", help="tenancy, users_view or audit (default: all)")
    prebuild.set_defaults(run=cmd_projections_rebuild)

    audit = commands.add_parser("audit", help="audit trail").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION")
    aexport = audit.add_parser("export", parents=[common], help="export the audit trail or provisioning log")
    aexport.add_argument("--tenant", required=True)
    aexport.add_argument("--kind", choices=("events", "provisioning"), default="events")
    aexport.add_argument("--since", help="RFC 3339 time, inclusive")
    aexport.add_argument("--until", help="RFC 3339 time, exclusive")
    aexport.add_argument("--user", help="user id or userName")
    aexport.add_argument("--actor", help="token id or owner")
    aexport.add_argument("--action")
    aexport.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    aexport.add_argument("-o", "--output", help="file to write (default: stdout)")
    aexport.set_defaults(run=cmd_audit_export)

    replay_cli.add_parser(commands, common)

    users = commands.add_parser("users", help="users").add_subparsers(
        dest="users_command", required=True, metavar="ACTION")
    uimport = users.add_parser("import", parents=[common],
                               help="import existing (e.g. credential-login) users from JSON lines")
    uimport.add_argument("file")
    uimport.add_argument("--tenant", required=True)
    uimport.set_defaults(run=cmd_users_import)
    erasure_cli.add_commands(commands, users, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(
            database_url=args.database_url,
            data_dir=args.data_dir,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
        )
        dsn = resolve_database_url(settings.database_url, settings.data_dir)
        return args.run(args, settings, dsn)
    except (UserError, SettingsError) as error:
        _say(f"scim-gateway: {error}")
        return 1
    except Rejected as error:
        _say(f"scim-gateway: {error.detail}")
        return 1
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        _say(f"scim-gateway: cannot use the database: {error}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
