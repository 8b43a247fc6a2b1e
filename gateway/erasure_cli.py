"""``users erase`` and ``keys rotate``: the operator's side of erasure (docs/privacy.md)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

import orjson

from eventstore import EventStore
from eventstore.pool import create_pool
from gateway import keys
from gateway.database import migrate_database
from gateway.erasure import erase_user
from gateway.replay import Replay
from gateway.settings import Settings
from gateway.tenancy import Tenancy
from projections.audit import AuditProjection
from projections.groups_view import GroupsView
from projections.runner import CatchUpRunner
from projections.tenancy import TenancyProjection
from projections.users_view import UsersView


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _actor() -> dict[str, str]:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return {"token_id": "", "owner": f"cli:{user}", "token_description": "scim-gateway CLI"}


def cmd_users_erase(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    async def run() -> dict[str, Any]:
        await migrate_database(dsn)
        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            store = EventStore(pool, [TenancyProjection(), UsersView(), GroupsView()],
                               cipher=keys.cli_cipher(settings))
            tenant = await Tenancy(store).tenant(args.tenant)
            user_id = await Replay(store).resolve_user(tenant.tenant_id, args.user)
            erased = await erase_user(store, tenant.tenant_id, user_id, actor=_actor(), reason=args.reason,
                                      ticket=args.ticket, confirm_active=args.confirm_active)
            # Scrub the audit trail now rather than when the server's projector next runs.
            await CatchUpRunner(store, "audit", AuditProjection()).catch_up()
            return erased.as_dict()
        finally:
            await pool.close()

    result = asyncio.run(run())
    if result["alreadyErased"]:
        _say(f"user {result['id']} was already erased at {result['erasedAt']} by {result['erasedBy']}; "
             "nothing done")
    else:
        _say(f"erased user {result['id']}: its key is destroyed, its values read [erased]")
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    async def run() -> tuple[int, Any]:
        await migrate_database(dsn)
        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            return await keys.rotate(settings, pool)
        finally:
            await pool.close()

    count, retired = asyncio.run(run())
    _say(f"re-wrapped {count} data key(s) under a new key-encryption key at {keys.kek_path(settings)}; "
         f"the old one is at {retired}: keep it only as long as backups taken before now are kept, then "
         "destroy it (docs/privacy.md)")
    return 0


def add_commands(commands: Any, users: Any, common: argparse.ArgumentParser) -> None:
    erase = users.add_parser("erase", parents=[common],
                             help="erase a person for good (crypto-shredding); never done through SCIM")
    erase.add_argument("user", help="id, userName or externalId")
    erase.add_argument("--tenant", required=True)
    erase.add_argument("--reason", required=True, help="why (kept in the audit trail, with the actor)")
    erase.add_argument("--ticket", help="the request's ticket id")
    erase.add_argument("--confirm-active", action="store_true", help="erase even though the user is active")
    erase.set_defaults(run=cmd_users_erase)
    key_commands = commands.add_parser("keys", help="encryption keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION")
    rotate = key_commands.add_parser("rotate", parents=[common],
                                     help="re-wrap every data key under a new key-encryption key")
    rotate.set_defaults(run=cmd_keys_rotate)
