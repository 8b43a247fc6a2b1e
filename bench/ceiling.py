"""The ceiling for this stack: a minimal aiohttp + asyncpg handler that parses the body with
orjson and, in one autocommit statement, appends an event and upserts a view row in the same
PostgreSQL (synchronous commit on). No auth, no validation, no audit: what the gateway's POST
and PATCH are measured against (issue 13). Its reads are one statement each, by primary key
(GET by id) or by an indexed userName (``?filter=userName eq "..."``): what GET and filter
are measured against.

    python -m bench.ceiling PORT DSN
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import orjson
from aiohttp import web

SETUP = """
CREATE TABLE IF NOT EXISTS ceiling_events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id text NOT NULL,
    data jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ceiling_view (
    id uuid PRIMARY KEY,
    user_name text,
    doc jsonb NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS ceiling_view_user_name ON ceiling_view (user_name);
"""
READ = "SELECT doc FROM ceiling_view WHERE id = $1"
FIND = "SELECT id, doc FROM ceiling_view WHERE user_name = $1"

# One statement: the event, and the view row folded from it.
WRITE = """
WITH appended AS (INSERT INTO ceiling_events (stream_id, data) VALUES ($1, $2) RETURNING position)
INSERT INTO ceiling_view (id, user_name, doc, position)
SELECT $3, $4, $2, position FROM appended
ON CONFLICT (id) DO UPDATE SET doc = ceiling_view.doc || EXCLUDED.doc, position = EXCLUDED.position
"""

POOL = web.AppKey("pool", asyncpg.Pool)


async def write(request: web.Request, user_id: uuid.UUID, status: int) -> web.Response:
    body = orjson.loads(await request.read())
    await request.app[POOL].execute(WRITE, f"user-{user_id}", orjson.dumps(body).decode(), user_id,
                                    body.get("userName"))
    return web.Response(body=orjson.dumps({**body, "id": str(user_id)}), status=status,
                        content_type="application/scim+json")


async def create(request: web.Request) -> web.Response:
    return await write(request, uuid.uuid4(), 201)


async def patch(request: web.Request) -> web.Response:
    return await write(request, uuid.UUID(request.match_info["user_id"]), 200)


async def get(request: web.Request) -> web.Response:
    user_id = uuid.UUID(request.match_info["user_id"])
    doc = await request.app[POOL].fetchval(READ, user_id)
    if doc is None:
        return web.Response(status=404)
    return web.Response(body=orjson.dumps({**orjson.loads(doc), "id": str(user_id)}),
                        content_type="application/scim+json")


async def find(request: web.Request) -> web.Response:
    user_name = request.query.get("filter", "").partition(" eq ")[2].strip('"')
    rows = await request.app[POOL].fetch(FIND, user_name)
    resources = [{**orjson.loads(row["doc"]), "id": str(row["id"])} for row in rows]
    return web.Response(body=orjson.dumps({"totalResults": len(resources), "Resources": resources}),
                        content_type="application/scim+json")


def serve(port: int, dsn: str, prepare: Callable[[web.Application, asyncpg.Connection], Awaitable[None]],
          routes: list[web.RouteDef]) -> None:
    """A handler of this kind (``bench.ceiling``, ``bench.floor``) on ``port``: 16 connections,
    ``prepare`` run once on one of them, ``/readyz`` besides ``routes``, no access log."""

    async def database(app: web.Application):
        app[POOL] = await asyncpg.create_pool(dsn, min_size=16, max_size=16)
        async with app[POOL].acquire() as connection:
            await prepare(app, connection)
        yield
        await app[POOL].close()

    app = web.Application(client_max_size=1024 * 1024)
    app.cleanup_ctx.append(database)
    app.router.add_routes([*routes, web.get("/readyz", lambda _request: web.Response(text="ok"))])  # type: ignore[arg-type,return-value]
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _setup(_app: web.Application, connection: asyncpg.Connection) -> None:
    await connection.execute(SETUP)


def main() -> None:
    serve(int(sys.argv[1]), sys.argv[2], _setup, [
        web.post("/scim/v2/Users", create),
        web.patch("/scim/v2/Users/{user_id}", patch),
        web.get("/scim/v2/Users/{user_id}", get),
        web.get("/scim/v2/Users", find),
    ])


if __name__ == "__main__":
    main()
