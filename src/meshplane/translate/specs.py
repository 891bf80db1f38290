"""Reading typed App Mesh specs the way App Mesh's data plane interprets them.

Specs arrive parsed into the classes generated from botocore's model
(:mod:`meshplane.model.specs_generated`), once per snapshot. This module owns
the defaults that are invisible in the API but real in App Mesh's Envoy
config: 15 s per request, 300 s idle (``appmesh-api.md`` §11), unlimited
connection pools, priority-less routes matched last. It knows nothing of
Envoy protos.
"""

from __future__ import annotations

import dataclasses

from meshplane.model import specs_generated as g
from meshplane.translate.memo import IdentityCache

HTTP_FAMILY = frozenset({"http", "http2", "grpc"})
"""Listener protocols served by an HTTP connection manager."""
HTTP2_UPSTREAM = frozenset({"http2", "grpc"})
"""Listener protocols whose upstream connections must speak HTTP/2."""

DEFAULT_PER_REQUEST_MS = 15_000
DEFAULT_IDLE_MS = 300_000
UNLIMITED = 2_147_483_647
"""App Mesh's "circuit breakers effectively disabled" threshold."""

ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
NO_PRIORITY = 1001
"""Sorts after every legal priority (0..1000): unprioritised routes match last."""

RouteBody = g.HttpRoute | g.GrpcRoute | g.TcpRoute
"""A route's one ``httpRoute``/``http2Route``/``grpcRoute``/``tcpRoute`` member."""
Match = g.HttpRouteMatch | g.GrpcRouteMatch | g.HttpGatewayRouteMatch | g.GrpcGatewayRouteMatch
"""What an Envoy route match is built from (routes and gateway routes alike)."""
Logging = g.Logging | g.VirtualGatewayLogging
"""A virtual node's or gateway's ``logging``."""
Timeout = g.HttpTimeout | g.GrpcTimeout | g.TcpTimeout
"""A listener's or route's timeout member."""


def duration_ms(value: g.Duration | None) -> int | None:
    """An App Mesh ``Duration`` (unit ``s`` or ``ms``, ``ms`` by default) in milliseconds.

    ``None`` when absent or without a usable value, so the caller's default applies.
    """
    if value is None or value.value is None or value.value < 0:
        return None
    return value.value * 1000 if value.unit == "s" else value.value


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """A listener's or route's timeouts after App Mesh's defaults; 0 disables."""

    per_request_ms: int
    idle_ms: int

    @classmethod
    def of(cls, timeout: Timeout | None, default: Timeouts | None = None) -> Timeouts:
        """Read an ``HttpTimeout``/``GrpcTimeout``/``TcpTimeout`` over a default."""
        base = default or Timeouts(DEFAULT_PER_REQUEST_MS, DEFAULT_IDLE_MS)
        if timeout is None:
            return base
        per_request = None if isinstance(timeout, g.TcpTimeout) else timeout.per_request
        per_request_ms, idle_ms = duration_ms(per_request), duration_ms(timeout.idle)
        return cls(
            base.per_request_ms if per_request_ms is None else per_request_ms,
            base.idle_ms if idle_ms is None else idle_ms,
        )


@dataclasses.dataclass(frozen=True)
class Limits:
    """A listener's ``connectionPool`` for its protocol; ``None`` is unlimited."""

    connections: int | None = None
    pending: int | None = None
    requests: int | None = None


@dataclasses.dataclass(frozen=True)
class Listener:
    """One ``listeners[]`` entry of a virtual node, router or gateway, read for its protocol."""

    port: int
    protocol: str
    timeouts: Timeouts
    """The timeouts of the member matching the protocol (virtual nodes only)."""
    limits: Limits = Limits()
    outlier_detection: g.OutlierDetection | None = None
    health_check: g.HealthCheckPolicy | None = None
    tls: g.ListenerTls | g.VirtualGatewayListenerTls | None = None
    """The listener's own ``tls`` (virtual nodes and gateways; routers have none)."""

    @property
    def is_http(self) -> bool:
        """Served by an HTTP connection manager (http, http2, grpc)."""
        return self.protocol in HTTP_FAMILY


AnyListener = g.Listener | g.VirtualRouterListener | g.VirtualGatewayListener


def _timeout(listener: AnyListener, protocol: str) -> Timeout | None:
    """The virtual node listener's timeout member for ``protocol``."""
    if not isinstance(listener, g.Listener) or listener.timeout is None:
        return None
    timeout = listener.timeout
    by_protocol = {"http": timeout.http, "http2": timeout.http2, "grpc": timeout.grpc}
    return timeout.tcp if protocol == "tcp" else by_protocol.get(protocol)


def _limits(listener: AnyListener, protocol: str) -> Limits:
    """The connection pool member for ``protocol`` (routers have none)."""
    if isinstance(listener, g.VirtualRouterListener) or listener.connection_pool is None:
        return Limits()
    pool = listener.connection_pool
    if protocol == "http" and pool.http is not None:
        return Limits(pool.http.max_connections, pool.http.max_pending_requests)
    if protocol == "http2" and pool.http2 is not None:
        return Limits(requests=pool.http2.max_requests)
    if protocol == "grpc" and pool.grpc is not None:
        return Limits(requests=pool.grpc.max_requests)
    if protocol == "tcp" and isinstance(pool, g.VirtualNodeConnectionPool) and pool.tcp:
        return Limits(connections=pool.tcp.max_connections)
    return Limits()


AnySpec = g.VirtualNodeSpec | g.VirtualRouterSpec | g.VirtualGatewaySpec


def listeners(spec: AnySpec) -> tuple[Listener, ...]:
    """The spec's listeners in port order, the first one per port kept.

    Remembered per spec object: every caller of a node reads its listeners.
    """
    return _listeners(spec)


def _read_listeners(spec: AnySpec) -> tuple[Listener, ...]:
    found: dict[int, Listener] = {}
    for entry in spec.listeners or ():
        port, protocol = entry.port_mapping.port, entry.port_mapping.protocol
        if port in found:
            continue
        node_listener = entry if isinstance(entry, g.Listener) else None
        found[port] = Listener(
            port,
            protocol,
            Timeouts.of(_timeout(entry, protocol)),
            _limits(entry, protocol),
            node_listener.outlier_detection if node_listener else None,
            node_listener.health_check if node_listener else None,
            None if isinstance(entry, g.VirtualRouterListener) else entry.tls,
        )
    return tuple(found[port] for port in sorted(found))


_listeners: IdentityCache[AnySpec, tuple[Listener, ...]] = IdentityCache(_read_listeners)


def route_body(spec: g.RouteSpec) -> tuple[str, RouteBody] | None:
    """The route's single ``httpRoute``/``http2Route``/``grpcRoute``/``tcpRoute`` member."""
    members: tuple[tuple[str, RouteBody | None], ...] = (
        ("httpRoute", spec.http_route),
        ("http2Route", spec.http2_route),
        ("grpcRoute", spec.grpc_route),
        ("tcpRoute", spec.tcp_route),
    )
    present = [(key, body) for key, body in members if body is not None]
    return present[0] if len(present) == 1 else None


def priority(spec: g.RouteSpec) -> int:
    """A route's priority (0 first); routes without one sort after all others."""
    return NO_PRIORITY if spec.priority is None else spec.priority


def match_specificity(match: g.HttpRouteMatch | g.GrpcRouteMatch | g.TcpRouteMatch | None) -> int:
    """How specific a match is, to order routes of equal priority (longest first)."""
    if isinstance(match, g.HttpRouteMatch):
        path = match.path
        text = match.prefix or (path and (path.exact or path.regex)) or ""
        extra = len(match.headers or ()) + len(match.query_parameters or ())
        extra += 1 if match.method else 0
        return len(text) * 100 + extra
    if isinstance(match, g.GrpcRouteMatch):
        text = f"/{match.service_name}/{match.method_name or ''}" if match.service_name else ""
        return len(text) * 100 + len(match.metadata or ())
    return 0
