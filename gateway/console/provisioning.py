"""Provisioning log page: the last 7 days by default, the export API's filters, expandable rows.

The filters are the export API's own parameters, parsed by the same function, so the
download link (``/admin/log/download`` plus the same query) streams exactly the bytes
``GET /api/2/audit/provisioning`` gives for that query.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from gateway.console.security import render
from gateway.http import audit_handlers
from gateway.http.keys import AUDIT_RUNNER, POOL, PRINCIPAL, SETTINGS
from gateway.timestamps import timestamp
from projections.audit_export import ACTIONS, RESULTS, changes_of_requests, newest_rows

DEFAULT_DAYS = 7
ROWS_ON_PAGE = 200
# The export API's own parameters; the page passes nothing else on.
FILTERS = ("result", "action", "user", "actor", "request_id", "since", "until")
# A download is one export page of the largest size the API allows.
DOWNLOAD_LIMIT = audit_handlers.MAX_LIMIT
# SCIM errors that mean the request could not be read at all (RFC 7644 section 3.12).
_PARSE_ERRORS = frozenset({"invalidSyntax", "invalidFilter", "invalidPath", "invalidVers"})


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    outcome: str  # "ok", "failed", "skipped", "not reached"
    note: str = ""


def steps(row: asyncpg.Record) -> list[Step]:
    """The request's stages as far as the row tells. A row exists only for an authenticated
    request, so auth passed; the SCIM error says which later stage refused it."""
    names = ("auth", "parse", "validate", "apply")
    if row["result"] == "success":
        return [Step(name, "ok") for name in names]
    if row["result"] == "skipped":
        return [*(Step(name, "ok") for name in names[:3]), Step("apply", "skipped", "nothing to change")]
    status, scim_type = row["status"], row["scim_type"]
    if status >= 500:
        failed_at = 3
    elif scim_type in _PARSE_ERRORS:
        failed_at = 1
    else:
        failed_at = 2
    error = f"{status} {scim_type or ''}".strip()
    return [Step(name, "ok") if index < failed_at
            else Step(name, "failed", error) if index == failed_at
            else Step(name, "not reached")
            for index, name in enumerate(names)]


def filters_of(request: web.Request) -> dict[str, str]:
    """The page's filter values: empty fields dropped; ``since`` is 7 days ago unless given
    (an empty ``since`` field means no lower bound)."""
    values = {name: request.query[name].strip() for name in FILTERS if request.query.get(name, "").strip()}
    if "since" not in request.query:
        values["since"] = timestamp(datetime.now(UTC) - timedelta(days=DEFAULT_DAYS))
    return values


async def log_page(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    values = filters_of(request)
    query = audit_handlers.parse_query(request, "provisioning", principal, params=values)
    settings = request.app[SETTINGS]
    async with asyncio.timeout(settings.request_timeout):
        await request.app[AUDIT_RUNNER].catch_up()
    async with request.app[POOL].acquire(timeout=settings.db_timeout) as connection:
        rows = await newest_rows(connection, query, ROWS_ON_PAGE)
        changes = await changes_of_requests(connection, principal.tenant_id, rows)
    download = "/admin/log/download?" + urlencode({**values, "limit": DOWNLOAD_LIMIT, "format": "csv"})
    return render(request, "log.html", {
        "section": "log", "rows": rows, "changes": changes, "steps": steps, "values": values,
        "actions": sorted(ACTIONS["provisioning"]), "results": sorted(RESULTS), "download": download,
        "api_query": urlencode({**values, "limit": DOWNLOAD_LIMIT, "format": "csv"}),
        "shown": ROWS_ON_PAGE, "filter_link": lambda **more: "/admin/log?" + urlencode({**values, **more}),
    })


async def download(request: web.Request) -> web.StreamResponse:
    """The export API's handler itself, on the session's principal: same query, same bytes."""
    return await audit_handlers.provisioning_log(request)
