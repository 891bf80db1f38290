"""The v1beta2 schema's ranges, lengths and enums agree with botocore's where both state one.

The manifest schema (:mod:`meshplane.manifests.crds`) follows the controller's
Go types and botocore's model is the API's; they are two statements of many
of the same limits (healthCheck.intervalMillis 5000-300000, weight 0-100, …).
This walks both trees side by side, by member name, and pins the places where
the v1beta2 types are looser than the API: a manifest breaking one of those is
refused by the API's check of its converted spec instead (``planning``).
"""

from __future__ import annotations

from typing import Any

from meshplane.manifests import crds
from meshplane.manifests.schema import ListOf, Node, Scalar, Struct
from meshplane.model import apimodel

# Looser in v1beta2 than in the API (the CRD states no bound, or a wider one).
KNOWN = (
    {
        f"{kind}.{where}"
        for kind in ("VirtualNode", "VirtualGateway")
        for where in (
            "logging.accessLog.file.format.json[].key",
            "logging.accessLog.file.format.json[].value",
            "logging.accessLog.file.format.text",
            "listeners[].tls.validation.subjectAlternativeNames.match.exact[]",
            "backendDefaults.clientPolicy.tls.validation.subjectAlternativeNames.match.exact[]",
        )
    }
    | {
        "VirtualNode.backends[].virtualService.clientPolicy.tls.validation."
        "subjectAlternativeNames.match.exact[]",
        "VirtualRouter.listeners",  # the CRD wants at least one listener; the API does not
    }
    | {
        f"{kind}.{route}.{where}"
        for kind, routes, wheres in (
            ("GatewayRoute", ("grpcRoute", "httpRoute", "http2Route"), ("match.port",)),
            ("GatewayRoute", ("grpcRoute", "httpRoute", "http2Route"), ("action.target.port",)),
            (
                "Route",
                ("grpcRoute", "httpRoute", "http2Route", "tcpRoute"),
                ("match.port", "action.weightedTargets[].port"),
            ),
        )
        for route in routes
        for where in wheres
    }
    | {
        f"Route.{route}.retryPolicy.httpRetryEvents[]"  # the API leaves events open (1-25 chars)
        for route in ("grpcRoute", "httpRoute", "http2Route")
    }
)

SPECS = (
    ("Mesh", "MeshSpec"),
    ("VirtualNode", "VirtualNodeSpec"),
    ("VirtualService", "VirtualServiceSpec"),
    ("VirtualRouter", "VirtualRouterSpec"),
    ("VirtualGateway", "VirtualGatewaySpec"),
    ("GatewayRoute", "GatewayRouteSpec"),
)


def _walk(node: Node, shape: Any, path: str, agree: list[str], differ: set[str]) -> None:
    limits = (shape.metadata.get("min"), shape.metadata.get("max"))
    if isinstance(node, Struct) and shape.type_name == "structure":
        for name, child in node.fields.items():
            if name in shape.members:
                _walk(child, shape.members[name], f"{path}.{name}", agree, differ)
    elif isinstance(node, ListOf) and shape.type_name == "list":
        if (node.low, node.high) == limits:
            agree.append(path)
        else:
            differ.add(path)
        _walk(node.item, shape.member, f"{path}[]", agree, differ)
    elif isinstance(node, Scalar) and node.type in {"integer", "string"}:
        same = (node.low, node.high) == limits
        same = same and (not node.enum or set(node.enum) == set(shape.enum or []))
        if same:
            agree.append(path)
        else:
            differ.add(path)


def test_manifest_limits_agree_with_the_api_model() -> None:
    """Every bound both state agrees, except the pinned places where v1beta2 is looser."""
    agree: list[str] = []
    differ: set[str] = set()
    for kind, shape in SPECS:
        _walk(crds.BY_KIND[kind].spec, apimodel.shape(shape), kind, agree, differ)
    routes = crds.BY_KIND["VirtualRouter"].spec
    assert isinstance(routes, Struct)
    route = routes.fields["routes"]
    assert isinstance(route, ListOf)
    _walk(route.item, apimodel.shape("RouteSpec"), "Route", agree, differ)
    assert differ == KNOWN
    assert len(agree) == 242
    assert "VirtualNode.listeners[].healthCheck.intervalMillis" in agree
