"""Stream names: the one place they are made and read back.

One stream per user, group, tenant and token; a refused, replayed or no-op request is put on
record in a stream of its own.
"""

from __future__ import annotations

USER_PREFIX = "user-"
GROUP_PREFIX = "group-"
TENANT_PREFIX = "tenant-"
TOKEN_PREFIX = "token-"
REQUEST_PREFIX = "request-"
# Reference data: on the home database whichever database holds the tenant (docs/architecture.md).
REFERENCE_PREFIXES = (TENANT_PREFIX, TOKEN_PREFIX)


def user_stream(user_id: object) -> str:
    return f"{USER_PREFIX}{user_id}"


def group_stream(group_id: object) -> str:
    return f"{GROUP_PREFIX}{group_id}"


def tenant_stream(tenant_id: object) -> str:
    return f"{TENANT_PREFIX}{tenant_id}"


def token_stream(token_id: object) -> str:
    return f"{TOKEN_PREFIX}{token_id}"


def request_stream(request_id: object) -> str:
    return f"{REQUEST_PREFIX}{request_id}"
