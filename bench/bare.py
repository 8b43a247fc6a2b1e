"""The ceiling for a Python HTTP stack here: a bare aiohttp handler returning a small orjson body."""

from __future__ import annotations

import sys

import orjson
from aiohttp import web

BODY = orjson.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "x", "userName": "bare"})


async def handler(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/scim+json")


def main() -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
