"""model.rules: App Mesh's rules the service model cannot state (appmesh-api.md §8)."""

from __future__ import annotations

from typing import Any

from meshplane.model import rules


def _http_route(match: dict[str, Any], **extra: Any) -> dict[str, Any]:
    action = {"weightedTargets": [{"virtualNode": "a", "weight": 1}]}
    return {"httpRoute": {"match": match, "action": action, **extra}}


def _listener(port: int = 80, protocol: str = "http", **extra: Any) -> dict[str, Any]:
    return {"portMapping": {"port": port, "protocol": protocol}, **extra}


def test_route_type_exactly_one() -> None:
    """R1: zero or two route types are reported; one is fine."""
    assert rules.route({}) == [
        "spec: must set exactly one of httpRoute, http2Route, grpcRoute, tcpRoute (found none)"
    ]
    two = {**_http_route({"prefix": "/"}), "tcpRoute": {"action": {"weightedTargets": []}}}
    assert rules.route(two) == [
        "spec: must set exactly one of httpRoute, http2Route, grpcRoute, tcpRoute "
        "(found httpRoute, tcpRoute)"
    ]
    assert rules.route(_http_route({"prefix": "/"})) == []


def test_http_match_prefix_or_path() -> None:
    """R2/R3: prefix xor path, path exact xor regex, prefix starts with '/'."""
    assert rules.route(_http_route({})) == ["spec.httpRoute.match: must set prefix or path"]
    assert rules.route(_http_route({"prefix": "/", "path": {"exact": "/a"}})) == [
        "spec.httpRoute.match: set prefix or path, not both"
    ]
    assert rules.route(_http_route({"path": {}})) == [
        "spec.httpRoute.match.path: must set exactly one of exact, regex (found none)"
    ]
    assert rules.route(_http_route({"prefix": "api"})) == [
        "spec.httpRoute.match.prefix: must start with '/', got 'api'"
    ]
    assert rules.route(_http_route({"path": {"regex": "/a.*"}})) == []


def test_header_range_must_be_ordered() -> None:
    """A header range match needs start below end."""
    headers = [{"name": "x", "match": {"range": {"start": 5, "end": 5}}}]
    assert rules.route(_http_route({"prefix": "/", "headers": headers})) == [
        "spec.httpRoute.match.headers[0].match.range: start must be below end"
    ]


def test_grpc_method_requires_service() -> None:
    """R4: methodName without serviceName is reported."""
    spec = {
        "grpcRoute": {
            "match": {"methodName": "Get"},
            "action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]},
        }
    }
    assert rules.route(spec) == ["spec.grpcRoute.match.methodName: requires match.serviceName"]
    spec["grpcRoute"]["match"]["serviceName"] = "svc"
    assert rules.route(spec) == []


def test_retry_policy_needs_an_event() -> None:
    """R5: a retry policy with no events list is reported."""
    policy = {"maxRetries": 2, "perRetryTimeout": {"unit": "ms", "value": 100}}
    assert rules.route(_http_route({"prefix": "/"}, retryPolicy=policy)) == [
        "spec.httpRoute.retryPolicy: needs at least one of httpRetryEvents, tcpRetryEvents, "
        "grpcRetryEvents"
    ]
    policy["httpRetryEvents"] = ["server-error"]
    assert rules.route(_http_route({"prefix": "/"}, retryPolicy=policy)) == []


def test_duplicate_weighted_targets() -> None:
    """The same node and port twice in one route is reported."""
    spec = _http_route({"prefix": "/"})
    spec["httpRoute"]["action"]["weightedTargets"] *= 2
    assert rules.route(spec) == [
        "spec.httpRoute.action.weightedTargets[1].virtualNode: a is targeted more than once"
    ]


def test_node_listener_rules() -> None:
    """R6-R8: service discovery, connection pool and timeout per protocol, health-check port."""
    assert rules.virtual_node({"listeners": [_listener()]}) == [
        "spec.serviceDiscovery: is required when the node has listeners"
    ]
    dns = {"dns": {"hostname": "a"}}
    bad = _listener(
        connectionPool={"http2": {"maxRequests": 1}},
        timeout={"tcp": {}},
        healthCheck={"port": 81},
    )
    assert rules.virtual_node({"listeners": [bad], "serviceDiscovery": dns}) == [
        "spec.listeners[0].connectionPool: a http listener takes connectionPool.http, "
        "not connectionPool.http2",
        "spec.listeners[0].timeout: a http listener takes timeout.http, not timeout.tcp",
        "spec.listeners[0].healthCheck.port: must equal the listener port 80, got 81",
    ]
    good = _listener(protocol="grpc", connectionPool={"grpc": {"maxRequests": 1}})
    assert rules.virtual_node({"listeners": [good], "serviceDiscovery": dns}) == []


def test_listener_ports_are_unique() -> None:
    """Two listeners on one port are reported, for routers too."""
    assert rules.virtual_router({"listeners": [_listener(), _listener()]}) == [
        "spec.listeners[1].portMapping.port: port 80 is used by another listener"
    ]


def test_duplicate_backends() -> None:
    """R14: one virtual service twice in backends is reported."""
    backend = {"virtualService": {"virtualServiceName": "s"}}
    assert rules.virtual_node({"backends": [backend, backend]}) == [
        "spec.backends[1].virtualService.virtualServiceName: s is listed more than once"
    ]


def test_gateway_needs_listener() -> None:
    """A virtual gateway without listeners is reported."""
    assert rules.virtual_gateway({"listeners": []}) == [
        "spec.listeners: a virtual gateway needs at least one listener"
    ]
    assert rules.virtual_gateway({"listeners": [_listener(8080)]}) == []


def _gateway_route(match: dict[str, Any], rewrite: dict[str, Any] | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"target": {"virtualService": {"virtualServiceName": "s"}}}
    if rewrite is not None:
        action["rewrite"] = rewrite
    return {"httpRoute": {"match": match, "action": action}}


def test_gateway_route_rules() -> None:
    """R1-R3 for gateway routes: reserved prefixes, hostname one-of, rewrite consistency."""
    assert rules.gateway_route(_gateway_route({"prefix": "/aws-app-mesh/x"})) == [
        "spec.httpRoute.match.prefix: '/aws-app-mesh/x' is reserved (/aws-appmesh*, /aws-app-mesh*)"
    ]
    assert rules.gateway_route(_gateway_route({"hostname": {}})) == [
        "spec.httpRoute.match.hostname: must set exactly one of exact, suffix (found none)"
    ]
    assert rules.gateway_route(_gateway_route({"prefix": "/"}, {"path": {"exact": "/x"}})) == [
        "spec.httpRoute.action.rewrite.path: only valid with a path match"
    ]
    both = {"prefix": {"value": "/v2/", "defaultPrefix": "ENABLED"}}
    assert rules.gateway_route(_gateway_route({"prefix": "/"}, both)) == [
        "spec.httpRoute.action.rewrite.prefix: set value or defaultPrefix, not both"
    ]
    assert rules.gateway_route(_gateway_route({"hostname": {"suffix": ".example"}})) == []
    grpc = {
        "grpcRoute": {
            "match": {"serviceName": "aws.appmesh.Admin"},
            "action": {"target": {"virtualService": {"virtualServiceName": "s"}}},
        }
    }
    assert rules.gateway_route(grpc) == [
        "spec.grpcRoute.match.serviceName: 'aws.appmesh.Admin' is reserved"
    ]
    assert rules.gateway_route({"tcpRoute": {}}) == [
        "spec: must set exactly one of httpRoute, http2Route, grpcRoute (found none)"
    ]


def test_problems_dispatches_by_kind() -> None:
    """problems() knows all seven kinds; meshes and services have no extra rules."""
    assert set(rules.CHECKERS) == {
        "mesh",
        "virtualNode",
        "virtualService",
        "virtualRouter",
        "route",
        "virtualGateway",
        "gatewayRoute",
    }
    assert rules.problems("mesh", {}) == []
    assert rules.problems("virtualService", {}) == []
