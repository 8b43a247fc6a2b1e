"""SCIM handlers: parse, call the users service, render. Thin by design."""

from __future__ import annotations

from urllib.parse import quote

import orjson
from aiohttp import web

from domain.json import JsonValue
from domain.schema import ResolvedPath
from domain.user import DeleteUser, UpdateUser, UserState
from gateway.http.auth import require
from gateway.http.keys import GROUPS, PRINCIPAL, SETTINGS, USERS
from gateway.http.middleware import context
from gateway.http.responses import scim_response
from gateway.scim import bounds, discovery
from gateway.scim.errors import ScimError
from gateway.scim.listing import list_response, parse_list_request
from gateway.scim.patch import parse_patch
from gateway.scim.resource import (
    etag,
    parse_attribute_list,
    parse_user,
    project,
    render_user,
)
from gateway.tenancy import Principal

_READ_ONLY_DOCUMENTS = "GET"


def base_url(request: web.Request) -> str:
    """Absolute URL of the SCIM base path the request came in on."""
    scheme, host = request.scheme, request.host
    if request.app[SETTINGS].trust_forwarded_headers:
        # The first value is the client-facing hop (RFC 7239 section 5 order).
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip() or scheme
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip() or host
    path = request.path
    for marker in ("/api/2/scim", "/scim/v2"):
        if path.startswith(marker):
            return f"{scheme}://{host}{marker}"
    return f"{scheme}://{host}/api/2/scim"


def parse_json(raw: bytes) -> JsonValue:
    if not raw.strip():
        raise ScimError.invalid_syntax("the request body is empty")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ScimError.invalid_syntax(f"the request body is not valid JSON: {error}") from None
    bounds.no_nul(body, raw=raw)
    return body


async def _render_users(request: web.Request, states: list[UserState]) -> list[dict]:
    """Users as SCIM resources; where the profile offers Groups, with their read-only ``groups``."""
    principal: Principal = request[PRINCIPAL]
    base = base_url(request)
    resources = [render_user(state, base, principal.policy.gateway_extension) for state in states]
    if principal.policy.offers_groups and states:
        memberships = await request.app[GROUPS].memberships(principal, [s.user_id for s in states])
        for resource in resources:
            groups = memberships.get(str(resource["id"]))
            if groups:
                resource["groups"] = [{**g, "$ref": f"{base}/Groups/{g['value']}"} for g in groups]
    return resources


async def _user_response(request: web.Request, state: UserState, status: int = 200,
                         include: list[ResolvedPath] | None = None,
                         exclude: list[ResolvedPath] | None = None) -> web.Response:
    [resource] = await _render_users(request, [state])
    headers = {"ETag": etag(state.version)}
    if status == 201:
        headers["Location"] = str(resource["meta"]["location"])  # type: ignore[index]
    return scim_response(project(resource, include or [], exclude or []), status, headers)


# Users ---------------------------------------------------------------------------------


async def user_resources(request: web.Request, params: dict[str, JsonValue],
                         lenient: bool = False) -> tuple[int, int, list[dict]]:
    """(totalResults, startIndex, resources) of a Users list or search."""
    principal = require(request, "scim:read")
    settings = request.app[SETTINGS]
    query, include, exclude = parse_list_request(
        params, settings.default_page_size, settings.max_page_size, lenient_attributes=lenient
    )
    page = await request.app[USERS].list(principal, query)
    resources = [project(r, include, exclude) for r in await _render_users(request, page.users)]
    return page.total, page.start_index, resources


async def _list(request: web.Request, params: dict[str, JsonValue]) -> web.Response:
    return scim_response(list_response(*await user_resources(request, params)))


async def list_users(request: web.Request) -> web.Response:
    return await _list(request, dict(request.query))


async def search_users(request: web.Request) -> web.Response:
    body = parse_json(await request.read())
    if not isinstance(body, dict):
        raise ScimError.invalid_syntax("a SearchRequest must be a JSON object")
    return await _list(request, body)


async def get_user(request: web.Request) -> web.Response:
    principal = require(request, "scim:read")
    state = await request.app[USERS].get(principal, request.match_info["user_id"])
    include = parse_attribute_list(request.query.get("attributes"))
    exclude = parse_attribute_list(request.query.get("excludedAttributes"))
    return await _user_response(request, state, include=include, exclude=exclude)


def idempotency_key(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header (draft-ietf-httpapi-idempotency-key-header), if sent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip().strip('"')
    if not 0 < len(key) <= 255 or not key.isprintable():
        raise ScimError.invalid_value("Idempotency-Key must be 1 to 255 printable characters")
    return key


async def create_user(request: web.Request) -> web.Response:
    principal = require(request, "scim:write")
    attributes, active = parse_user(parse_json(await request.read()))
    state, _ = await request.app[USERS].create(principal, context(request), attributes, active,
                                               idempotency_key(request))
    return await _user_response(request, state, 201)


async def replace_user(request: web.Request) -> web.Response:
    principal = require(request, "scim:write")
    attributes, active = parse_user(parse_json(await request.read()))
    state = await request.app[USERS].update(
        principal, context(request), request.match_info["user_id"], UpdateUser(attributes, active, "put"),
        request.headers.get("If-Match"),
    )
    return await _user_response(request, state)


async def patch_user(request: web.Request) -> web.Response:
    principal = require(request, "scim:write")
    command = parse_patch(parse_json(await request.read()))
    state = await request.app[USERS].update(
        principal, context(request), request.match_info["user_id"], command, request.headers.get("If-Match"),
    )
    if patch_answer(request, principal.policy.patch_response) == 204:
        return web.Response(status=204, headers={"ETag": etag(state.version)})
    return await _user_response(request, state)


def patch_answer(request: web.Request, setting: str) -> int:
    """200 with the resource, or 204: RFC 7644 section 3.5.2 allows both. RFC 7240
    ``Prefer: return=minimal`` / ``return=representation`` decides; else the tenant's setting."""
    prefer = request.headers.get("Prefer", "").replace(" ", "").lower()
    if "return=minimal" in prefer:
        return 204
    if "return=representation" in prefer:
        return 200
    return 204 if setting == "no_content" else 200


async def delete_user(request: web.Request) -> web.Response:
    principal = require(request, "scim:write")
    await request.app[USERS].update(
        principal, context(request), request.match_info["user_id"], DeleteUser(),
        request.headers.get("If-Match"),
    )
    return web.Response(status=204)


# Discovery -----------------------------------------------------------------------------


def _read_only(request: web.Request) -> None:
    if request.method != "GET":
        raise ScimError.method_not_allowed(
            "discovery documents are read-only", allowed=_READ_ONLY_DOCUMENTS)


async def service_provider_config(request: web.Request) -> web.Response:
    _read_only(request)
    require(request, "scim:read")
    if request.match_info.get("item_id"):
        raise ScimError.not_found("ServiceProviderConfig has no sub-resources")
    settings = request.app[SETTINGS]
    return scim_response(discovery.service_provider_config(base_url(request), settings.max_page_size))


async def resource_types(request: web.Request) -> web.Response:
    _read_only(request)
    principal = require(request, "scim:read")
    documents = discovery.resource_types(base_url(request), principal.policy)
    return _document_or_list(request, documents, "id")


async def schemas(request: web.Request) -> web.Response:
    _read_only(request)
    principal = require(request, "scim:read")
    documents = discovery.schemas(base_url(request), principal.policy)
    return _document_or_list(request, documents, "id")


def _document_or_list(request: web.Request, documents: list, key: str) -> web.Response:
    item_id = request.match_info.get("item_id")
    if item_id is None:
        return scim_response(list_response(len(documents), 1, documents))
    for document in documents:
        if str(document[key]).lower() == item_id.lower():
            return scim_response(document)
    raise ScimError.not_found(f"no such document: {quote(item_id)}")
