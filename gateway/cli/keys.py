"""``scim-gateway keys public`` (the checkpoint signing key's public half, docs/integrity.md)
and ``keys rotate`` (a new key-encryption key for the data keys, docs/privacy.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from gateway.cli.output import say
from gateway.cli.parsers import Parents
from gateway.cli.session import open_store
from gateway.settings import Settings
from gateway.signing_key import load_signing_key, signing_key_path


def cmd_public(args: argparse.Namespace, settings: Settings) -> int:
    key, created = load_signing_key(settings)
    if created:
        say(f"made a new checkpoint signing key at {signing_key_path(settings)}; keep it outside the database")
    verifier = key.verifier
    if args.json:
        sys.stdout.write(orjson.dumps({"name": verifier.name, "key_id": verifier.key_id.hex(),
                                       "verifier_key": verifier.text()}).decode() + "\n")
    else:
        print(verifier.text(), flush=True)
    return 0


def cmd_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import keys

    async def run() -> tuple[int, Any]:
        async with open_store(settings, projections=()) as session:
            return await keys.rotate(settings, list(session.shards.pools.values()))

    count, retired = asyncio.run(run())
    say(f"re-wrapped {count} data key(s) under a new key-encryption key at {keys.kek_path(settings)}; "
        f"the old one is at {retired}: keep it only as long as backups taken before now are kept, then "
        "destroy it (docs/privacy.md)")
    return 0


def add_parser(commands: Any, parents: Parents) -> None:
    keys = commands.add_parser("keys", help="signing and encryption keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION")
    public = keys.add_parser("public", parents=parents.data(),
                             help="print the checkpoint signing key's public half")
    public.set_defaults(run=cmd_public)
    rotate = keys.add_parser("rotate", parents=[parents.common],
                             help="re-wrap every data key under a new key-encryption key")
    rotate.set_defaults(run=cmd_rotate)
