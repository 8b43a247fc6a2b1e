"""Prometheus metrics, one registry per application (served at /metrics without a token)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from eventstore import Envelope

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("scim_gateway_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("scim_gateway_request_duration_seconds", "Time to answer a request",
                                 ["route", "method"], buckets=_BUCKETS, registry=self.registry)
        self.events = Counter("scim_gateway_events_appended", "Events appended to the log, by type",
                              ["type"], registry=self.registry)
        self.rate_limited = Counter("scim_gateway_rate_limited", "Requests refused with 429",
                                    registry=self.registry)
        self.projection_lag = Gauge("scim_gateway_projection_lag_positions",
                                    "Log positions between the head and a catch-up projection's checkpoint",
                                    ["projection"], registry=self.registry)
        self.pool = Gauge("scim_gateway_db_pool_connections", "Database pool connections",
                          ["state"], registry=self.registry)

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        self.requests.labels(name, request.method, str(status)).inc()
        self.latency.labels(name, request.method).observe(seconds)

    def appended(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            self.events.labels(envelope.type).inc()

    def render(self) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
