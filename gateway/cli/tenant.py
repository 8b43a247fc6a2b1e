"""``scim-gateway tenant create|list|set``."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from domain.policy import PROFILES
from gateway.cli.output import UserError, cli_actor, key_values, print_json, print_table, say, table_time
from gateway.cli.parsers import Parents
from gateway.cli.session import open_store
from gateway.settings import Settings
from gateway.tenancy import TenantRow


def tenant_dict(row: TenantRow) -> dict[str, Any]:
    return {"id": str(row.tenant_id), "name": row.name, "profile": row.profile,
            "settings": row.settings, "created": row.created_at.isoformat()}


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> TenantRow:
        async with open_store(settings) as session:
            return await session.tenancy.create_tenant(args.name, args.profile, cli_actor(),
                                                       default_profile=args.default_profile)

    row = asyncio.run(run())
    if args.json:
        print_json(tenant_dict(row))
    else:
        say(f"created tenant {row.name} ({row.profile} profile), id {row.tenant_id}")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> list[TenantRow]:
        async with open_store(settings) as session:
            return await session.tenancy.tenants()

    rows = asyncio.run(run())
    if args.json:
        print_json([tenant_dict(r) for r in rows])
    else:
        print_table([{"name": r.name, "profile": r.profile, "settings": key_values(r.settings),
                      "id": str(r.tenant_id), "created": table_time(r.created_at)} for r in rows],
                    ["name", "profile", "settings", "id", "created"])
    return 0


def cmd_set(args: argparse.Namespace, settings: Settings) -> int:
    assignments: dict[str, str] = {}
    for item in args.assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"expected KEY=VALUE, got {item!r}")
        assignments[key] = value

    async def run() -> TenantRow:
        async with open_store(settings) as session:
            return await session.tenancy.set_tenant(args.name, assignments, cli_actor())

    row = asyncio.run(run())
    if args.json:
        print_json(tenant_dict(row))
    else:
        say(f"tenant {row.name}: profile={row.profile} {key_values(row.settings)}".rstrip())
    return 0


def add_parser(commands: Any, parents: Parents) -> None:
    tenant = commands.add_parser("tenant", help="tenants").add_subparsers(
        dest="tenant_command", required=True, metavar="ACTION")
    create = tenant.add_parser("create", parents=parents.data(), help="create a tenant")
    create.add_argument("name")
    create.add_argument("--profile", choices=PROFILES, default="bynder")
    create.add_argument("--default-profile", help="permission profile given to new users")
    create.set_defaults(run=cmd_create)
    tenant.add_parser("list", parents=parents.data(), help="list tenants").set_defaults(run=cmd_list)
    tset = tenant.add_parser("set", parents=parents.data(), help="change tenant settings")
    tset.add_argument("name")
    tset.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    tset.set_defaults(run=cmd_set)
