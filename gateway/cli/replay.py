"""``scim-gateway replay ...``: the replay tool's command line (tables for people, --json for tools)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson

from domain.errors import Reason, Rejected
from eventstore.directory import enter_tenant
from gateway import timestamps
from gateway.cli.audit import open_output
from gateway.cli.parsers import Parents
from gateway.cli.session import open_store, work_on
from gateway.progress import ProgressBar
from gateway.replay import Entry, Replay
from gateway.scim.resource import render_user
from gateway.settings import Settings
from gateway.tenancy import Tenancy
from gateway.timestamps import timestamp


def parse_time(name: str, text: str | None) -> datetime | None:
    """RFC 3339; a time without an offset is taken as UTC (a responder types 14:02)."""
    return timestamps.parse_time(name, text, naive_is_utc=True)


def _json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


def _value(value: Any) -> str:
    return "-" if value is None else orjson.dumps(value).decode() if not isinstance(value, str) else value


def _entry_dict(item: Entry) -> dict[str, Any]:
    return {
        "position": item.position, "time": timestamp(item.recorded_at), "user_id": item.user_id, "action": item.action,
        "changes": [{"attribute": c.attribute, "old": c.old, "new": c.new} for c in item.changes],
        "actor": {"token_id": item.actor.token_id, "owner": item.actor.owner,
                  "description": item.actor.description},
        "request_id": item.request_id, "client_request_id": item.client_request_id, "detail": item.detail,
    }


def _print_entries(entries: list[Entry]) -> None:
    for item in entries:
        head = f"{timestamp(item.recorded_at)}  #{item.position}  {item.action:<17} by {item.actor.label()}"
        head += f"  request {item.request_id}" if item.request_id else ""
        print(head + (f" (caller's {item.client_request_id})" if item.client_request_id else ""))
        if item.detail:
            print(f"    {item.detail}")
        for change in item.changes:
            print(f"    {change.attribute}: {_value(change.old)} -> {_value(change.new)}")


def _run(settings: Settings, action: Callable[[Replay, Tenancy, str], Awaitable[int]], *,
         owner: bool = False) -> int:
    """Read-only: under the application role (``verify`` builds scratch schemas: the owner)."""
    async def run() -> int:
        async with open_store(settings, owner=owner, projections=()) as session:
            return await action(Replay(session.store), session.tenancy, session.dsn)

    return asyncio.run(run())


async def _tenant_id(tenancy: Tenancy, name: str | None) -> uuid.UUID:
    """The tenant the command works on; its database calls go to that tenant's database."""
    if name is None:
        tenants = await tenancy.tenants()
        if len(tenants) != 1:
            raise Rejected(Reason.INVALID_VALUE, "several tenants exist: name one with --tenant")
        name = tenants[0].name
    return (await work_on(tenancy, name)).tenant_id


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    if (args.at is None) == (args.position is None):
        raise Rejected(Reason.INVALID_VALUE, "give exactly one of --at TIME or --position N")
    at = parse_time("--at", args.at)

    async def run(replay: Replay, tenancy: Tenancy, dsn: str) -> int:
        tenant_id = await _tenant_id(tenancy, args.tenant)
        user_id = await replay.resolve_user(tenant_id, args.user)
        result = await replay.user_at(tenant_id, user_id, at=at, position=args.position)
        point = args.at or f"position {args.position}"
        if result.state is None:
            message = f"user {args.user} did not exist yet at {point} (created {timestamp(result.created)})"
            _json({"exists": False, "user_id": user_id,
                   "created": timestamp(result.created) if result.created else None}) if args.json else print(message)
            return 0
        resource = render_user(result.state, "", gateway_extension=True)
        resource["deleted"] = result.state.deleted
        if args.json:
            _json({"exists": True, "as_of": point, "position": result.position, "resource": resource})
            return 0
        state = "deleted" if result.state.deleted else ("active" if result.state.active else "deactivated")
        print(f"{result.state.user_name} ({user_id}) as of {point}: {state}, version {result.state.version}, "
              f"last event #{result.position}")
        for key, value in resource.items():
            if key not in ("schemas", "meta", "deleted"):
                print(f"  {key}: {_value(value)}")
        return 0

    return _run(settings, run)


def cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    since, until = parse_time("--since", args.since), parse_time("--until", args.until)

    async def run(replay: Replay, tenancy: Tenancy, dsn: str) -> int:
        tenant_id = await _tenant_id(tenancy, args.tenant)
        user_id = await replay.resolve_user(tenant_id, args.user)
        entries = await replay.timeline(tenant_id, user_id, since=since, until=until)
        _json([_entry_dict(e) for e in entries]) if args.json else _print_entries(entries)
        return 0

    return _run(settings, run)


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    since, until = parse_time("--since", args.since), parse_time("--until", args.until)

    async def run(replay: Replay, tenancy: Tenancy, dsn: str) -> int:
        tenant_id = await tenancy.token_tenant(args.token_id)
        enter_tenant(tenant_id)
        _, entries = await replay.token(tenant_id, args.token_id, since=since, until=until)
        _json([_entry_dict(e) for e in entries]) if args.json else _print_entries(entries)
        return 0

    return _run(settings, run)


def cmd_diff(args: argparse.Namespace, settings: Settings) -> int:
    start, end = parse_time("--from", args.from_), parse_time("--to", args.to)
    assert start is not None and end is not None

    async def run(replay: Replay, tenancy: Tenancy, dsn: str) -> int:
        tenant_id = await _tenant_id(tenancy, args.tenant)
        by_actor = await replay.diff(tenant_id, start, end)
        if args.json:
            _json([{"actor": {"token_id": a.token_id, "owner": a.owner, "description": a.description},
                    "users": [{"user_id": d.user_id, "user_name": d.user_name, "actions": d.actions,
                               "changes": [{"attribute": c.attribute, "old": c.old, "new": c.new}
                                           for c in d.changes]} for d in diffs]}
                   for a, diffs in by_actor.items()])
            return 0
        if not by_actor:
            print(f"no user changed between {args.from_} and {args.to}")
        for actor, diffs in by_actor.items():
            print(actor.label())
            for d in diffs:
                print(f"  {d.user_name or d.user_id} ({d.user_id}): {', '.join(d.actions)}")
                for change in d.changes:
                    print(f"    {change.attribute}: {_value(change.old)} -> {_value(change.new)}")
        return 0

    return _run(settings, run)


def cmd_tenant(args: argparse.Namespace, settings: Settings) -> int:
    at = parse_time("--at", args.at)
    output = open_output(args.output)

    async def run(replay: Replay, tenancy: Tenancy, dsn: str) -> int:
        tenant_id = await _tenant_id(tenancy, args.tenant)
        bar = ProgressBar("replaying users")
        count = 0
        with output:
            async for state in replay.tenant_at(tenant_id, at):
                output.write(orjson.dumps(render_user(state, "", gateway_extension=True)) + b"\n")
                count += 1
                bar.update(count)
        bar.close()
        print(f"wrote {count} user(s) as of {args.at or 'now'} to {args.output}", file=sys.stderr)
        return 0

    return _run(settings, run)


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from projections.catalog import PROJECTIONS
    from projections.rebuild import verify

    async def run(replay: Replay, tenancy: Tenancy, dsn: str) -> int:
        failures = 0
        report = []
        for name in PROJECTIONS:
            bar = ProgressBar(f"verifying {name}")
            differences = await verify(dsn, replay.store, name, progress=lambda done, head, b=bar: b.update(done))
            bar.close()
            report.append({"projection": name, "differences": [
                {"table": d.table, "only_live": d.only_live, "only_rebuilt": d.only_rebuilt} for d in differences]})
            failures += len(differences)
            if not args.json:
                if differences:
                    for d in differences:
                        print(f"{name}: {d.table}: {d.only_live} row(s) only in the live table, "
                              f"{d.only_rebuilt} only in the rebuild from the log")
                else:
                    print(f"{name}: matches the event log")
        if args.json:
            _json(report)
        return 1 if failures else 0

    return _run(settings, run, owner=True)


def add_parser(commands: Any, parents: Parents) -> None:
    data = parents.data()
    replay = commands.add_parser("replay", help="incident review from the event log").add_subparsers(
        dest="replay_command", required=True, metavar="ACTION")
    user = replay.add_parser("user", parents=data, help="a user as it was at a time or position")
    user.add_argument("user", help="id, userName or externalId (current or past)")
    user.add_argument("--at", help="RFC 3339 time (UTC if no offset)")
    user.add_argument("--position", type=int, help="a position in the event log")
    user.add_argument("--tenant")
    user.set_defaults(replay=cmd_user)
    timeline = replay.add_parser("timeline", parents=data, help="every event of one user")
    timeline.add_argument("user")
    timeline.add_argument("--since")
    timeline.add_argument("--until")
    timeline.add_argument("--tenant")
    timeline.set_defaults(replay=cmd_timeline)
    diff = replay.add_parser("diff", parents=data, help="what changed between two times, by actor")
    diff.add_argument("--from", dest="from_", required=True)
    diff.add_argument("--to", required=True)
    diff.add_argument("--tenant")
    diff.set_defaults(replay=cmd_diff)
    token = replay.add_parser("token", parents=data, help="everything one token did")
    token.add_argument("token_id")
    token.add_argument("--since")
    token.add_argument("--until")
    token.set_defaults(replay=cmd_token)
    tenant = replay.add_parser("tenant", parents=[parents.common], help="a whole tenant's users as of a time")
    tenant.add_argument("--at")
    tenant.add_argument("-o", "--output", required=True)
    tenant.add_argument("--tenant")
    tenant.set_defaults(replay=cmd_tenant)
    check = replay.add_parser("verify", parents=data,
                              help="rebuild every projection from the log and compare with the live tables")
    check.add_argument("--tenant", help="accepted for symmetry; every projection is checked whole")
    check.set_defaults(replay=cmd_verify)
    for sub in (user, timeline, diff, token, tenant, check):
        sub.set_defaults(run=lambda args, settings: args.replay(args, settings))
