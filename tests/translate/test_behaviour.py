"""Behaviour of the translated config, stated as routing outcomes (via the simulator).

Each test builds a case and asks what Envoy would do with a request, so the
tests keep saying the same thing when proto shapes change.
"""

from __future__ import annotations

import dataclasses

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshplane.testing import routing as simulator
from meshplane.translate import EnvoyResources, NodeIdentity, build
from meshplane.translate.diagnostics import Warning

from . import casefiles

BLUE = "cds_egress_demos_vn-echo-backend-blue_http_80"
GREEN = "cds_egress_demos_vn-echo-backend-green_http_80"


def built(name: str) -> EnvoyResources:
    """Translate one case file."""
    case = casefiles.load(name)
    return build(case.snapshot, case.node)


def egress(resources: EnvoyResources) -> route_pb2.RouteConfiguration:
    """The one egress route configuration."""
    [config] = [c for c in resources.route_configurations if c.name.startswith("rds_egress_")]
    return config


def cluster(resources: EnvoyResources, name: str) -> cluster_pb2.Cluster:
    """A cluster by name."""
    [found] = [c for c in resources.clusters if c.name == name]
    return found


def test_walkthrough_at_100_0_sends_everything_to_blue() -> None:
    """At 100/0 the frontend's calls to vs-echo-backend:80 reach only blue; green stays listed."""
    outcome = simulator.route(egress(built("bluegreen-100-0")), "vs-echo-backend:80", "/")
    assert outcome.clusters == ((BLUE, 100), (GREEN, 0))
    assert outcome.receiving == (BLUE,)


def test_walkthrough_at_50_50_splits_between_blue_and_green() -> None:
    """At 50/50 both colours receive half of the traffic."""
    outcome = simulator.route(egress(built("bluegreen-50-50")), "vs-echo-backend:80", "/echo")
    assert outcome.clusters == ((BLUE, 50), (GREEN, 50))


def test_bare_service_name_is_a_domain_too() -> None:
    """A client that omits the default port (Host: vs-echo-backend) is routed the same."""
    outcome = simulator.route(egress(built("bluegreen-100-0")), "vs-echo-backend", "/")
    assert outcome.receiving == (BLUE,)


def test_registered_endpoints_make_eds_clusters_filtered_by_listener_port() -> None:
    """With endpoints registered, targets are EDS and get exactly their listener's endpoints."""
    resources = built("bluegreen-50-50")
    assert cluster(resources, BLUE).type == cluster_pb2.Cluster.EDS
    by_cluster = {
        cla.cluster_name: [
            (
                lb.endpoint.address.socket_address.address,
                lb.endpoint.address.socket_address.port_value,
            )
            for locality in cla.endpoints
            for lb in locality.lb_endpoints
        ]
        for cla in resources.cluster_load_assignments
    }
    assert by_cluster == {
        BLUE: [("127.0.0.1", 20010), ("127.0.0.1", 20012)],
        GREEN: [("127.0.0.1", 20020)],
    }


def test_without_endpoints_targets_resolve_their_dns_hostname() -> None:
    """With no endpoints, a target is LOGICAL_DNS on its serviceDiscovery hostname and port."""
    resources = built("bluegreen-100-0")
    blue = cluster(resources, BLUE)
    assert blue.type == cluster_pb2.Cluster.LOGICAL_DNS
    address = blue.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (address.address, address.port_value) == (
        "echo-backend-blue.demos.svc.cluster.local",
        80,
    )
    assert resources.cluster_load_assignments == ()


def test_drop_all_answers_unknown_hosts_with_404() -> None:
    """Under DROP_ALL an unmodelled host has no virtual host: Envoy answers 404."""
    outcome = simulator.route(egress(built("bluegreen-100-0")), "example.com:80", "/")
    assert outcome == simulator.Outcome(status=404)
    lonely = built("drop-all")
    assert simulator.route(egress(lonely), "example.com", "/").status == 404
    assert [c.name for c in lonely.clusters] == ["cds_ingress_demos_vn-lonely_http_8080"]


def test_allow_all_passes_unknown_hosts_through() -> None:
    """Under ALLOW_ALL unknown hosts reach the passthrough; known ones still follow routes."""
    resources = built("allow-all")
    config = egress(resources)
    outcome = simulator.route(config, "example.com:8080", "/x")
    assert outcome.clusters == (("cds_egress_demos_mesh-allow-all", 1),)
    assert simulator.route(config, "vs-echo-backend:80").receiving == (BLUE,)
    passthrough = cluster(resources, "cds_egress_demos_mesh-allow-all")
    assert passthrough.cluster_type.name == "envoy.clusters.dynamic_forward_proxy"


def test_node_provider_routes_everything_to_that_node() -> None:
    """A service provided by a node sends every path to the node's listener cluster."""
    config = egress(built("node-provider"))
    outcome = simulator.route(config, "vs-echo-backend:8080", "/anything", method="DELETE")
    assert outcome.clusters == (("cds_egress_demos_vn-echo-backend-blue_http_8080", 1),)


def test_header_routes_follow_priority() -> None:
    """Header, method, path and query matches win in priority order; the default comes last."""
    config = egress(built("header-matches"))
    red, blue, green = (f"cds_egress_demos_vn-{c}_http_8080" for c in ("red", "blue", "green"))

    def to(
        path: str = "/", method: str = "GET", **headers: str
    ) -> tuple[str | None, tuple[str, ...]]:
        outcome = simulator.route(config, "color.demos:8080", path, headers, method)
        return outcome.route, outcome.receiving

    assert to() == ("default", (green,))
    assert to(color_header="red") == ("color-header-exact", (red,))
    assert to(color_header="blue") == ("color-header-regex", (blue,))
    assert to(color_header="black") == ("color-header-regex", (blue,))
    assert to(**{"x-tier": "2"}) == ("not-mobile-prefix", (red,))
    assert to(**{"x-tier": "2", "user-agent": "Mobile Safari"}) == ("default", (green,))
    assert to(**{"x-tier": "3"}) == ("default", (green,))
    assert to(**{"x-canary": ""}) == ("has-canary", (blue,))
    assert to("/paint", "POST", color_header="red") == ("post-exact-path", (red,))
    assert to("/paint", "GET", color_header="red") == ("color-header-exact", (red,))
    assert to("/items/42?view=full&debug") == ("regex-path-with-query", (blue,))
    assert to("/items/42?view=brief&debug") == ("default", (green,))
    assert to("/static/logo", accept="image/png") == ("suffix-header", (red,))


def test_default_retry_policy_applies_when_route_has_none() -> None:
    """App Mesh's invisible default: 2 retries on 503, connect-failure, refused-stream, reset."""
    route = egress(built("bluegreen-100-0")).virtual_hosts[0].routes[0].route
    assert route.retry_policy.num_retries.value == 2
    assert (
        route.retry_policy.retry_on == "connect-failure,refused-stream,reset,retriable-status-codes"
    )
    assert list(route.retry_policy.retriable_status_codes) == [503]
    assert (route.timeout.seconds, route.idle_timeout.seconds) == (15, 300)


def test_route_retry_policy_and_timeouts_are_translated() -> None:
    """Retry events become Envoy conditions and codes; route timeouts override the defaults."""
    config = egress(built("retries-timeouts"))
    hosts = {h.name: h for h in config.virtual_hosts}
    http = hosts["color.demos"].routes[0].route
    assert http.retry_policy.retry_on == (
        "connect-failure,refused-stream,reset,retriable-status-codes"
    )
    assert list(http.retry_policy.retriable_status_codes) == [
        409,
        500,
        501,
        502,
        503,
        504,
        505,
        506,
        507,
        508,
        510,
        511,
    ]
    assert http.retry_policy.num_retries.value == 3
    assert http.retry_policy.per_try_timeout.seconds == 5
    assert (http.timeout.seconds, http.idle_timeout.seconds) == (60, 120)
    grpc = hosts["greeter.demos"].routes[0]
    assert grpc.match.path == "/helloworld.Greeter/SayHello"
    assert grpc.route.retry_policy.retry_on == (
        "deadline-exceeded,reset,retriable-status-codes,unavailable"
    )
    assert grpc.route.timeout.ToMilliseconds() == 2500
    assert hosts["greeter.demos"].routes[1].match.prefix == "/helloworld.Greeter/"


def test_broken_pieces_are_skipped_and_the_rest_published() -> None:
    """Missing targets, bad routes and missing services give warnings; good routes survive."""
    resources = built("broken-pieces")
    config = egress(resources)
    blue = "cds_egress_demos_vn-echo-backend-blue_http_80"
    assert [h.name for h in config.virtual_hosts] == ["vs-echo-backend"]
    assert simulator.route(config, "vs-echo-backend", "/half").clusters == ((blue, 50),)
    assert simulator.route(config, "vs-echo-backend", "/gone").route == "rest"
    assert simulator.route(config, "vs-echo-backend", "/zero").status == 503
    assert simulator.route(config, "vs-echo-backend", "/two").route == "rest"
    assert simulator.route(config, "vs-no-provider", "/").status == 404
    route = "mesh/demos/virtualRouter/vr-echo-backend/route/"
    assert resources.warnings == (
        Warning(
            route + "half-missing",
            "target-not-found",
            "Route half-missing of VirtualRouter vr-echo-backend: target VirtualNode "
            "vn-echo-backend-gone not found; target skipped",
        ),
        Warning(
            route + "all-missing",
            "target-not-found",
            "Route all-missing of VirtualRouter vr-echo-backend: target VirtualNode "
            "vn-echo-backend-gone not found; target skipped",
        ),
        Warning(
            route + "all-missing",
            "route-no-targets",
            "Route all-missing of VirtualRouter vr-echo-backend: no usable weightedTargets; "
            "skipped",
        ),
        Warning(
            route + "all-zero",
            "route-zero-weights",
            "Route all-zero of VirtualRouter vr-echo-backend: every weightedTarget has weight 0; "
            "it answers 503",
        ),
        Warning(
            route + "two-types",
            "route-type-count",
            "Route two-types of VirtualRouter vr-echo-backend: needs exactly one of httpRoute, "
            "http2Route, grpcRoute, tcpRoute; skipped",
        ),
        Warning(
            route + "tcp-on-http",
            "route-type-mismatch",
            "Route tcp-on-http of VirtualRouter vr-echo-backend: tcpRoute does not fit the http "
            "listener on port 80; skipped",
        ),
        Warning(
            "mesh/demos/virtualService/vs-lost-router",
            "provider-not-found",
            "VirtualService vs-lost-router: provider VirtualRouter vr-gone not found; "
            "backend skipped",
        ),
        Warning(
            "mesh/demos/virtualService/vs-missing",
            "service-not-found",
            "VirtualService vs-missing: not found; backend skipped",
        ),
        Warning(
            "mesh/demos/virtualService/vs-no-provider",
            "service-no-provider",
            "VirtualService vs-no-provider: no provider; backend skipped",
        ),
    )


def test_kubernetes_fqdn_service_answers_to_its_short_names() -> None:
    """A service named like a Kubernetes FQDN is reachable as the walkthrough dials it."""
    config = egress(built("protocols"))
    for host in ("web.demos.svc.cluster.local:80", "web.demos", "web:80", "web"):
        assert simulator.route(config, host).receiving == ("cds_egress_demos_vn-web_http_80",)


def test_multiple_listeners_route_by_port() -> None:
    """Each router port has its own virtual host and routes; the bare name means port 80."""
    config = egress(built("multiple-listeners"))
    assert simulator.route(config, "color.demos").receiving == (
        "cds_egress_demos_vn-color_http_8080",
    )
    assert simulator.route(config, "color.demos:8080").receiving == (
        "cds_egress_demos_vn-color_http_9080",
    )


def test_tcp_router_splits_by_weight_without_zero_weights() -> None:
    """A tcp route becomes a tcp_proxy over weighted clusters; weight-0 targets are dropped."""
    resources = built("protocols")
    [egress_listener] = [x for x in resources.listeners if x.name.startswith("lds_egress_")]
    [chain] = [c for c in egress_listener.filter_chains if c.name == "tcp_5432"]
    proxy = tcp_proxy_pb2.TcpProxy()
    chain.filters[0].typed_config.Unpack(proxy)
    assert [(c.name, c.weight) for c in proxy.weighted_clusters.clusters] == [
        ("cds_egress_demos_vn-db-a_tcp_5432", 80),
        ("cds_egress_demos_vn-db-b_tcp_5432", 20),
    ]
    assert proxy.idle_timeout.seconds == 900
    assert chain.filter_chain_match.destination_port.value == 5432


def test_shared_ingress_port_tells_listeners_apart_by_destination_port() -> None:
    """Without local facts, all listeners share 15000 and chains match the original port."""
    resources = built("node-provider")
    [ingress] = [x for x in resources.listeners if x.name.startswith("lds_ingress_")]
    assert ingress.name == "lds_ingress_127.0.0.1_15000"
    assert [c.filter_chain_match.destination_port.value for c in ingress.filter_chains] == [
        80,
        9090,
    ]
    assert [f.name for f in ingress.listener_filters] == ["envoy.filters.listener.original_dst"]


def test_wrong_mesh_or_unknown_node_builds_nothing() -> None:
    """A sidecar of another mesh, or of a node that does not exist, gets nothing and a reason."""
    case = casefiles.load("bluegreen-100-0")
    other = dataclasses.replace(case.node, mesh="other")
    assert build(case.snapshot, other) == EnvoyResources(
        warnings=(
            Warning(
                "mesh/other/virtualNode/vn-echo-frontend-blue",
                "wrong-mesh",
                "mesh/other/virtualNode/vn-echo-frontend-blue: snapshot is of mesh demos; "
                "nothing built",
            ),
        )
    )
    ghost = NodeIdentity(mesh="demos", kind="virtualNode", name="vn-ghost")
    assert build(case.snapshot, ghost).warnings == (
        Warning(
            "mesh/demos/virtualNode/vn-ghost",
            "node-not-found",
            "mesh/demos/virtualNode/vn-ghost: VirtualNode vn-ghost not found; nothing built",
        ),
    )


def test_gateway_routes_redirect_into_the_gateways_own_egress_routing() -> None:
    """Gateway routes rewrite Host to the target service; egress then splits by the router."""
    resources = built("gateway")
    [ingress] = [c for c in resources.route_configurations if c.name == "rds_ingress_http_8088"]
    redirect = "cds_ingress_demos_vg-ingress_self_redirect_http_25001"

    def gateway(path: str, host: str = "gw.local", **headers: str) -> tuple[str | None, str]:
        outcome = simulator.route(ingress, host, path, headers)
        rewrites = {
            r.route.host_rewrite_literal
            for h in ingress.virtual_hosts
            for r in h.routes
            if r.name == outcome.route
        }
        assert outcome.receiving == (redirect,)
        [rewrite] = rewrites
        return outcome.route, rewrite

    assert gateway("/echo/hi") == ("echo", "vs-echo-backend")
    assert gateway("/echo/hi", **{"x-color": "green"}) == ("green-by-header", "vs-green")
    assert gateway("/v2/x", "api.example.com") == ("v2-kept-prefix", "vs-echo-backend")
    assert gateway("/health") == ("exact-path", "vs-green:80")
    assert simulator.route(ingress, "gw.local", "/nowhere").status == 404
    assert simulator.route(egress(resources), "vs-echo-backend").clusters == (
        (BLUE, 90),
        (GREEN, 10),
    )
    assert resources.warnings == (
        Warning(
            "mesh/demos/virtualGateway/vg-ingress/gatewayRoute/to-nowhere",
            "gateway-target-not-found",
            "GatewayRoute to-nowhere of VirtualGateway vg-ingress: target VirtualService "
            "vs-missing not found; skipped",
        ),
    )
