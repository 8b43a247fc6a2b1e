"""``scim-gateway token create|list|rotate|revoke``."""

from __future__ import annotations

import argparse
import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.tenant import DEFAULT_SCOPES, SCOPES
from gateway.cli.output import UserError, cli_actor, print_json, print_table, say, table_time
from gateway.cli.parsers import Parents
from gateway.cli.session import open_store
from gateway.settings import Settings
from gateway.tenancy import TokenRow

_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(option: str, text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w``."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise UserError(f"{option} takes a number and a unit (s, m, h, d or w), e.g. 90d; not {text!r}")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _expiry(text: str | None) -> datetime | None:
    return None if text is None else datetime.now(UTC) + parse_duration("--expires-in", text)


def token_dict(row: TokenRow) -> dict[str, Any]:
    return {"id": str(row.token_id), "tenant": row.tenant, "owner": row.owner, "description": row.description,
            "scopes": list(row.scopes), "issued": row.issued_at.isoformat(),
            "expires": row.expires_at.isoformat() if row.expires_at else None,
            "last_used": row.last_used_at.isoformat() if row.last_used_at else None,
            "revoked": row.revoked_at.isoformat() if row.revoked_at else None}


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    expires_at = _expiry(args.expires_in)

    async def run() -> tuple[uuid.UUID, str]:
        async with open_store(settings) as session:
            return await session.tenancy.create_token(
                args.tenant, args.owner, args.description, tuple(args.scope or ()), cli_actor(), expires_at)

    token_id, secret = asyncio.run(run())
    until = f", valid until {table_time(expires_at)}" if expires_at else ""
    say(f"token {token_id} issued to {args.owner} on tenant {args.tenant}{until}; the secret is shown once")
    if args.json:
        print_json({"id": str(token_id), "secret": secret, "tenant": args.tenant, "owner": args.owner,
                    "scopes": list(dict.fromkeys(args.scope or DEFAULT_SCOPES)),
                    "expires": expires_at.isoformat() if expires_at else None})
    else:
        print(secret, flush=True)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> list[TokenRow]:
        async with open_store(settings) as session:
            return await session.tenancy.tokens(args.tenant)

    rows = asyncio.run(run())
    if args.json:
        print_json([token_dict(r) for r in rows])
    else:
        print_table([{"id": str(r.token_id), "owner": r.owner, "description": r.description,
                      "scopes": " ".join(r.scopes), "issued": table_time(r.issued_at),
                      "expires": table_time(r.expires_at), "last_used": table_time(r.last_used_at),
                      "revoked": table_time(r.revoked_at)} for r in rows],
                    ["id", "owner", "description", "scopes", "issued", "expires", "last_used", "revoked"])
    return 0


def cmd_rotate(args: argparse.Namespace, settings: Settings) -> int:
    grace = parse_duration("--grace", args.grace)
    expires_at = _expiry(args.expires_in)

    async def run() -> tuple[TokenRow, str]:
        async with open_store(settings) as session:
            token_id, secret = await session.tenancy.rotate_token(args.token, grace, cli_actor(), expires_at)
            return await session.tenancy.token(token_id), secret

    row, secret = asyncio.run(run())
    until = table_time(datetime.now(UTC) + grace)
    say(f"token {row.token_id} has a new secret, shown once; the previous one works until {until}")
    if args.json:
        print_json({**token_dict(row), "secret": secret, "previous_valid_until": until})
    else:
        print(secret, flush=True)
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> uuid.UUID:
        async with open_store(settings) as session:
            return await session.tenancy.revoke_token(args.token, cli_actor())

    say(f"token {asyncio.run(run())} revoked")
    return 0


def add_parser(commands: Any, parents: Parents) -> None:
    token = commands.add_parser("token", help="bearer tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION")
    create = token.add_parser("create", parents=parents.data(), help="issue a token; prints the secret once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--owner", required=True, help="email of the dedicated SCIM user")
    create.add_argument("--description", default="SCIM Token")
    create.add_argument("--scope", action="append", choices=SCOPES,
                        help="repeatable; default scim:read and scim:write")
    create.add_argument("--expires-in", metavar="DURATION", help="e.g. 90d, 12h (default: until revoked)")
    create.set_defaults(run=cmd_create)
    tlist = token.add_parser("list", parents=parents.data(), help="a tenant's tokens, with expiry and last use")
    tlist.add_argument("--tenant", required=True)
    tlist.set_defaults(run=cmd_list)
    rotate = token.add_parser("rotate", parents=parents.data(),
                              help="a new secret for a token; the old one works for a grace period")
    rotate.add_argument("token", metavar="ID", help="the token's id (or its current secret)")
    rotate.add_argument("--grace", default="24h", metavar="DURATION",
                        help="how long the previous secret keeps working (default 24h; 0s: not at all)")
    rotate.add_argument("--expires-in", metavar="DURATION", help="a new expiry from now (default: unchanged)")
    rotate.set_defaults(run=cmd_rotate)
    revoke = token.add_parser("revoke", parents=[parents.common], help="revoke a token at once")
    revoke.add_argument("token", metavar="ID", help="the token's id (or its secret, which is not echoed)")
    revoke.set_defaults(run=cmd_revoke)
