"""Virtual gateways: gateway routes in front of the mesh's own virtual-service routing.

App Mesh's layout (``appmesh-controller.md`` §3.8): each gateway listener binds
its own port; its route configuration (``rds_ingress_<proto>_<port>``, one
virtual host ``self_redirect``) matches gateway routes and sends them to the
gateway's own egress listener through a self-redirect cluster, rewriting Host
to the target virtual service (and the matched prefix to ``/``) on the way.
The egress side then routes that Host exactly as a virtual node's sidecar
would. Routes are ordered by priority (default 1000), then longest prefix.
"""

from __future__ import annotations

import dataclasses

from envoy.config.route.v3 import route_components_pb2 as route_pb
from envoy.config.route.v3 import route_pb2
from envoy.type.matcher.v3 import regex_pb2

from meshplane.model.snapshot import MeshSnapshot, Resource
from meshplane.translate import durations, routes, specs
from meshplane.translate.specs import Spec

GATEWAY_ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute")
DEFAULT_PRIORITY = 1000
SELF_REDIRECT_HOST = "self_redirect"


@dataclasses.dataclass(frozen=True)
class GatewayRoute:
    """One gateway route applicable to one listener, with its resolved target."""

    name: str
    route_type: str
    match: Spec
    action: Spec
    service: str
    port: int | None


def routes_for(
    snapshot: MeshSnapshot, gateway: str, listener: specs.Listener, warnings: list[str]
) -> tuple[GatewayRoute, ...]:
    """The gateway's routes on one listener, in match order, broken ones skipped."""
    found: list[tuple[tuple[int, int, str], GatewayRoute]] = []
    for route in snapshot.gateway_routes.get(gateway, {}).values():
        parsed = _parse(snapshot, gateway, route, warnings)
        if parsed is None:
            continue
        port = parsed.match.get("port")
        if isinstance(port, int) and port != listener.port:
            continue
        priority = route.spec.get("priority")
        rank = priority if isinstance(priority, int) else DEFAULT_PRIORITY
        prefix = parsed.match.get("prefix")
        length = len(prefix) if isinstance(prefix, str) else 0
        found.append(((rank, -length, route.name), parsed))
    return tuple(route for _, route in sorted(found, key=lambda pair: pair[0]))


def _parse(
    snapshot: MeshSnapshot, gateway: str, route: Resource, warnings: list[str]
) -> GatewayRoute | None:
    """Read one gateway route; ``None`` with a warning when it cannot be used."""
    where = f"GatewayRoute {route.name} of VirtualGateway {gateway}"
    present = [key for key in GATEWAY_ROUTE_TYPES if isinstance(route.spec.get(key), dict)]
    if len(present) != 1:
        warnings.append(f"{where}: needs exactly one of {', '.join(GATEWAY_ROUTE_TYPES)}; skipped")
        return None
    body = specs.mapping(route.spec, present[0])
    service = specs.member(body, "action", "target", "virtualService", "virtualServiceName")
    if not isinstance(service, str) or service not in snapshot.virtual_services:
        warnings.append(f"{where}: target VirtualService {service} not found; skipped")
        return None
    if specs.member(body, "action", "rewrite", "hostname", "defaultTargetHostname") == "DISABLED":
        warnings.append(f"{where}: hostname rewrite DISABLED is not supported; Host is rewritten")
    port = specs.member(body, "action", "target", "port")
    return GatewayRoute(
        name=route.name,
        route_type=present[0],
        match=specs.mapping(body, "match"),
        action=specs.mapping(body, "action"),
        service=service,
        port=port if isinstance(port, int) else None,
    )


def build_ingress_route_config(
    name: str, cluster: str, gateway_routes: tuple[GatewayRoute, ...]
) -> route_pb2.RouteConfiguration:
    """The listener's route configuration: every gateway route to the self-redirect."""
    config = route_pb2.RouteConfiguration(name=name)
    virtual_host = config.virtual_hosts.add(name=SELF_REDIRECT_HOST, domains=["*"])
    for gateway_route in gateway_routes:
        virtual_host.routes.extend(_routes(gateway_route, cluster))
    return config


def _routes(gateway_route: GatewayRoute, cluster: str) -> list[route_pb.Route]:
    """One gateway route as Envoy routes (two for a rewritten bare prefix: ``/p/`` then ``/p``)."""
    match = routes.build_match(gateway_route.route_type, gateway_route.match)
    _hostname(match, specs.mapping(gateway_route.match, "hostname"))
    prefix = gateway_route.match.get("prefix")
    rewrite = specs.mapping(gateway_route.action, "rewrite")
    replacement = _prefix_replacement(rewrite)
    variants: list[str | None] = [None]
    if (
        match.WhichOneof("path_specifier") == "prefix"
        and isinstance(prefix, str)
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
        is_prefix = route.match.WhichOneof("path_specifier") == "prefix"
        changes = (route.match.prefix, replacement) != ("/", "/")
        if is_prefix and replacement is not None and changes:
            action.prefix_rewrite = replacement
        exact = specs.member(rewrite, "path", "exact")
        if isinstance(exact, str) and route.match.WhichOneof("path_specifier") != "prefix":
            action.regex_rewrite.pattern.CopyFrom(regex_pb2.RegexMatcher(regex="^.*$"))
            action.regex_rewrite.substitution = exact
        action.timeout.CopyFrom(durations.of_ms(specs.DEFAULT_PER_REQUEST_MS))
        built.append(route)
    return built


def _prefix_replacement(rewrite: Spec) -> str | None:
    """What a matched prefix becomes: ``/`` by default, a given value, or ``None`` (kept)."""
    prefix = specs.mapping(rewrite, "prefix")
    if isinstance(prefix.get("value"), str):
        return str(prefix["value"])
    if prefix.get("defaultPrefix") == "DISABLED":
        return None
    return "/"


def _hostname(match: route_pb.RouteMatch, hostname: Spec) -> None:
    """A gateway hostname match becomes an ``:authority`` header match."""
    if isinstance(hostname.get("exact"), str):
        match.headers.add(name=":authority").string_match.exact = hostname["exact"]
    elif isinstance(hostname.get("suffix"), str):
        match.headers.add(name=":authority").string_match.suffix = hostname["suffix"]
