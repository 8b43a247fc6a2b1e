"""``scim-gateway keys public``: the checkpoint signing key's public half (docs/integrity.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from gateway.cli.output import say
from gateway.cli.parsers import Parents
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


def add_parser(commands: Any, parents: Parents) -> None:
    keys = commands.add_parser("keys", help="keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION")
    public = keys.add_parser("public", parents=parents.data(),
                             help="print the checkpoint signing key's public half")
    public.set_defaults(run=cmd_public)
