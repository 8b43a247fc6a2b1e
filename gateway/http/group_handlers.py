"""SCIM Group handlers, served to tenants whose profile offers Groups (rfc)."""

from __future__ import annotations

from aiohttp import web

from domain.group import DeleteGroup, GroupState
from domain.json import JsonValue
from gateway.http.auth import require
from gateway.http.keys import GROUPS, PRINCIPAL, SETTINGS
from gateway.http.middleware import context
from gateway.http.responses import scim_response
from gateway.http.scim_handlers import base_url, idempotency_key, parse_json, patch_answer
from gateway.scim.errors import ScimError
from gateway.scim.group_resource import parse_group, parse_group_patch, parse_group_replace, render_group
from gateway.scim.listing import attribute_list_text, list_response, parse_list_request
from gateway.scim.resource import etag
from gateway.tenancy import Principal


def _offered(request: web.Request, scope: str) -> Principal:
    principal = require(request, scope)
    if not principal.policy.offers_groups:
        raise ScimError.not_found("Groups are not offered by this tenant's profile")
    return principal


def _names(value: JsonValue) -> set[str]:
    text = attribute_list_text(value) or ""
    return {part.strip().split("[")[0].split(".")[0].lower() for part in str(text).split(",") if part.strip()}


async def _render(request: web.Request, states: list[GroupState], include: set[str], exclude: set[str]) -> list[dict]:
    # Entra ID lists with excludedAttributes=members: then the member table is not read at all.
    wants_members = "members" not in exclude and (not include or "members" in include)
    members = (await request.app[GROUPS].members(request[PRINCIPAL], [s.group_id for s in states])
               if wants_members and states else {})
    base = base_url(request)
    resources = []
    for state in states:
        resource = render_group(state, members.get(state.group_id) if wants_members else None, base)
        if include:
            resource = {k: v for k, v in resource.items() if k.lower() in include | {"schemas", "id"}}
        resources.append({k: v for k, v in resource.items() if k.lower() not in exclude - {"id", "schemas"}})
    return resources


async def group_resources(request: web.Request, params: dict, lenient: bool = False) -> tuple[int, int, list[dict]]:
    """(totalResults, startIndex, resources) of a Groups list or search."""
    principal = _offered(request, "scim:read")
    settings = request.app[SETTINGS]
    query, _, _ = parse_list_request(params, settings.default_page_size, settings.max_page_size,
                                     resolve_attributes=False)
    lowered = {k.lower(): v for k, v in params.items()}
    include, exclude = _names(lowered.get("attributes")), _names(lowered.get("excludedattributes"))
    page = await request.app[GROUPS].list(principal, query)
    return page.total, page.start_index, await _render(request, page.groups, include, exclude)


async def _list(request: web.Request, params: dict) -> web.Response:
    return scim_response(list_response(*await group_resources(request, params)))


async def list_groups(request: web.Request) -> web.Response:
    return await _list(request, dict(request.query))


async def search_groups(request: web.Request) -> web.Response:
    body = parse_json(await request.read())
    if not isinstance(body, dict):
        raise ScimError.invalid_syntax("a SearchRequest must be a JSON object")
    return await _list(request, body)


async def _one(request: web.Request, state: GroupState, status: int = 200) -> web.Response:
    [resource] = await _render(request, [state], _names(request.query.get("attributes")),
                               _names(request.query.get("excludedAttributes")))
    headers = {"ETag": etag(state.version)}
    if status == 201:
        headers["Location"] = str(resource["meta"]["location"])
    return scim_response(resource, status, headers)


async def get_group(request: web.Request) -> web.Response:
    principal = _offered(request, "scim:read")
    return await _one(request, await request.app[GROUPS].get(principal, request.match_info["group_id"]))


async def create_group(request: web.Request) -> web.Response:
    principal = _offered(request, "scim:write")
    display, external, members = parse_group(parse_json(await request.read()))
    state, _ = await request.app[GROUPS].create(principal, context(request), display or "", external,
                                                members or [], idempotency_key(request))
    return await _one(request, state, 201)


async def replace_group(request: web.Request) -> web.Response:
    principal = _offered(request, "scim:write")
    command = parse_group_replace(parse_json(await request.read()))
    state = await request.app[GROUPS].update(principal, context(request), request.match_info["group_id"], command,
                                             request.headers.get("If-Match"))
    return await _one(request, state)


async def patch_group(request: web.Request) -> web.Response:
    principal = _offered(request, "scim:write")
    group_id = request.match_info["group_id"]
    command = parse_group_patch(parse_json(await request.read()), group_id)
    state = await request.app[GROUPS].update(principal, context(request), group_id, command,
                                             request.headers.get("If-Match"))
    # A client that names attributes (attributes=, excludedAttributes=) wants the resource back.
    asks = {k.lower() for k in request.query} & {"attributes", "excludedattributes"}
    if patch_answer(request, "resource" if asks else principal.policy.group_patch_response) == 204:
        return web.Response(status=204, headers={"ETag": etag(state.version)})
    return await _one(request, state)


async def delete_group(request: web.Request) -> web.Response:
    principal = _offered(request, "scim:write")
    await request.app[GROUPS].update(principal, context(request), request.match_info["group_id"], DeleteGroup(),
                                     request.headers.get("If-Match"))
    return web.Response(status=204)
