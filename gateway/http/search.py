"""``POST /.search`` at the root: a search across every resource type the tenant is offered."""

from __future__ import annotations

from aiohttp import web

from gateway.http.auth import require
from gateway.http.group_handlers import group_resources
from gateway.http.keys import SETTINGS
from gateway.http.responses import scim_response
from gateway.http.scim_handlers import parse_json, user_resources
from gateway.scim.errors import ScimError
from gateway.scim.listing import list_response, parse_list_request


async def search_all(request: web.Request) -> web.Response:
    """``POST /.search``: every resource type the tenant is offered (RFC 7644 section 3.4.3).

    A filter or attribute that one type does not have simply matches none of that type.
    """
    principal = require(request, "scim:read")
    body = parse_json(await request.read())
    if not isinstance(body, dict):
        raise ScimError.invalid_syntax("a SearchRequest must be a JSON object")
    settings = request.app[SETTINGS]
    # Validated and clamped once, then each type is asked for everything up to the page's end.
    query, _, _ = parse_list_request(body, settings.default_page_size, settings.max_page_size,
                                     resolve_attributes=False)
    start, count = query.start_index, query.count
    window = {**body, "startIndex": 1, "count": min(start - 1 + count, settings.max_page_size)}
    total, found = 0, []
    sources = [user_resources] + ([group_resources] if principal.policy.offers_groups else [])
    for source in sources:
        try:
            subtotal, _, resources = await source(request, window, lenient=True)
        except ScimError as error:
            if error.scim_type != "invalidFilter" or len(sources) == 1:
                raise
            continue  # the filter names attributes this type does not have
        total += subtotal
        found += resources
    return scim_response(list_response(total, start, found[start - 1:start - 1 + count]))
