"""Typed application keys: what the app holds, set up in ``gateway.app``."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from eventstore import EventStore
from eventstore.directory import Shards
from gateway.groups import Groups
from gateway.http.metrics import Metrics
from gateway.http.ratelimit import TokenBuckets
from gateway.revocations import RevocationListener
from gateway.settings import Settings
from gateway.tenancy import Principal, Tenancy
from gateway.users import Users
from projections.runner import CatchUpRunner

SETTINGS = web.AppKey("settings", Settings)
DATABASE_URL = web.AppKey("database_url", str)
POOL = web.AppKey("pool", asyncpg.Pool)
STORE = web.AppKey("store", EventStore)
TENANCY = web.AppKey("tenancy", Tenancy)
# Present when tokens are cached (token_cache_seconds > 0).
REVOCATIONS = web.AppKey("revocations", RevocationListener)
USERS = web.AppKey("users", Users)
GROUPS = web.AppKey("groups", Groups)
AUDIT_RUNNER = web.AppKey("audit_runner", CatchUpRunner)
RATE_LIMITER = web.AppKey("rate_limiter", TokenBuckets)
METRICS = web.AppKey("metrics", Metrics)

REQUEST_ID = web.RequestKey("request_id", str)  # the gateway's own, server-generated
CLIENT_REQUEST_ID = web.RequestKey("client_request_id", str)  # the caller's X-Request-Id, if any
PRINCIPAL = web.RequestKey("principal", Principal)
# Which database holds each tenant (eventstore/directory.py).
SHARDS = web.AppKey("shards", Shards)
