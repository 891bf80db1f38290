"""API request metrics and the ``GET /metrics`` endpoint (Prometheus text format).

Every request is counted by operation and status code, and timed by operation. The
operation is the App Mesh operation's name (``CreateMesh``) for the REST API and the
route's path template for everything else (``/meshplane/v1/proxies``), so the label set
stays bounded whatever paths clients send (unmatched paths count as ``unknown``).
The metrics live in the registry the composition root passes, one per control plane.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)
"""Seconds; the top buckets are for ``?waitForRevision=`` waits, which may last a minute."""
UNKNOWN = "unknown"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def operation_of(request: web.Request) -> str:
    """The bounded label of a request: its route's name, else its path template."""
    route = request.match_info.route
    if route.name:
        return route.name
    resource = route.resource
    if resource is None or resource.canonical == "/{tail}":
        return UNKNOWN
    return resource.canonical


class ApiMetrics:
    """Counts and times requests; renders the whole registry for ``/metrics``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        """Register the request metrics into ``registry``."""
        self.registry = registry
        self.requests = Counter(
            "meshplane_api_requests",
            "API requests by operation and HTTP status code.",
            ["operation", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "meshplane_api_request_seconds",
            "API request latency by operation.",
            ["operation"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time ``handler`` and count its status (an HTTP exception's too)."""
        started = time.perf_counter()
        code = 500
        try:
            response = await handler(request)
            code = response.status
            return response
        except web.HTTPException as exc:
            code = exc.status
            raise
        finally:
            operation = operation_of(request)
            self.requests.labels(operation, str(code)).inc()
            self.latency.labels(operation).observe(time.perf_counter() - started)

    async def scrape(self, _request: web.Request) -> web.Response:
        """``GET /metrics``: every metric of this control plane."""
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
