"""SCIM handlers: parse, call the users service, render. Thin by design."""

from __future__ import annotations

from urllib.parse import quote

import orjson
from aiohttp import web

from gateway.domain.json import JsonValue
from gateway.domain.user import CreateUser, DeleteUser, UpdateUser, UserState
from gateway.http.auth import require
from gateway.http.keys import PRINCIPAL, REQUEST_ID, SETTINGS, USERS
from gateway.http.responses import scim_response
from gateway.scim import discovery
from gateway.scim.errors import ScimError
from gateway.scim.listing import list_response, parse_list_request
from gateway.scim.patch import apply_patch
from gateway.scim.resource import (
    document_of,
    etag,
    parse_attribute_list,
    parse_user,
    project,
    render_user,
)
from gateway.scim.schema import ResolvedPath
from gateway.tenancy import Principal
from gateway.users import RequestContext

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


def _context(request: web.Request) -> RequestContext:
    return RequestContext(
        request_id=request[REQUEST_ID],
        method=request.method,
        path=request.path,
        source_ip=request.remote,
        user_agent=request.headers.get("User-Agent"),
    )


def parse_json(raw: bytes) -> JsonValue:
    if not raw.strip():
        raise ScimError.invalid_syntax("the request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ScimError.invalid_syntax(f"the request body is not valid JSON: {error}") from None


def _user_response(request: web.Request, state: UserState, status: int = 200,
                   include: list[ResolvedPath] | None = None,
                   exclude: list[ResolvedPath] | None = None) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    resource = render_user(state, base_url(request), principal.policy.gateway_extension)
    headers = {"ETag": etag(state.version)}
    if status == 201:
        headers["Location"] = str(resource["meta"]["location"])  # type: ignore[index]
    return scim_response(project(resource, include or [], exclude or []), status, headers)


# Users ---------------------------------------------------------------------------------


async def _list(request: web.Request, params: dict[str, JsonValue]) -> web.Response:
    principal = require(request, "scim:read")
    settings = request.app[SETTINGS]
    query, include, exclude = parse_list_request(
        params, settings.default_page_size, settings.max_page_size
    )
    page = await request.app[USERS].list(principal, query)
    base = base_url(request)
    extension = principal.policy.gateway_extension
    resources = [project(render_user(state, base, extension), include, exclude) for state in page.users]
    return scim_response(list_response(page.total, page.start_index, resources))


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
    return _user_response(request, state, include=include, exclude=exclude)


async def create_user(request: web.Request) -> web.Response:
    principal = require(request, "scim:write")
    raw = await request.read()

    def command(user_id: str) -> CreateUser:
        attributes, active = parse_user(parse_json(raw))
        return CreateUser(user_id, attributes, active)

    state = await request.app[USERS].create(principal, _context(request), command)
    return _user_response(request, state, 201)


async def replace_user(request: web.Request) -> web.Response:
    principal = require(request, "scim:write")
    raw = await request.read()

    def command(state: UserState) -> UpdateUser:
        attributes, active = parse_user(parse_json(raw))
        return UpdateUser(attributes, active, "put")

    state = await request.app[USERS].update(
        principal, _context(request), request.match_info["user_id"], command,
        request.headers.get("If-Match"),
    )
    return _user_response(request, state)


async def patch_user(request: web.Request) -> web.Response:
    principal = require(request, "scim:write")
    raw = await request.read()

    def command(state: UserState) -> UpdateUser:
        patched = apply_patch(document_of(state), parse_json(raw))
        active = patched.pop("active", None)
        attributes, _ = parse_user(patched)
        return UpdateUser(attributes, active if isinstance(active, bool) else None, "patch",
                          unassign_active=active is None and state.active_assigned)

    state = await request.app[USERS].update(
        principal, _context(request), request.match_info["user_id"], command,
        request.headers.get("If-Match"),
    )
    return _user_response(request, state)


async def delete_user(request: web.Request) -> web.Response:
    principal = require(request, "scim:write")
    await request.app[USERS].update(
        principal, _context(request), request.match_info["user_id"], lambda _s: DeleteUser(),
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
    documents = discovery.resource_types(base_url(request), principal.policy.gateway_extension)
    return _document_or_list(request, documents, "id")


async def schemas(request: web.Request) -> web.Response:
    _read_only(request)
    principal = require(request, "scim:read")
    documents = discovery.schemas(base_url(request), principal.policy.gateway_extension)
    return _document_or_list(request, documents, "id")


def _document_or_list(request: web.Request, documents: list, key: str) -> web.Response:
    item_id = request.match_info.get("item_id")
    if item_id is None:
        return scim_response(list_response(len(documents), 1, documents))
    for document in documents:
        if str(document[key]).lower() == item_id.lower():
            return scim_response(document)
    raise ScimError.not_found(f"no such document: {quote(item_id)}")


async def groups(request: web.Request) -> web.Response:
    require(request, "scim:read")
    raise ScimError.not_found("Groups are not offered by this tenant's profile")
