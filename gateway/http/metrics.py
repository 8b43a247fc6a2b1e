"""Prometheus metrics, one registry per application (served at /metrics without a token)."""

from __future__ import annotations

import gc
import platform
from collections.abc import Sequence
from importlib import metadata

import prometheus_client
from aiohttp import web
from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from eventstore import Envelope

# A `_created` series per counter and histogram doubles the scrape for a timestamp nobody
# graphs; OpenMetrics keeps it optional. The switch is process-wide in prometheus_client.
prometheus_client.disable_created_metrics()

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
        Info("scim_gateway_build", "The running version", registry=self.registry).info(
            {"version": _version(), "python": platform.python_version()})
        # process_* (CPU, memory, open fds, start time), python_info and python_gc_*.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(GC_COLLECTOR)
        Gauge("scim_gateway_gc_frozen_objects", "Objects the start made, out of the collector's walk (gateway/heap.py)",
              registry=self.registry).set_function(gc.get_freeze_count)

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        name = route_name(request)
        self.requests.labels(name, request.method, str(status)).inc()
        self.latency.labels(name, request.method).observe(seconds)

    def appended(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            self.events.labels(envelope.type).inc()

    def render(self) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def route_name(request: web.Request) -> str:
    """The handler's name (``create_user``, ``patch_group``): one label for both base paths and
    any case of ``/Users``, where the route pattern would read ``/api/2/scim/{_users}``."""
    if request.match_info.route.resource is None:
        return "unmatched"
    return getattr(request.match_info.handler, "__name__", "unmatched")


def _version() -> str:
    try:
        return metadata.version("scim-gateway")
    except metadata.PackageNotFoundError:
        return "unknown"
