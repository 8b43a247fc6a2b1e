"""SCIM Group handlers, served to tenants whose profile offers Groups (rfc)."""

from __future__ import annotations

from aiohttp import web

from domain.group import DeleteGroup, GroupState, UpdateGroup
from domain.json import JsonValue
from gateway.http.auth import require
from gateway.http.keys import GROUPS, PRINCIPAL, SETTINGS
from gateway.http.middleware import context
from gateway.http.responses import scim_response
from gateway.http.scim_handlers import base_url, idempotency_key, parse_json, patch_answer
from gateway.scim.errors import ScimError
from gateway.scim.group_resource import interpret_group_patch, parse_group, render_group
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


def _named_members(raw: bytes) -> list[str]:
    """The member ids a body names (the decision needs their facts); bad bodies fail later, on record."""
    try:
        return [i for i, _ in parse_group(parse_json(raw))[2] or []]
    except ScimError:
        return []


def _displays(refs: list[tuple[str, str | None]]) -> tuple[tuple[str, str], ...]:
    return tuple((i, d) for i, d in refs if d)


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
    raw = await request.read()

    def build(group_id: str, state: GroupState | None, everyone: list[str]) -> UpdateGroup:
        display, external, members = parse_group(parse_json(raw))
        refs = members or []
        wanted = [i for i, _ in refs]
        return UpdateGroup(display_name=display or "", external_id=external, add=tuple(wanted),
                           remove=tuple(m for m in everyone if m not in wanted), displays=_displays(refs))

    state = await request.app[GROUPS].write(
        principal, context(request), request.match_info["group_id"], build, referenced=_named_members(raw),
        needs_all_members=True, if_match=request.headers.get("If-Match"))
    return await _one(request, state)


async def patch_group(request: web.Request) -> web.Response:
    principal = _offered(request, "scim:write")
    raw = await request.read()
    try:
        planned = interpret_group_patch(parse_json(raw), request.match_info["group_id"])
    except ScimError:
        planned = None  # the write below fails the same way, and records it

    def build(group_id: str, state: GroupState | None, everyone: list[str]) -> UpdateGroup:
        patch = interpret_group_patch(parse_json(raw), group_id)
        remove = [m for m in everyone if m not in patch.add] if patch.remove_all else patch.remove
        return UpdateGroup(patch.display_name, patch.external_id, tuple(patch.add), tuple(remove),
                           tuple(patch.displays.items()))

    state = await request.app[GROUPS].write(
        principal, context(request), request.match_info["group_id"], build,
        referenced=(planned.add + planned.remove) if planned else [],
        needs_all_members=bool(planned and planned.remove_all), if_match=request.headers.get("If-Match"))
    # A client that names attributes (attributes=, excludedAttributes=) wants the resource back.
    asks = {k.lower() for k in request.query} & {"attributes", "excludedattributes"}
    if patch_answer(request, "resource" if asks else principal.policy.group_patch_response) == 204:
        return web.Response(status=204, headers={"ETag": etag(state.version)})
    return await _one(request, state)


async def delete_group(request: web.Request) -> web.Response:
    principal = _offered(request, "scim:write")
    await request.app[GROUPS].write(
        principal, context(request), request.match_info["group_id"], lambda _id, _state, _all: DeleteGroup(),
        referenced=[], if_match=request.headers.get("If-Match"))
    return web.Response(status=204)
