"""Route configurations: App Mesh matches, weighted targets, timeouts and retries.

The egress route configuration holds one virtual host per backend virtual
service (and port); its routes are the provider router's routes in priority
order, or one catch-all route when a node provides the service. Under
ALLOW_ALL a wildcard virtual host sends every other Host to the passthrough;
under DROP_ALL there is none, so Envoy answers unknown hosts with 404. Each
ingress route configuration sends everything to the local app.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

from envoy.config.route.v3 import route_components_pb2 as route_pb
from envoy.config.route.v3 import route_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2, range_pb2

from meshplane.envoy import wireformat
from meshplane.model import specs_generated as g
from meshplane.translate import durations, names, retries, specs
from meshplane.translate.plan import HostPlan, RoutePlan, WeightedTarget
from meshplane.translate.specs import Timeouts

NO_TARGET_STATUS = 503
"""What a route whose weights are all 0 answers (Envoy NACKs a zero weight sum)."""


def build_egress_route_config(
    name: str,
    mesh: str,
    hosts: Sequence[HostPlan],
    *,
    allow_all: bool,
    kept_host_header: str | None = None,
    tunnel_cluster: str | None = None,
    host_routes: Callable[[HostPlan], Sequence[route_pb.Route]] | None = None,
    host_routes_wire: Callable[[HostPlan], bytes] | None = None,
) -> route_pb2.RouteConfiguration:
    """The outbound route configuration: a virtual host per (service, port).

    ``kept_host_header`` (gateways only) names the header whose value, when a request
    carries it, replaces Host on the way to the target: a gateway route that keeps the
    client's Host reached this routing under the target's name. ``host_routes`` gives a
    host's routes as :func:`build_host_routes` would (the sync stage reuses them across
    callers); by default they are built here. ``host_routes_wire`` gives them serialized
    as a ``VirtualHost`` holding only its routes: merged in with one parse, which is
    several times cheaper than copying a host's routes message by message (the result
    is the same message).

    ``tunnel_cluster`` (local-mode sidecars) makes every virtual host answer an HTTP
    CONNECT for its authority: the tunnel is terminated and its bytes go to that cluster
    (the egress listener itself), so what the client then speaks inside it (gRPC over
    h2c from a client honouring ``grpc_proxy``) meets the same routes by its authority.
    Only the mesh's own services are tunnelled; a CONNECT to any other host stays 404.
    """
    config = route_pb2.RouteConfiguration(name=name)
    connect = _connect_route(tunnel_cluster) if tunnel_cluster is not None else None
    for host in sorted(hosts, key=lambda h: h.name):
        virtual_host = config.virtual_hosts.add(name=host.name, domains=host.domains)
        if host_routes_wire is not None:
            virtual_host.MergeFromString(host_routes_wire(host))
        elif host_routes is None:
            virtual_host.routes.extend(build_host_routes(mesh, host, kept_host_header))
        else:
            virtual_host.routes.extend(host_routes(host))
        if connect is not None:
            # Last: a CONNECT has no path, so App Mesh's routes never take it before this one.
            virtual_host.routes.append(connect)
    if allow_all:
        config.virtual_hosts.append(_passthrough_host(mesh))
    return config


@dataclasses.dataclass(frozen=True, slots=True)
class SerializedRouteConfiguration:
    """A route configuration built straight as its deterministic wire bytes.

    What :func:`serialized_egress_route_config` gives: the sync stage sends these bytes
    as they are, so the 68 KB message a 20-backend proxy's egress holds is neither
    assembled from its hosts' routes nor serialized again on every rebuild.
    """

    name: str
    body: bytes
    """Exactly ``message().SerializeToString(deterministic=True)``."""

    def message(self) -> route_pb2.RouteConfiguration:
        """The route configuration parsed (for readers that want the message)."""
        return route_pb2.RouteConfiguration.FromString(self.body)


def serialized_egress_route_config(
    name: str,
    mesh: str,
    hosts: Sequence[HostPlan],
    *,
    allow_all: bool,
    host_routes_wire: Callable[[HostPlan], bytes],
    tunnel_cluster: str | None = None,
) -> SerializedRouteConfiguration:
    """:func:`build_egress_route_config` with ``host_routes_wire``, as its serialized bytes.

    Deterministic serialization writes a message's fields in field-number order, so a
    virtual host is its name and domains (fields 1 and 2) followed by its routes
    (field 3: the shared ``VirtualHost`` holding only them, then the CONNECT route);
    a route configuration is its name (field 1) followed by its hosts (field 2). The
    bytes are the very bytes the message would serialize to (tests compare them).
    """
    connect = (
        route_pb.VirtualHost(routes=[_connect_route(tunnel_cluster)]).SerializeToString(
            deterministic=True
        )
        if tunnel_cluster is not None
        else b""
    )
    pieces = [route_pb2.RouteConfiguration(name=name).SerializeToString(deterministic=True)]
    for host in sorted(hosts, key=lambda h: h.name):
        head = _host_head(host.name, host.domains)
        routes_wire = host_routes_wire(host)
        pieces += (wireformat.header(2, len(head) + len(routes_wire) + len(connect)), head)
        pieces += (routes_wire, connect)
    if allow_all:
        passthrough = _passthrough_host(mesh).SerializeToString(deterministic=True)
        pieces += (wireformat.header(2, len(passthrough)), passthrough)
    return SerializedRouteConfiguration(name, b"".join(pieces))


@functools.lru_cache(maxsize=1 << 14)
def _host_head(name: str, domains: tuple[str, ...]) -> bytes:
    """A virtual host's name and domains serialized (fields 1 and 2), for the same ones again.

    Every rebuild of every caller of a service serializes the same few; bytes are
    immutable, and the cache is bounded.
    """
    head: bytes = route_pb.VirtualHost(name=name, domains=domains).SerializeToString(
        deterministic=True
    )
    return head


def _passthrough_host(mesh: str) -> route_pb.VirtualHost:
    """ALLOW_ALL's wildcard virtual host: every other Host to the passthrough cluster."""
    passthrough = route_pb.VirtualHost(name=names.ALLOW_ALL_VIRTUAL_HOST, domains=["*"])
    route = passthrough.routes.add(name=names.ALLOW_ALL_VIRTUAL_HOST)
    route.match.prefix = "/"
    route.route.cluster = names.allow_all_cluster(mesh)
    # App Mesh's passthrough is a plain TCP proxy: no request timeout.
    route.route.timeout.CopyFrom(durations.of_ms(0))
    return passthrough


def _connect_route(cluster: str) -> route_pb.Route:
    """Terminate an HTTP CONNECT and send the tunnel's bytes to ``cluster``."""
    route = route_pb.Route(name=names.CONNECT_ROUTE)
    route.match.connect_matcher.SetInParent()
    route.route.cluster = cluster
    upgrade = route.route.upgrade_configs.add(upgrade_type="CONNECT")
    upgrade.connect_config.SetInParent()
    # A tunnel lives as long as its client keeps it: no request timeout.
    route.route.timeout.CopyFrom(durations.of_ms(0))
    return route


def build_host_routes(
    mesh: str, host: HostPlan, kept_host_header: str | None
) -> list[route_pb.Route]:
    """A virtual host's routes, in order: the same for every caller of its service."""
    built = []
    for plan in host.routes:
        route = build_route(mesh, plan)
        if kept_host_header is not None and route.HasField("route"):
            route.route.host_rewrite_header = kept_host_header
        built.append(route)
    return built


def build_ingress_route_config(
    name: str, cluster: str, timeouts: Timeouts
) -> route_pb2.RouteConfiguration:
    """An inbound route configuration: every request to the local app's cluster."""
    config = route_pb2.RouteConfiguration(name=name)
    virtual_host = config.virtual_hosts.add(name=cluster, domains=["*"])
    route = virtual_host.routes.add(name=cluster)
    route.match.prefix = "/"
    route.route.cluster = cluster
    _set_timeouts(route.route, timeouts)
    return config


def build_route(mesh: str, plan: RoutePlan) -> route_pb.Route:
    """One App Mesh route (or a node provider's catch-all) as an Envoy route."""
    route = route_pb.Route(name=plan.name)
    route.match.CopyFrom(build_match(plan.match))
    if plan.weighted and plan.total_weight == 0:
        route.direct_response.status = NO_TARGET_STATUS
        return route
    action = route.route
    if plan.weighted:
        action.weighted_clusters.clusters.extend(
            _cluster_weight(mesh, target) for target in plan.targets
        )
    else:
        target = plan.targets[0].target
        action.cluster = names.egress_cluster(mesh, target.node, target.protocol, target.port)
    _set_timeouts(action, plan.timeouts)
    action.retry_policy.CopyFrom(
        retries.build_retry_policy(plan.retry_policy, grpc=plan.route_type == "grpcRoute")
    )
    if plan.mirror is not None:
        _add_mirror(action, mesh, plan.mirror)
    return route


def _add_mirror(action: route_pb.RouteAction, mesh: str, mirror: WeightedTarget) -> None:
    """Copy ``mirror.weight`` % of the requests to the mirror's cluster; its answers are dropped."""
    target = mirror.target
    policy = action.request_mirror_policies.add(
        cluster=names.egress_cluster(mesh, target.node, target.protocol, target.port)
    )
    fraction = policy.runtime_fraction.default_value
    fraction.numerator = mirror.weight
    fraction.denominator = percent_pb2.FractionalPercent.HUNDRED


def build_match(match: specs.Match) -> route_pb.RouteMatch:
    """An App Mesh route's or gateway route's match as an Envoy route match."""
    if isinstance(match, g.GrpcRouteMatch | g.GrpcGatewayRouteMatch):
        return _grpc_match(match)
    result = route_pb.RouteMatch()
    path = match.path
    if path is not None and path.exact is not None:
        result.path = path.exact
    elif path is not None and path.regex is not None:
        result.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=path.regex))
    else:
        result.prefix = match.prefix or "/"
    scheme = match.scheme if isinstance(match, g.HttpRouteMatch) else None
    for pseudo, value in ((":method", match.method), (":scheme", scheme)):
        if value is not None:
            result.headers.add(name=pseudo, string_match=string_pb2.StringMatcher(exact=value))
    result.headers.extend(_header(entry) for entry in match.headers or ())
    for entry in match.query_parameters or ():
        parameter = result.query_parameters.add(name=entry.name)
        exact = entry.match.exact if entry.match is not None else None
        if exact is not None:
            parameter.string_match.exact = exact
        else:
            parameter.present_match = True
    return result


def _grpc_match(match: g.GrpcRouteMatch | g.GrpcGatewayRouteMatch) -> route_pb.RouteMatch:
    """gRPC: service and method become the ``/<service>/<method>`` path; metadata, headers."""
    result = route_pb.RouteMatch()
    service = match.service_name
    method = match.method_name if isinstance(match, g.GrpcRouteMatch) else None
    if service is not None and method is not None:
        result.path = f"/{service}/{method}"
    elif service is not None:
        result.prefix = f"/{service}/"
    else:
        result.prefix = "/"
    result.headers.extend(_header(entry) for entry in match.metadata or ())
    return result


Header = (
    g.HttpRouteHeader | g.HttpGatewayRouteHeader | g.GrpcRouteMetadata | g.GrpcGatewayRouteMetadata
)
"""A header match of a route or gateway route, or gRPC metadata (all read alike)."""


def _header(entry: Header) -> route_pb.HeaderMatcher:
    """A header (or gRPC metadata) match; no match method means "present"."""
    matcher = route_pb.HeaderMatcher(name=entry.name, invert_match=entry.invert is True)
    method = entry.match
    if method is None:
        matcher.present_match = True
    elif method.exact is not None:
        matcher.string_match.exact = method.exact
    elif method.prefix is not None:
        matcher.string_match.prefix = method.prefix
    elif method.suffix is not None:
        matcher.string_match.suffix = method.suffix
    elif method.regex is not None:
        matcher.string_match.safe_regex.regex = method.regex
    elif method.range is not None:
        rng = method.range
        matcher.range_match.CopyFrom(range_pb2.Int64Range(start=rng.start, end=rng.end))
    else:
        matcher.present_match = True
    return matcher


def _cluster_weight(mesh: str, weighted: WeightedTarget) -> route_pb.WeightedCluster.ClusterWeight:
    """One weighted cluster entry; weight 0 is kept (no traffic, still listed)."""
    target = weighted.target
    entry = route_pb.WeightedCluster.ClusterWeight(
        name=names.egress_cluster(mesh, target.node, target.protocol, target.port)
    )
    entry.weight.value = weighted.weight
    return entry


def _set_timeouts(action: route_pb.RouteAction, timeouts: Timeouts) -> None:
    """Per-request timeout and idle timeout; 0 disables either, as in App Mesh."""
    action.timeout.CopyFrom(durations.of_ms(timeouts.per_request_ms))
    action.idle_timeout.CopyFrom(durations.of_ms(timeouts.idle_ms))
