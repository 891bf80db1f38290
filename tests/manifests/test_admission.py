"""The webhooks' rules: awsName defaults and immutability, validation, membership."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.manifests import admission
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject


def obj(kind: str, name: str, spec: dict[str, Any] | None = None, **kw: Any) -> ManifestObject:
    namespace = "" if kind in {"Mesh", "Namespace"} else kw.pop("namespace", "demos")
    return ManifestObject(kind, namespace, name, spec=spec or {}, **kw)


def http_route(name: str, match: dict[str, Any], target: str = "a") -> dict[str, Any]:
    return {
        "name": name,
        "httpRoute": {
            "match": match,
            "action": {"weightedTargets": [{"virtualNodeRef": {"name": target}, "weight": 1}]},
        },
    }


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("Mesh", "demos"),
        ("VirtualNode", "vn_demos"),
        ("VirtualRouter", "vn_demos"),
        ("VirtualGateway", "vn_demos"),
        ("VirtualService", "vn.demos"),
    ],
)
def test_aws_name_defaults_on_create(kind: str, expected: str) -> None:
    """Mesh: its name; VirtualService: name.namespace; others: name_namespace."""
    name = "demos" if kind == "Mesh" else "vn"
    admitted, problems = admission.admit(obj(kind, name), None)
    assert problems == []
    assert admitted.spec["awsName"] == expected


def test_gateway_route_default_and_explicit_aws_name_kept() -> None:
    """A GatewayRoute defaults like a node; an explicit awsName is kept."""
    spec = {
        "httpRoute": {
            "match": {"prefix": "/"},
            "action": {"target": {"virtualService": {"virtualServiceRef": {"name": "s"}}}},
        }
    }
    admitted, problems = admission.admit(obj("GatewayRoute", "gr", spec), None)
    assert (admitted.spec["awsName"], problems) == ("gr_demos", [])
    admitted, _ = admission.admit(obj("VirtualNode", "vn", {"awsName": "custom"}), None)
    assert admitted.spec["awsName"] == "custom"


def test_aws_name_is_kept_when_omitted_and_refused_when_changed() -> None:
    """Update without awsName keeps the stored one; a different one is refused."""
    stored = obj("VirtualNode", "vn", {"awsName": "vn_demos", "meshRef": {"name": "m", "uid": "u"}})
    admitted, problems = admission.admit(obj("VirtualNode", "vn"), stored)
    assert problems == []
    assert admitted.spec == {"awsName": "vn_demos", "meshRef": {"name": "m", "uid": "u"}}
    _, problems = admission.admit(obj("VirtualNode", "vn", {"awsName": "other"}), stored)
    assert problems == [
        ("spec.awsName", "VirtualNode update may not change these fields: spec.awsName")
    ]


def test_cloud_map_discovery_is_immutable_once_set() -> None:
    """A VirtualNode's awsCloudMap block may not change after it was set."""
    cloud_map = {"awsCloudMap": {"namespaceName": "n", "serviceName": "s"}}
    stored = obj("VirtualNode", "vn", {"awsName": "vn_demos", "serviceDiscovery": cloud_map})
    changed = {"awsCloudMap": {"namespaceName": "n", "serviceName": "t"}}
    _, problems = admission.admit(obj("VirtualNode", "vn", {"serviceDiscovery": changed}), stored)
    assert problems == [
        (
            "spec.serviceDiscovery.awsCloudMap",
            "VirtualNode update may not change these fields: spec.serviceDiscovery.awsCloudMap",
        )
    ]


def test_read_only_refs_refused_on_create() -> None:
    """Users may not set meshRef or virtualGatewayRef themselves."""
    spec = {"meshRef": {"name": "m", "uid": "u"}}
    _, problems = admission.admit(obj("VirtualService", "vs", spec), None)
    assert problems == [
        ("spec.meshRef", "VirtualService create may not specify read-only field: spec.meshRef")
    ]


def test_virtual_node_rules() -> None:
    """Listeners need service discovery; backends are unique; one pool type per listener."""
    spec = {
        "listeners": [
            {
                "portMapping": {"port": 80, "protocol": "http"},
                "connectionPool": {"http": {"maxConnections": 1}, "tcp": {"maxConnections": 1}},
            }
        ],
        "backends": [
            {"virtualService": {"virtualServiceRef": {"name": "a"}}},
            {"virtualService": {"virtualServiceRef": {"name": "a", "namespace": "demos"}}},
            {"virtualService": {}},
            {"virtualService": {"virtualServiceARN": "arn:aws:appmesh:r:1:mesh/m/virtualNode/x"}},
        ],
    }
    _, problems = admission.admit(obj("VirtualNode", "vn", spec), None)
    assert problems == [
        ("spec.serviceDiscovery", "must be specified when a listener is specified"),
        (
            "spec.backends[1].virtualService.virtualServiceRef",
            "duplicate backend virtual service demos/a",
        ),
        (
            "spec.backends[2].virtualService",
            "must set exactly one of virtualServiceRef, virtualServiceARN",
        ),
        (
            "spec.backends[3].virtualService.virtualServiceARN",
            "'arn:aws:appmesh:r:1:mesh/m/virtualNode/x' is not a VirtualService ARN",
        ),
        (
            "spec.listeners[0].connectionPool",
            "only one type of virtual node connection pool is allowed",
        ),
    ]


def test_virtual_router_rules() -> None:
    """Unique route names, one route type, prefix xor path, exact xor regex."""
    spec = {
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "routes": [
            http_route("r", {"prefix": "/"}),
            http_route("r", {"prefix": "/", "path": {"exact": "/a"}}),
            http_route("s", {}),
            http_route("t", {"path": {"exact": "/a", "regex": "a"}}),
            {"name": "u"},
        ],
    }
    _, problems = admission.admit(obj("VirtualRouter", "vr", spec), None)
    assert problems == [
        ("spec.routes[1].name", "duplicate route name 'r'"),
        (
            "spec.routes[1].httpRoute.match",
            "both prefix and path cannot be specified, only 1 allowed",
        ),
        ("spec.routes[2].httpRoute.match", "either prefix or path must be specified"),
        (
            "spec.routes[3].httpRoute.match.path",
            "must set exactly one of exact, regex (found exact, regex)",
        ),
        (
            "spec.routes[4]",
            "must set exactly one of grpcRoute, httpRoute, http2Route, tcpRoute (found none)",
        ),
    ]


def test_virtual_service_provider_must_name_one_target() -> None:
    """A provider is a node or a router, named by ref or ARN."""
    spec = {"provider": {"virtualRouter": {}}}
    _, problems = admission.admit(obj("VirtualService", "vs", spec), None)
    assert problems == [
        (
            "spec.provider.virtualRouter",
            "must set exactly one of virtualRouterRef, virtualRouterARN",
        )
    ]


def test_gateway_route_http_rules() -> None:
    """Match and rewrite rules of the GatewayRoute webhook."""
    target = {"target": {"virtualService": {"virtualServiceRef": {"name": "s"}}}}
    spec = {
        "httpRoute": {
            "match": {
                "prefix": "api",
                "path": {"exact": "/x"},
                "headers": [
                    {"name": "h", "match": {"range": {"start": 5, "end": 5}}},
                    {"name": "g", "match": {}},
                ],
                "queryParameters": [{"name": "q"}],
            },
            "action": {**target, "rewrite": {"prefix": {"defaultPrefix": "ENABLED", "value": "x"}}},
        }
    }
    _, problems = admission.admit(obj("GatewayRoute", "gr", spec), None)
    assert problems == [
        ("spec.httpRoute.match", "both prefix and path cannot be specified, only 1 allowed"),
        ("spec.httpRoute.match.prefix", "prefix to be matched on must start with '/'"),
        ("spec.httpRoute.match.headers[0].match.range", "end has to be greater than start"),
        (
            "spec.httpRoute.match.headers[1].match",
            "missing match criteria for a header match block",
        ),
        ("spec.httpRoute.match.queryParameters[0].match", "missing exact match criteria"),
        (
            "spec.httpRoute.action.rewrite.prefix",
            "cannot specify both defaultPrefix and value, only 1 allowed",
        ),
        (
            "spec.httpRoute.action.rewrite.prefix.value",
            "new rewrite prefix must start and end with '/'",
        ),
    ]


def test_gateway_route_needs_one_type_and_grpc_needs_service_or_host() -> None:
    """Exactly one route type; a gRPC match needs serviceName or hostname."""
    _, problems = admission.admit(obj("GatewayRoute", "gr", {}), None)
    assert problems == [
        ("spec", "must set exactly one of grpcRoute, httpRoute, http2Route (found none)")
    ]
    target = {"target": {"virtualService": {"virtualServiceRef": {"name": "s"}}}}
    spec = {"grpcRoute": {"match": {}, "action": target}}
    _, problems = admission.admit(obj("GatewayRoute", "gr", spec), None)
    assert problems == [
        ("spec.grpcRoute.match", "either serviceName or hostname must be specified")
    ]


def mesh(name: str, selector: dict[str, Any] | None, uid: str = "") -> ManifestObject:
    spec: dict[str, Any] = {"awsName": name}
    if selector is not None:
        spec["namespaceSelector"] = selector
    return obj("Mesh", name, spec, uid=uid or f"uid-{name}")


def test_mesh_designation_exactly_one() -> None:
    """The mesh is the one whose namespaceSelector matches the namespace labels."""
    namespace = obj("Namespace", "demos", labels={"mesh": "demos"})
    catalog = Catalog(
        [namespace, mesh("demos", {"matchLabels": {"mesh": "demos"}}), mesh("none", None)]
    )
    found, reason = admission.designate_mesh(obj("VirtualNode", "vn"), catalog)
    assert (found.name if found else None, reason) == ("demos", "")


def test_mesh_designation_zero_and_many() -> None:
    """No match and several matches are errors that say how many were found."""
    vn = obj("VirtualNode", "vn")
    catalog = Catalog(
        [obj("Namespace", "demos"), mesh("demos", {"matchLabels": {"mesh": "demos"}})]
    )
    assert admission.designate_mesh(vn, catalog) == (
        None,
        "failed to find matching mesh for namespace: demos, expecting 1 but found 0",
    )
    catalog.put(mesh("all", {}))
    catalog.put(mesh("also", {"matchExpressions": [{"key": "mesh", "operator": "DoesNotExist"}]}))
    assert admission.designate_mesh(vn, catalog) == (
        None,
        "found multiple matching meshes for namespace: demos, expecting 1 but found 2: all,also",
    )


def test_mesh_being_deleted_takes_no_new_members() -> None:
    """A matching mesh that is being deleted refuses new content."""
    doomed = mesh("demos", {}, uid="u")
    doomed.deleted_at = 5.0
    found = admission.designate_mesh(obj("VirtualNode", "vn"), Catalog([doomed]))
    assert found == (
        None,
        "unable to create new content in mesh demos because it is being terminated",
    )


def test_gateway_designation_uses_namespace_and_route_selectors() -> None:
    """A GatewayRoute joins the one VG selecting its namespace and its labels."""
    catalog = Catalog(
        [
            obj("Namespace", "demos", labels={"gateway": "gw"}),
            obj("VirtualGateway", "gw", {"namespaceSelector": {"matchLabels": {"gateway": "gw"}}}),
            obj(
                "VirtualGateway",
                "picky",
                {"namespaceSelector": {}, "gatewayRouteSelector": {"matchLabels": {"team": "x"}}},
            ),
            obj("VirtualGateway", "closed", {}),
        ]
    )
    route = obj("GatewayRoute", "gr")
    found, reason = admission.designate_gateway(route, catalog)
    assert (found.name if found else None, reason) == ("gw", "")
    route.labels = {"team": "x"}
    assert admission.designate_gateway(route, catalog) == (
        None,
        "found multiple matching virtualGateways for gatewayRoute: gr, expecting 1 but found 2: "
        "demos/gw,demos/picky",
    )
    catalog.remove(("VirtualGateway", "demos", "gw"))
    catalog.remove(("VirtualGateway", "demos", "picky"))
    assert admission.designate_gateway(route, catalog) == (
        None,
        "failed to find matching virtualGateway for gatewayRoute: gr, expecting 1 but found 0",
    )
