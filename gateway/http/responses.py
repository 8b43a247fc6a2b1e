"""SCIM JSON responses."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

SCIM_CONTENT_TYPE = "application/scim+json"


def scim_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        headers=headers,
        content_type=SCIM_CONTENT_TYPE,
        charset="utf-8",
    )


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
