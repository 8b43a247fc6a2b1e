"""The schema's floor: ``bench.ceiling``'s handler, writing what this gateway's schema stores
for a create or a PATCH, in one autocommit statement and with no other work.

The ceiling (``bench.ceiling``) appends an event to a one-index table and upserts a
two-index view row. A create through the gateway stores more, whatever the Python around
it does: the event (8 indexes), the users view's row (6), the user's data key, the audit
trail's row (6), the provisioning log's row (6), the event's seal (2) and the audit's
identity row. This handler writes exactly those rows, copied from real rows of each
table (so the payloads are the sizes the gateway writes, sealed values included), into
tables made ``LIKE`` the real ones with all their indexes, one statement and one commit per
request as the ceiling writes its own: floor / ceiling is what the schema costs, like for
like. It leaves out authentication, validation, sealing, rendering, the access log, the
tenant's position counter and the integrity tree's head (rows every append of a tenant
serialises on), the checkpoints, the PATCH's read of the user, and the projector's and the
sealer's own transactions and reads. It is not a bound on the gateway, which sends a
tenant's concurrent appends as one pipeline with one commit (``eventstore.batching``).

    python -m bench.floor PORT DSN

The database must hold at least one create and one PATCH made through the gateway (a
``bench.run_all`` run has, by the time it measures the ceilings).
"""

from __future__ import annotations

import sys
import uuid

import asyncpg
import orjson
from aiohttp import web

from bench.ceiling import POOL, serve

# The real tables, and which template row of each a create and a PATCH copy.
_TEMPLATES = {
    "events": ("type = 'UserCreated'", "type = 'AttributeChanged'"),
    "users_view": ("true", None),
    "subject_keys": ("subject LIKE 'user:%'", None),
    "audit_trail": ("action = 'create'", "action = 'update'"),
    "provisioning_log": ("method = 'POST' AND result = 'success'", "method = 'PATCH' AND result = 'success'"),
    "event_seals": ("true", "true"),
    "audit_identities": ("true", "true"),
}

# Per table, the columns a request sets ($1 user id, $2 userName; ``n`` a fresh number,
# ``e`` a fresh event id); every other column is the template's. Identity and defaulted
# columns (position, transaction_id, recorded_at, created) are the database's, as in the gateway.
_SET = {
    "events": {"event_id": "k.e", "stream_id": "'user-' || $1", "stream_version": "k.n",
               "tenant_position": "k.n"},
    "users_view": {"id": "$1::uuid", "user_name": "$2", "user_name_lower": "lower($2)", "position": "k.n",
                   "version": "1"},
    "subject_keys": {"subject": "'user:' || $1"},
    "audit_trail": {"seq": "k.n", "event_id": "k.e", "position": "k.n", "recorded_at": "now()",
                    "user_id": "$1::uuid", "user_name": "$2", "user_name_folded": "lower($2)",
                    "request_id": "k.e::text"},
    "provisioning_log": {"seq": "k.n", "id": "k.e", "position": "k.n", "recorded_at": "now()",
                         "target_id": "$1::uuid", "target_user_name": "$2", "target_user_name_folded": "lower($2)",
                         "request_id": "k.e::text"},
    "event_seals": {"seq": "k.n", "event_id": "k.e", "position": "k.n"},
    "audit_identities": {"user_id": "$1::uuid", "user_name": "$2"},
}
_DEFAULTED = {"events": {"position", "transaction_id", "recorded_at"}, "subject_keys": {"created"},
              "event_seals": {"sealed_at"}}
_CONFLICT = {"audit_identities": "ON CONFLICT (tenant_id, user_id) DO UPDATE SET user_name = EXCLUDED.user_name"}


async def _setup(connection: asyncpg.Connection) -> dict[str, str]:
    """Make the floor's tables and templates; return the create's and the PATCH's statement."""
    await connection.execute("CREATE SEQUENCE IF NOT EXISTS floor_numbers")
    inserts: dict[str, list[str]] = {"post": [], "patch": []}
    for table, wheres in _TEMPLATES.items():
        await connection.execute(f"CREATE TABLE IF NOT EXISTS floor_{table} (LIKE {table} INCLUDING ALL)")
        columns = [r["column_name"] for r in await connection.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = $1 ORDER BY ordinal_position", table)]
        kept = [c for c in columns if c not in _DEFAULTED.get(table, ())]
        for scenario, where in zip(("post", "patch"), wheres, strict=True):
            if where is None:
                continue
            template = f"floor_template_{scenario}_{table}"
            await connection.execute(f"CREATE TABLE IF NOT EXISTS {template} (LIKE {table})")
            if not await connection.fetchval(f"SELECT count(*) FROM {template}"):
                found = await connection.execute(
                    f"INSERT INTO {template} SELECT * FROM {table} WHERE {where} ORDER BY random() LIMIT 1")
                if found.endswith(" 0"):
                    raise SystemExit(f"no {table} row where {where}: run the gateway's {scenario} first")
            values = ", ".join(_SET[table].get(c, f"t.{c}") for c in kept)
            inserts[scenario].append(f"INSERT INTO floor_{table} ({', '.join(kept)}) SELECT {values} "
                                     f"FROM {template} AS t, k {_CONFLICT.get(table, '')}")
    keys = "k AS (SELECT nextval('floor_numbers') AS n, gen_random_uuid() AS e)"
    # The PATCH's view row: the template's new attributes, as the gateway's update writes them.
    view = """UPDATE floor_users_view AS v SET given_name = $2, attributes = t.attributes,
        attributes_folded = t.attributes_folded, version = v.version + 1, last_modified = now(), position = k.n
        FROM floor_template_post_users_view AS t, k WHERE v.tenant_id = t.tenant_id AND v.id = $1::uuid"""
    def one_statement(statements: list[str]) -> str:
        *before, last = statements
        return "WITH " + ", ".join([keys, *(f"i{i} AS ({s})" for i, s in enumerate(before))]) + " " + last

    return {"post": one_statement(inserts["post"]), "patch": one_statement([*inserts["patch"], view])}


STATEMENTS = web.AppKey("statements", dict)


async def create(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    user_id = str(uuid.uuid4())
    await request.app[POOL].execute(request.app[STATEMENTS]["post"], user_id, body.get("userName"))
    return web.Response(body=orjson.dumps({**body, "id": user_id}), status=201,
                        content_type="application/scim+json")


async def patch(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    user_id = request.match_info["user_id"]
    value = body["Operations"][0]["value"]
    await request.app[POOL].execute(request.app[STATEMENTS]["patch"], user_id, value)
    return web.Response(body=orjson.dumps({"id": user_id, "name": {"givenName": value}}),
                        content_type="application/scim+json")


async def _prepare(app: web.Application, connection: asyncpg.Connection) -> None:
    app[STATEMENTS] = await _setup(connection)


def main() -> None:
    serve(int(sys.argv[1]), sys.argv[2], _prepare, [
        web.post("/scim/v2/Users", create),
        web.patch("/scim/v2/Users/{user_id}", patch),
    ])


if __name__ == "__main__":
    main()
