"""Regexes every Envoy would NACK are refused at write time; RE2-only syntax is accepted."""

from __future__ import annotations

from typing import Any

import walkthrough as wt

BAD = ("BadRequestException", 400)


def test_route_header_and_path_regexes_re2_cannot_compile_are_refused(
    client: Any, rejected: Any, mesh: str
) -> None:
    """A broken header regex and a broken path regex are each named, with the reason."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    spec = wt.route_spec({"a": 1})
    spec["httpRoute"]["match"] = {
        "path": {"regex": "/v[0-9+"},
        "headers": [{"name": "x-user", "match": {"regex": "(admin|ops"}}],
    }
    error = rejected(
        lambda: client.create_route(
            meshName=mesh, virtualRouterName="vr", routeName="rt", spec=spec
        ),
        *BAD,
    )
    assert error.response["Error"]["Message"] == (
        "2 validation errors: "
        "spec.httpRoute.match.path.regex: '/v[0-9+' is not a valid regular expression: "
        "the '[' at position 2 is never closed; "
        "spec.httpRoute.match.headers[0].match.regex: '(admin|ops' is not a valid regular "
        "expression: the '(' at position 0 is never closed"
    )


def test_grpc_metadata_regex_is_checked(client: Any, rejected: Any, mesh: str) -> None:
    """gRPC metadata regexes follow the same rule."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    spec = {
        "grpcRoute": {
            "match": {"serviceName": "svc", "metadata": [{"name": "k", "match": {"regex": "a**"}}]},
            "action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]},
        }
    }
    rejected(
        lambda: client.create_route(
            meshName=mesh, virtualRouterName="vr", routeName="rt", spec=spec
        ),
        *BAD,
        "Invalid request: spec.grpcRoute.match.metadata[0].match.regex: 'a**' is not a valid "
        "regular expression: the repetition at position 2 repeats a repetition",
    )


def test_gateway_route_regex_is_checked_on_update(client: Any, rejected: Any, mesh: str) -> None:
    """Updating a gateway route to a broken path regex is refused and keeps version 1."""
    client.create_virtual_service(meshName=mesh, virtualServiceName="s", spec={})
    client.create_virtual_gateway(meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec())
    client.create_gateway_route(
        meshName=mesh,
        virtualGatewayName="gw",
        gatewayRouteName="gr",
        spec=wt.gateway_route_spec("s"),
    )
    spec = wt.gateway_route_spec("s")
    spec["httpRoute"]["match"] = {"path": {"regex": "/items/(?P<id>[0-9]+"}}
    rejected(
        lambda: client.update_gateway_route(
            meshName=mesh, virtualGatewayName="gw", gatewayRouteName="gr", spec=spec
        ),
        *BAD,
        "Invalid request: spec.httpRoute.match.path.regex: '/items/(?P<id>[0-9]+' is not a "
        "valid regular expression: the '(' at position 7 is never closed",
    )
    described = client.describe_gateway_route(
        meshName=mesh, virtualGatewayName="gw", gatewayRouteName="gr"
    )["gatewayRoute"]
    assert described["metadata"]["version"] == 1


def test_re2_only_syntax_is_accepted(client: Any, mesh: str) -> None:
    """Patterns Python's re rejects but RE2 compiles (\\pL, (?<name>), [[:digit:]]) are stored."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    match = {
        "path": {"regex": "/(?<lang>\\pL+)/[[:digit:]]+"},
        "headers": [{"name": "x", "match": {"regex": "a(?i)b"}}],
    }
    spec = wt.route_spec({"a": 1})
    spec["httpRoute"]["match"] = match
    made = client.create_route(meshName=mesh, virtualRouterName="vr", routeName="rt", spec=spec)
    assert made["route"]["spec"]["httpRoute"]["match"] == match
