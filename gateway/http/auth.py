"""Bearer tokens (RFC 6750) to a Principal; scopes checked per route."""

from __future__ import annotations

from aiohttp import web

from eventstore.directory import tenant_scope
from gateway.http.keys import METRICS, PRINCIPAL, RATE_LIMITER, TENANCY
from gateway.http.middleware import Handler
from gateway.scim.errors import ScimError
from gateway.tenancy import TOKEN_PREFIX, Principal

# Probes and the API description answer without a token.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.yaml", "/metrics"})
# The admin console signs in with a session cookie instead (gateway/console/security.py).
CONSOLE_PREFIX = "/admin"


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS or request.path.split("/", 2)[1] == CONSOLE_PREFIX[1:]:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ScimError.unauthorized("a bearer token is required")
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise ScimError.unauthorized("the bearer token is not valid")
    principal = await request.app[TENANCY].authenticate(secret)
    if principal is None:
        raise ScimError.unauthorized("the bearer token is not valid or has been revoked")
    request[PRINCIPAL] = principal
    limiter = request.app[RATE_LIMITER]
    if limiter.enabled and (wait := limiter.take(str(principal.token_id))) is not None:
        request.app[METRICS].rate_limited.inc()
        raise ScimError(429, "too many requests for this token; slow down", headers={"Retry-After": str(wait)})
    with tenant_scope(principal.tenant_id):  # the tenant's database from here on
        return await handler(request)


def require(request: web.Request, scope: str) -> Principal:
    principal: Principal = request[PRINCIPAL]
    if scope not in principal.scopes and "admin" not in principal.scopes:
        raise ScimError.forbidden(f"this token lacks the {scope!r} scope")
    return principal
