"""Server-side validation: max/enum, non-union one-of, cross-field and port rules (§13 10-12).

boto3 checks required members, ``min`` and unions before sending; ``max``, enums
and App Mesh's semantic rules are the server's job. The ``raw_client`` fixture
turns client validation off so min and union breaches reach the server too.
"""

from __future__ import annotations

from typing import Any

import pytest
import walkthrough as wt

BAD = ("BadRequestException", 400)


@pytest.fixture
def routed(client: Any, mesh: str) -> str:
    """A mesh with nodes ``a`` and ``b`` (one http listener on 80) and router ``vr`` on 80."""
    for node in ("a", "b"):
        client.create_virtual_node(
            meshName=mesh, virtualNodeName=node, spec=wt.node_spec(f"{node}.local")
        )
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    return mesh


def _route(client: Any, mesh: str, spec: dict[str, Any], name: str = "rt") -> Any:
    return lambda: client.create_route(
        meshName=mesh, virtualRouterName="vr", routeName=name, spec=spec
    )


# -- check 10: max and enum --------------------------------------------------------------


def test_weight_above_100_is_rejected(client: Any, rejected: Any, routed: str) -> None:
    """Weight 101 breaks the model's max."""
    rejected(
        _route(client, routed, wt.route_spec({"a": 101})),
        *BAD,
        "spec.httpRoute.action.weightedTargets[0].weight: value 101 is above the maximum 100",
    )


def test_eleven_weighted_targets_are_rejected(client: Any, rejected: Any, routed: str) -> None:
    """More than 10 weighted targets break the list max."""
    spec = wt.route_spec({"a": 1})
    spec["httpRoute"]["action"]["weightedTargets"] = [
        {"virtualNode": "a", "weight": 1, "port": 80}
    ] * 11
    rejected(
        _route(client, routed, spec),
        *BAD,
        "spec.httpRoute.action.weightedTargets: list length 11 is above the maximum 10",
    )


def test_priority_above_1000_is_rejected(client: Any, rejected: Any, routed: str) -> None:
    """Route priority 1001 breaks the max."""
    spec = {**wt.route_spec({"a": 1}), "priority": 1001}
    rejected(
        _route(client, routed, spec), *BAD, "spec.priority: value 1001 is above the maximum 1000"
    )


def test_port_above_65535_is_rejected(client: Any, rejected: Any, mesh: str) -> None:
    """A listener on port 70000 breaks the max."""
    rejected(
        lambda: client.create_virtual_node(
            meshName=mesh, virtualNodeName="vn", spec=wt.node_spec("h", 70000)
        ),
        *BAD,
        "spec.listeners[0].portMapping.port: value 70000 is above the maximum 65535",
    )


def test_256_character_name_is_rejected(client: Any, rejected: Any, mesh: str) -> None:
    """Resource names are at most 255 characters."""
    rejected(
        lambda: client.create_virtual_node(meshName=mesh, virtualNodeName="n" * 256, spec={}),
        *BAD,
        "virtualNodeName: length 256 is above the maximum 255",
    )
    rejected(
        lambda: client.create_mesh(meshName="m" * 256),
        *BAD,
        "meshName: length 256 is above the maximum 255",
    )


def test_enum_values_are_enforced(client: Any, rejected: Any, mesh: str) -> None:
    """Egress NOPE and protocol udp are not in the model's enums."""
    rejected(
        lambda: client.create_mesh(meshName="enum-mesh", spec={"egressFilter": {"type": "NOPE"}}),
        *BAD,
        "spec.egressFilter.type: 'NOPE' is not one of ALLOW_ALL, DROP_ALL",
    )
    spec = wt.node_spec("h")
    spec["listeners"][0]["portMapping"]["protocol"] = "udp"
    rejected(
        lambda: client.create_virtual_node(meshName=mesh, virtualNodeName="vn", spec=spec),
        *BAD,
        "spec.listeners[0].portMapping.protocol: 'udp' is not one of",
    )


def test_health_check_threshold_above_10_is_rejected(client: Any, rejected: Any, mesh: str) -> None:
    """healthyThreshold 11 breaks the max of 10."""
    spec = wt.node_spec("h")
    spec["listeners"][0]["healthCheck"] = {
        "healthyThreshold": 11,
        "intervalMillis": 5000,
        "protocol": "http",
        "timeoutMillis": 2000,
        "unhealthyThreshold": 2,
    }
    rejected(
        lambda: client.create_virtual_node(meshName=mesh, virtualNodeName="vn", spec=spec),
        *BAD,
        "spec.listeners[0].healthCheck.healthyThreshold: value 11 is above the maximum 10",
    )


def test_list_limit_above_100_is_rejected(client: Any, rejected: Any) -> None:
    """ListMeshes limit=101 breaks the max."""
    rejected(
        lambda: client.list_meshes(limit=101), *BAD, "limit: value 101 is above the maximum 100"
    )


def test_min_and_union_breaches_without_client_validation(
    raw_client: Any, rejected: Any, routed: str
) -> None:
    """With botocore's checks off: weight -1, empty targets, interval 1000, two providers → 400."""
    rejected(
        _route(raw_client, routed, wt.route_spec({"a": -1})),
        *BAD,
        "weightedTargets[0].weight: value -1 is below the minimum 0",
    )
    empty = wt.route_spec({})
    rejected(
        _route(raw_client, routed, empty),
        *BAD,
        "spec.httpRoute.action.weightedTargets: list length 0 is below the minimum 1",
    )
    spec = wt.node_spec("h")
    spec["listeners"][0]["healthCheck"] = {
        "healthyThreshold": 2,
        "intervalMillis": 1000,
        "protocol": "http",
        "timeoutMillis": 2000,
        "unhealthyThreshold": 2,
    }
    rejected(
        lambda: raw_client.create_virtual_node(meshName=routed, virtualNodeName="hc", spec=spec),
        *BAD,
        "spec.listeners[0].healthCheck.intervalMillis: value 1000 is below the minimum 5000",
    )
    both = {
        "provider": {
            "virtualNode": {"virtualNodeName": "a"},
            "virtualRouter": {"virtualRouterName": "vr"},
        }
    }
    rejected(
        lambda: raw_client.create_virtual_service(
            meshName=routed, virtualServiceName="s", spec=both
        ),
        *BAD,
        "spec.provider: must set exactly one of virtualNode, virtualRouter",
    )
    rejected(
        lambda: raw_client.create_virtual_node(
            meshName=routed, virtualNodeName="vn", spec={"backends": [{}]}
        ),
        *BAD,
        "spec.backends[0]: must set exactly one of virtualService (found none)",
    )
    rejected(
        lambda: raw_client.create_virtual_node(meshName=routed, virtualNodeName="vn"),
        *BAD,
        "spec: is required",
    )


def test_wrong_json_types_are_rejected(raw_client: Any, rejected: Any, routed: str) -> None:
    """A string where the model says integer is a 400 naming the field."""
    spec = wt.route_spec({"a": 1})
    spec["httpRoute"]["action"]["weightedTargets"][0]["weight"] = "50"
    rejected(
        _route(raw_client, routed, spec),
        *BAD,
        "spec.httpRoute.action.weightedTargets[0].weight: must be an integer, got string",
    )


# -- check 11: one-of rules the model cannot state ----------------------------------------


def test_route_needs_exactly_one_route_type(client: Any, rejected: Any, routed: str) -> None:
    """RouteSpec with zero or two route types is a 400 listing the choices."""
    rejected(
        _route(client, routed, {}),
        *BAD,
        "spec: must set exactly one of httpRoute, http2Route, grpcRoute, tcpRoute (found none)",
    )
    http = wt.route_spec({"a": 1})["httpRoute"]
    rejected(
        _route(client, routed, {"httpRoute": http, "http2Route": http}),
        *BAD,
        "(found httpRoute, http2Route)",
    )


def test_gateway_route_needs_exactly_one_route_type(client: Any, rejected: Any, mesh: str) -> None:
    """GatewayRouteSpec with two route types is a 400."""
    client.create_virtual_service(meshName=mesh, virtualServiceName="s", spec={})
    client.create_virtual_gateway(meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec())
    http = wt.gateway_route_spec("s")["httpRoute"]
    rejected(
        lambda: client.create_gateway_route(
            meshName=mesh,
            virtualGatewayName="gw",
            gatewayRouteName="gr",
            spec={"httpRoute": http, "http2Route": http},
        ),
        *BAD,
        "spec: must set exactly one of httpRoute, http2Route, grpcRoute "
        "(found httpRoute, http2Route)",
    )


def test_match_one_of_rules(client: Any, rejected: Any, routed: str) -> None:
    """Path exact+regex, prefix+path, and a prefix without '/' are each a 400."""
    spec = wt.route_spec({"a": 1})
    spec["httpRoute"]["match"] = {"path": {"exact": "/a", "regex": "/b.*"}}
    rejected(
        _route(client, routed, spec),
        *BAD,
        "spec.httpRoute.match.path: must set exactly one of exact, regex (found exact, regex)",
    )
    spec["httpRoute"]["match"] = {"prefix": "/", "path": {"exact": "/a"}}
    rejected(
        _route(client, routed, spec), *BAD, "spec.httpRoute.match: set prefix or path, not both"
    )
    rejected(
        _route(client, routed, wt.route_spec({"a": 1}, prefix="foo")),
        *BAD,
        "spec.httpRoute.match.prefix: must start with '/', got 'foo'",
    )


def test_grpc_method_needs_service(client: Any, rejected: Any, mesh: str) -> None:
    """A gRPC route matching methodName without serviceName is a 400."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec={})
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec={})
    spec = {
        "grpcRoute": {
            "match": {"methodName": "Get"},
            "action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]},
        }
    }
    rejected(
        _route(client, mesh, spec),
        *BAD,
        "spec.grpcRoute.match.methodName: requires match.serviceName",
    )


def test_gateway_route_hostname_and_reserved_prefix(client: Any, rejected: Any, mesh: str) -> None:
    """Hostname exact+suffix and the reserved /aws-appmesh prefix are each a 400."""
    client.create_virtual_service(meshName=mesh, virtualServiceName="s", spec={})
    client.create_virtual_gateway(meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec())

    def create(spec: dict[str, Any]) -> Any:
        return lambda: client.create_gateway_route(
            meshName=mesh, virtualGatewayName="gw", gatewayRouteName="gr", spec=spec
        )

    rejected(
        create(wt.gateway_route_spec("s", prefix="/aws-appmesh/x")),
        *BAD,
        "spec.httpRoute.match.prefix: '/aws-appmesh/x' is reserved",
    )
    spec = wt.gateway_route_spec("s")
    spec["httpRoute"]["match"] = {"hostname": {"exact": "a.example", "suffix": ".example"}}
    rejected(
        create(spec),
        *BAD,
        "spec.httpRoute.match.hostname: must set exactly one of exact, suffix "
        "(found exact, suffix)",
    )


# -- check 12: cross-field rules -----------------------------------------------------------


def test_listener_without_service_discovery_is_rejected(
    client: Any, rejected: Any, mesh: str
) -> None:
    """A node with listeners but no serviceDiscovery is a 400 (R6)."""
    spec = wt.node_spec("h")
    del spec["serviceDiscovery"]
    rejected(
        lambda: client.create_virtual_node(meshName=mesh, virtualNodeName="vn", spec=spec),
        *BAD,
        "spec.serviceDiscovery: is required when the node has listeners",
    )


def test_connection_pool_must_match_protocol(client: Any, rejected: Any, mesh: str) -> None:
    """An http listener with a tcp connectionPool is a 400 (R7)."""
    spec = wt.node_spec("h")
    spec["listeners"][0]["connectionPool"] = {"tcp": {"maxConnections": 10}}
    rejected(
        lambda: client.create_virtual_node(meshName=mesh, virtualNodeName="vn", spec=spec),
        *BAD,
        "spec.listeners[0].connectionPool: a http listener takes connectionPool.http, "
        "not connectionPool.tcp",
    )


def test_health_check_port_must_be_listener_port(client: Any, rejected: Any, mesh: str) -> None:
    """healthCheck.port other than the listener port is a 400 (R8)."""
    spec = wt.node_spec("h")
    spec["listeners"][0]["healthCheck"] = {
        "healthyThreshold": 2,
        "intervalMillis": 5000,
        "protocol": "http",
        "port": 81,
        "timeoutMillis": 2000,
        "unhealthyThreshold": 2,
    }
    rejected(
        lambda: client.create_virtual_node(meshName=mesh, virtualNodeName="vn", spec=spec),
        *BAD,
        "spec.listeners[0].healthCheck.port: must equal the listener port 80, got 81",
    )


def test_duplicate_backends_are_rejected(client: Any, rejected: Any, mesh: str) -> None:
    """The same virtual service twice in one node's backends is a 400 (R14)."""
    rejected(
        lambda: client.create_virtual_node(
            meshName=mesh, virtualNodeName="vn", spec=wt.node_spec("h", backends=("s", "s"))
        ),
        *BAD,
        "spec.backends[1].virtualService.virtualServiceName: s is listed more than once",
    )


# -- multiple listeners (R10) --------------------------------------------------------------


def test_route_needs_port_on_multi_listener_router(client: Any, rejected: Any, mesh: str) -> None:
    """A route without match.port on a two-listener router is a 400; with a port it works."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec(80, 81))
    rejected(
        _route(client, mesh, wt.route_spec({"a": 1})),
        *BAD,
        "spec.httpRoute.match.port: Route must define a port match criteria if the Virtual "
        "Router has multiple listeners",
    )
    rejected(
        _route(client, mesh, wt.route_spec({"a": 1}, port=82)),
        *BAD,
        "spec.httpRoute.match.port: 82 is not a listener port of virtual router vr (80, 81)",
    )
    made = client.create_route(
        meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"a": 1}, port=81)
    )
    assert made["route"]["spec"]["httpRoute"]["match"] == {"prefix": "/", "port": 81}


def test_target_needs_port_on_multi_listener_node(client: Any, rejected: Any, mesh: str) -> None:
    """A weighted target at a two-listener node must name one of its ports."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a", 80, 81))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    rejected(
        _route(client, mesh, wt.route_spec({"a": 1})),
        *BAD,
        "spec.httpRoute.action.weightedTargets[0].port: virtual node a has multiple listeners",
    )
    spec = wt.route_spec({"a": 1})
    spec["httpRoute"]["action"]["weightedTargets"][0]["port"] = 9
    rejected(
        _route(client, mesh, spec),
        *BAD,
        "spec.httpRoute.action.weightedTargets[0].port: 9 is not a listener port of virtual node a",
    )


def test_router_cannot_gain_listener_while_routes_lack_port(
    client: Any, rejected: Any, mesh: str
) -> None:
    """Adding a second router listener while a route has no match.port is a 400."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    client.create_route(
        meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"a": 1})
    )
    rejected(
        lambda: client.update_virtual_router(
            meshName=mesh, virtualRouterName="vr", spec=wt.router_spec(80, 81)
        ),
        *BAD,
        "Invalid request: spec.listeners: route vr/rt would no longer be valid "
        "(spec.httpRoute.match.port: Route must define a port match criteria if the Virtual "
        "Router has multiple listeners); update or delete it first",
    )
    router = client.describe_virtual_router(meshName=mesh, virtualRouterName="vr")["virtualRouter"]
    assert router["metadata"]["version"] == 1


def test_duplicate_listener_ports_are_rejected(client: Any, rejected: Any, mesh: str) -> None:
    """Two listeners on one port is a 400."""
    rejected(
        lambda: client.create_virtual_router(
            meshName=mesh, virtualRouterName="vr", spec=wt.router_spec(80, 80)
        ),
        *BAD,
        "spec.listeners[1].portMapping.port: port 80 is used by another listener",
    )


def test_gateway_route_needs_port_on_multi_listener_gateway(
    client: Any, rejected: Any, mesh: str
) -> None:
    """A gateway route without match.port on a two-listener gateway is a 400."""
    client.create_virtual_service(meshName=mesh, virtualServiceName="s", spec={})
    client.create_virtual_gateway(
        meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec(8080, 8081)
    )
    rejected(
        lambda: client.create_gateway_route(
            meshName=mesh,
            virtualGatewayName="gw",
            gatewayRouteName="gr",
            spec=wt.gateway_route_spec("s"),
        ),
        *BAD,
        "Gateway route must define a port match criteria if the Virtual Gateway has multiple",
    )


def test_gateway_needs_a_listener(raw_client: Any, rejected: Any, mesh: str) -> None:
    """A virtual gateway with no listeners is a 400."""
    rejected(
        lambda: raw_client.create_virtual_gateway(
            meshName=mesh, virtualGatewayName="gw", spec={"listeners": []}
        ),
        *BAD,
        "spec.listeners: a virtual gateway needs at least one listener",
    )
