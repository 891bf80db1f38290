"""Virtual gateways: gateway routes in front of the mesh's own virtual-service routing.

App Mesh's layout (``appmesh-controller.md`` §3.8): each gateway listener binds
its own port; its route configuration (``rds_ingress_<proto>_<port>``, one
virtual host ``self_redirect``) matches gateway routes and sends them to the
gateway's own egress listener through a self-redirect cluster, rewriting Host
to the target virtual service (and the matched prefix to ``/``) on the way.
The egress side then routes that Host exactly as a virtual node's sidecar
would. Routes are ordered by priority (default 1000), then longest prefix.

Three things follow App Mesh rather than the HTTP defaults:

* gRPC gateway routes never rewrite the path: ``/Hello/SayHello`` must reach a
  backend whose service is ``Hello`` unchanged (the ``/`` prefix rewrite is an
  HTTP gateway route's default only).
* ``hostname.exact``/``suffix`` match the Host with or without a port
  (``shop.example.com:8088``), since clients send the port when it is not 80.
* ``rewrite.hostname.defaultTargetHostname: DISABLED`` keeps the client's
  Host. The egress side still routes by the target's name, so the ingress
  route saves the client's Host in :data:`KEPT_HOST_HEADER` and the gateway's
  egress routes put it back (``host_rewrite_header``) on the way out; every
  other route of such a gateway drops that header, so a client cannot forge it.
"""

from __future__ import annotations

import dataclasses
import re

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as route_pb
from envoy.config.route.v3 import route_pb2
from envoy.type.matcher.v3 import regex_pb2

from meshplane.model import specs_generated as g
from meshplane.model.snapshot import MeshSnapshot, Typed
from meshplane.translate import diagnostics, durations, routes, specs
from meshplane.translate.plan import Warnings

GATEWAY_ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute")
ROUTE_TYPE_PROTOCOL = {"httpRoute": "http", "http2Route": "http2", "grpcRoute": "grpc"}
"""The listener protocol each gateway route type is served on, as in App Mesh."""
DEFAULT_PRIORITY = 1000
SELF_REDIRECT_HOST = "self_redirect"
KEPT_HOST_HEADER = "x-meshplane-gateway-host"
"""Carries the client's Host from a ``defaultTargetHostname: DISABLED`` route to the egress side."""
_OPTIONAL_PORT = r"(:[0-9]+)?"

Body = g.HttpGatewayRoute | g.GrpcGatewayRoute
"""A gateway route's one ``httpRoute``/``http2Route``/``grpcRoute`` member."""


@dataclasses.dataclass(frozen=True)
class GatewayRoute:
    """One gateway route applicable to one listener, with its resolved target."""

    name: str
    route_type: str
    match: g.HttpGatewayRouteMatch | g.GrpcGatewayRouteMatch
    action: g.HttpGatewayRouteAction | g.GrpcGatewayRouteAction
    service: str
    port: int | None

    @property
    def keeps_host(self) -> bool:
        """``rewrite.hostname.defaultTargetHostname: DISABLED``: the client's Host goes through."""
        rewrite = self.action.rewrite
        hostname = rewrite.hostname if rewrite is not None else None
        return hostname is not None and hostname.default_target_hostname == "DISABLED"


def keeps_any_host(gateway_routes: tuple[GatewayRoute, ...]) -> bool:
    """Whether the gateway's egress routes must restore a kept Host (:data:`KEPT_HOST_HEADER`)."""
    return any(route.keeps_host for route in gateway_routes)


def routes_for(
    snapshot: MeshSnapshot, gateway: str, listener: specs.Listener, warnings: Warnings
) -> tuple[GatewayRoute, ...]:
    """The gateway's routes on one listener, in match order, broken ones skipped.

    A route serves the listeners of its own protocol only (an ``httpRoute`` never
    lands on a gRPC listener), narrowed to one when its match names a port.
    """
    found: list[tuple[tuple[int, int, str], GatewayRoute]] = []
    for route in snapshot.gateway_routes.get(gateway, {}).values():
        parsed = _parse(snapshot, gateway, route, warnings)
        if parsed is None or ROUTE_TYPE_PROTOCOL[parsed.route_type] != listener.protocol:
            continue
        port = parsed.match.port
        if port is not None and port != listener.port:
            continue
        priority = route.spec.priority
        rank = DEFAULT_PRIORITY if priority is None else priority
        length = len(_prefix(parsed.match) or "")
        found.append(((rank, -length, route.name), parsed))
    return tuple(route for _, route in sorted(found, key=lambda pair: pair[0]))


def warn_unserved(
    snapshot: MeshSnapshot,
    gateway: str,
    served: set[str],
    protocols: set[tuple[str, int]],
    warnings: Warnings,
) -> None:
    """Warn about each usable gateway route no listener took (wrong protocol or port)."""
    for route in snapshot.gateway_routes.get(gateway, {}).values():
        if route.name in served:
            continue
        parsed = _parse(snapshot, gateway, route, [])
        if parsed is None:
            continue  # already warned about by routes_for
        wanted = ROUTE_TYPE_PROTOCOL[parsed.route_type]
        port = f" port {parsed.match.port}" if parsed.match.port is not None else ""
        offered = ", ".join(f"{p} {n}" for p, n in sorted(protocols)) or "none"
        warnings.append(
            diagnostics.of(
                route.key,
                "gateway-route-no-listener",
                f"GatewayRoute {route.name} of VirtualGateway {gateway}: no {wanted}{port} "
                f"listener serves its {parsed.route_type} (listeners: {offered}); skipped",
            )
        )


def _prefix(match: g.HttpGatewayRouteMatch | g.GrpcGatewayRouteMatch) -> str | None:
    """The match's path prefix (gRPC gateway routes have none)."""
    return match.prefix if isinstance(match, g.HttpGatewayRouteMatch) else None


def _parse(
    snapshot: MeshSnapshot,
    gateway: str,
    route: Typed[g.GatewayRouteSpec],
    warnings: Warnings,
) -> GatewayRoute | None:
    """Read one gateway route; ``None`` with a warning when it cannot be used."""
    where = f"GatewayRoute {route.name} of VirtualGateway {gateway}"
    members: tuple[tuple[str, Body | None], ...] = (
        ("httpRoute", route.spec.http_route),
        ("http2Route", route.spec.http2_route),
        ("grpcRoute", route.spec.grpc_route),
    )
    present = [(key, body) for key, body in members if body is not None]
    if len(present) != 1:
        warnings.append(
            diagnostics.of(
                route.key,
                "gateway-route-type-count",
                f"{where}: needs exactly one of {', '.join(GATEWAY_ROUTE_TYPES)}; skipped",
            )
        )
        return None
    route_type, body = present[0]
    target = body.action.target
    service = target.virtual_service.virtual_service_name
    if service not in snapshot.virtual_services:
        warnings.append(
            diagnostics.of(
                route.key,
                "gateway-target-not-found",
                f"{where}: target VirtualService {service} not found; skipped",
            )
        )
        return None
    return GatewayRoute(
        name=route.name,
        route_type=route_type,
        match=body.match,
        action=body.action,
        service=service,
        port=target.port,
    )


def build_ingress_route_config(
    name: str, cluster: str, gateway_routes: tuple[GatewayRoute, ...], *, keeps_host: bool
) -> route_pb2.RouteConfiguration:
    """The listener's route configuration: every gateway route to the self-redirect.

    ``keeps_host`` says the gateway restores :data:`KEPT_HOST_HEADER` on egress, so
    each route either sets it (DISABLED) or removes what the client sent.
    """
    config = route_pb2.RouteConfiguration(name=name)
    virtual_host = config.virtual_hosts.add(name=SELF_REDIRECT_HOST, domains=["*"])
    for gateway_route in gateway_routes:
        virtual_host.routes.extend(_routes(gateway_route, cluster, keeps_host=keeps_host))
    return config


def _routes(gateway_route: GatewayRoute, cluster: str, *, keeps_host: bool) -> list[route_pb.Route]:
    """One gateway route as Envoy routes (two for a rewritten bare prefix: ``/p/`` then ``/p``)."""
    match = routes.build_match(gateway_route.match)
    _hostname(match, gateway_route.match.hostname)
    prefix = _prefix(gateway_route.match)
    rewrite = gateway_route.action.rewrite
    http_rewrite = rewrite if isinstance(rewrite, g.HttpGatewayRouteRewrite) else None
    # A gRPC gateway route has no path rewrite at all: the service name is the path.
    grpc = gateway_route.route_type == "grpcRoute"
    replacement = None if grpc else _prefix_replacement(http_rewrite)
    variants: list[str | None] = [None]
    if (
        match.WhichOneof("path_specifier") == "prefix"
        and prefix is not None
        and prefix != "/"
        and replacement is not None
        and not prefix.endswith("/")
    ):
        variants = [prefix + "/", prefix]
    built = []
    for variant in variants:
        route = route_pb.Route(name=gateway_route.name)
        route.match.CopyFrom(match)
        if variant is not None:
            route.match.prefix = variant
        action = route.route
        action.cluster = cluster
        host = gateway_route.service
        action.host_rewrite_literal = f"{host}:{gateway_route.port}" if gateway_route.port else host
        if gateway_route.keeps_host:
            route.request_headers_to_add.add(
                header=base_pb2.HeaderValue(key=KEPT_HOST_HEADER, value="%REQ(:authority)%"),
                append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
            )
        elif keeps_host:
            route.request_headers_to_remove.append(KEPT_HOST_HEADER)
        is_prefix = route.match.WhichOneof("path_specifier") == "prefix"
        changes = (route.match.prefix, replacement) != ("/", "/")
        if is_prefix and replacement is not None and changes:
            action.prefix_rewrite = replacement
        path = http_rewrite.path if http_rewrite is not None else None
        exact = path.exact if path is not None else None
        if exact is not None and route.match.WhichOneof("path_specifier") != "prefix":
            action.regex_rewrite.pattern.CopyFrom(regex_pb2.RegexMatcher(regex="^.*$"))
            action.regex_rewrite.substitution = exact
        action.timeout.CopyFrom(durations.of_ms(specs.DEFAULT_PER_REQUEST_MS))
        built.append(route)
    return built


def _prefix_replacement(rewrite: g.HttpGatewayRouteRewrite | None) -> str | None:
    """What a matched prefix becomes: ``/`` by default, a given value, or ``None`` (kept)."""
    prefix = rewrite.prefix if rewrite is not None else None
    if prefix is not None and prefix.value is not None:
        return prefix.value
    if prefix is not None and prefix.default_prefix == "DISABLED":
        return None
    return "/"


def _hostname(match: route_pb.RouteMatch, hostname: g.GatewayRouteHostnameMatch | None) -> None:
    """A gateway hostname match becomes an ``:authority`` match that allows a ``:port``."""
    if hostname is None:
        return
    if hostname.exact is not None:
        pattern = re.escape(hostname.exact) + _OPTIONAL_PORT
    elif hostname.suffix is not None:
        pattern = ".*" + re.escape(hostname.suffix) + _OPTIONAL_PORT
    else:
        return
    header = match.headers.add(name=":authority")
    header.string_match.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=pattern))
