"""Multiple-listener rules from the other side (R10): writes to what routes depend on.

A route, weighted target, gateway route or gateway-route target that names no
port is only valid while the listener it relies on is the only one; a port it
names must stay a listener port. So adding a listener, removing a named port, or
switching a virtual service to a provider with other ports is refused (a 400
naming each dependent that would break), and the store is left unchanged.
"""

from __future__ import annotations

from typing import Any

import walkthrough as wt

BAD = ("BadRequestException", 400)


def _target_port(spec: dict[str, Any], port: int) -> dict[str, Any]:
    spec["httpRoute"]["action"]["weightedTargets"][0]["port"] = port
    return spec


def _gateway_route(
    service: str, *, match_port: int | None = None, target_port: int | None = None
) -> dict[str, Any]:
    spec = wt.gateway_route_spec(service)
    if match_port is not None:
        spec["httpRoute"]["match"]["port"] = match_port
    if target_port is not None:
        spec["httpRoute"]["action"]["target"]["port"] = target_port
    return spec


def _version(client: Any, call: str, **names: str) -> int:
    data = getattr(client, call)(**names)
    return int(
        next(iter(v for k, v in data.items() if k != "ResponseMetadata"))["metadata"]["version"]
    )


# -- virtual nodes -------------------------------------------------------------------------


def test_node_cannot_gain_listener_while_routes_target_it_without_port(
    client: Any, rejected: Any, mesh: str
) -> None:
    """A second node listener is a 400 naming every route whose target has no port."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    for name, prefix in (("rt1", "/one"), ("rt2", "/two")):
        client.create_route(
            meshName=mesh,
            virtualRouterName="vr",
            routeName=name,
            spec=wt.route_spec({"a": 1}, prefix=prefix),
        )
    error = rejected(
        lambda: client.update_virtual_node(
            meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a", 80, 81)
        ),
        *BAD,
    )
    assert error.response["Error"]["Message"] == (
        "2 validation errors: "
        "spec.listeners: route vr/rt1 would no longer be valid "
        "(spec.httpRoute.action.weightedTargets[0].port: virtual node a has multiple listeners; "
        "the target must name a port); update or delete it first; "
        "spec.listeners: route vr/rt2 would no longer be valid "
        "(spec.httpRoute.action.weightedTargets[0].port: virtual node a has multiple listeners; "
        "the target must name a port); update or delete it first"
    )
    assert _version(client, "describe_virtual_node", meshName=mesh, virtualNodeName="a") == 1
    for name, prefix in (("rt1", "/one"), ("rt2", "/two")):
        client.update_route(
            meshName=mesh,
            virtualRouterName="vr",
            routeName=name,
            spec=_target_port(wt.route_spec({"a": 1}, prefix=prefix), 80),
        )
    updated = client.update_virtual_node(
        meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a", 80, 81)
    )
    assert updated["virtualNode"]["metadata"]["version"] == 2


def test_node_cannot_drop_a_port_a_target_names(client: Any, rejected: Any, mesh: str) -> None:
    """Removing the node listener a weighted target's port names is a 400 naming the route."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a", 80, 81))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    client.create_route(
        meshName=mesh,
        virtualRouterName="vr",
        routeName="rt",
        spec=_target_port(wt.route_spec({"a": 1}), 81),
    )
    rejected(
        lambda: client.update_virtual_node(
            meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a", 80)
        ),
        *BAD,
        "Invalid request: spec.listeners: route vr/rt would no longer be valid "
        "(spec.httpRoute.action.weightedTargets[0].port: 81 is not a listener port of virtual "
        "node a); update or delete it first",
    )
    kept = client.update_virtual_node(
        meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a", 81)
    )
    assert kept["virtualNode"]["metadata"]["version"] == 2


def test_unchanged_ports_skip_the_dependents(client: Any, mesh: str) -> None:
    """Updating a node without touching its ports does not re-judge the routes at it."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    client.create_route(
        meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"a": 1})
    )
    updated = client.update_virtual_node(
        meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a-new.local", backends=("s",))
    )
    assert updated["virtualNode"]["metadata"]["version"] == 2


# -- virtual routers -----------------------------------------------------------------------


def test_router_cannot_drop_a_port_routes_match(client: Any, rejected: Any, mesh: str) -> None:
    """Removing the router listener a route's match.port names is a 400 naming the route."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec(80, 81))
    for name, port in (("on80", 80), ("on81", 81)):
        client.create_route(
            meshName=mesh,
            virtualRouterName="vr",
            routeName=name,
            spec=wt.route_spec({"a": 1}, port=port),
        )
    rejected(
        lambda: client.update_virtual_router(
            meshName=mesh, virtualRouterName="vr", spec=wt.router_spec(80, 82)
        ),
        *BAD,
        "Invalid request: spec.listeners: route vr/on81 would no longer be valid "
        "(spec.httpRoute.match.port: 81 is not a listener port of virtual router vr (80, 82)); "
        "update or delete it first",
    )
    assert _version(client, "describe_virtual_router", meshName=mesh, virtualRouterName="vr") == 1
    client.delete_route(meshName=mesh, virtualRouterName="vr", routeName="on81")
    updated = client.update_virtual_router(
        meshName=mesh, virtualRouterName="vr", spec=wt.router_spec(80, 82)
    )
    assert updated["virtualRouter"]["metadata"]["version"] == 2


# -- virtual gateways ----------------------------------------------------------------------


def test_gateway_cannot_gain_listener_while_gateway_routes_lack_port(
    client: Any, rejected: Any, mesh: str
) -> None:
    """A second gateway listener is a 400 naming each gateway route without match.port."""
    client.create_virtual_service(meshName=mesh, virtualServiceName="s", spec={})
    client.create_virtual_gateway(meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec())
    client.create_gateway_route(
        meshName=mesh, virtualGatewayName="gw", gatewayRouteName="gr", spec=_gateway_route("s")
    )
    rejected(
        lambda: client.update_virtual_gateway(
            meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec(8080, 8081)
        ),
        *BAD,
        "Invalid request: spec.listeners: gateway route gw/gr would no longer be valid "
        "(spec.httpRoute.match.port: Gateway route must define a port match criteria if the "
        "Virtual Gateway has multiple listeners); update or delete it first",
    )
    assert _version(client, "describe_virtual_gateway", meshName=mesh, virtualGatewayName="gw") == 1
    client.update_gateway_route(
        meshName=mesh,
        virtualGatewayName="gw",
        gatewayRouteName="gr",
        spec=_gateway_route("s", match_port=8080),
    )
    updated = client.update_virtual_gateway(
        meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec(8080, 8081)
    )
    assert updated["virtualGateway"]["metadata"]["version"] == 2
    rejected(
        lambda: client.update_virtual_gateway(
            meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec(8081)
        ),
        *BAD,
        "Invalid request: spec.listeners: gateway route gw/gr would no longer be valid "
        "(spec.httpRoute.match.port: 8080 is not a listener port of virtual gateway gw (8081)); "
        "update or delete it first",
    )


# -- gateway route targets -----------------------------------------------------------------


def test_gateway_route_target_port_follows_node_provider(
    client: Any, rejected: Any, mesh: str
) -> None:
    """target.port is required for a two-listener node provider and must be one of its ports."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a", 80, 81))
    client.create_virtual_service(meshName=mesh, virtualServiceName="s", spec=wt.node_provider("a"))
    client.create_virtual_gateway(meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec())

    def create(spec: dict[str, Any]) -> Any:
        return lambda: client.create_gateway_route(
            meshName=mesh, virtualGatewayName="gw", gatewayRouteName="gr", spec=spec
        )

    rejected(
        create(_gateway_route("s")),
        *BAD,
        "Invalid request: spec.httpRoute.action.target.port: virtual service s is provided by "
        "virtual node a, which has multiple listeners; the target must name a port",
    )
    rejected(
        create(_gateway_route("s", target_port=82)),
        *BAD,
        "Invalid request: spec.httpRoute.action.target.port: 82 is not a listener port of "
        "virtual node a, the provider of virtual service s (80, 81)",
    )
    made = create(_gateway_route("s", target_port=81))()
    assert made["gatewayRoute"]["spec"]["httpRoute"]["action"]["target"] == {
        "port": 81,
        "virtualService": {"virtualServiceName": "s"},
    }


def test_gateway_route_target_port_follows_router_provider(
    client: Any, rejected: Any, mesh: str
) -> None:
    """A two-listener router provider needs target.port too; one listener needs none."""
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec(80, 81))
    client.create_virtual_router(meshName=mesh, virtualRouterName="one", spec=wt.router_spec())
    client.create_virtual_service(
        meshName=mesh, virtualServiceName="s", spec=wt.router_provider("vr")
    )
    client.create_virtual_service(
        meshName=mesh, virtualServiceName="t", spec=wt.router_provider("one")
    )
    client.create_virtual_gateway(meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec())
    rejected(
        lambda: client.create_gateway_route(
            meshName=mesh, virtualGatewayName="gw", gatewayRouteName="gr", spec=_gateway_route("s")
        ),
        *BAD,
        "Invalid request: spec.httpRoute.action.target.port: virtual service s is provided by "
        "virtual router vr, which has multiple listeners; the target must name a port",
    )
    made = client.create_gateway_route(
        meshName=mesh, virtualGatewayName="gw", gatewayRouteName="gr", spec=_gateway_route("t")
    )
    assert made["gatewayRoute"]["metadata"]["version"] == 1


def test_provider_ports_are_checked_against_gateway_route_targets(
    client: Any, rejected: Any, mesh: str
) -> None:
    """A provider switch or a provider's port change that breaks a gateway route target is a 400."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_node(meshName=mesh, virtualNodeName="b", spec=wt.node_spec("b", 80, 81))
    client.create_virtual_service(meshName=mesh, virtualServiceName="s", spec={})
    client.create_virtual_gateway(meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec())
    client.create_gateway_route(
        meshName=mesh, virtualGatewayName="gw", gatewayRouteName="gr", spec=_gateway_route("s")
    )
    rejected(
        lambda: client.update_virtual_service(
            meshName=mesh, virtualServiceName="s", spec=wt.node_provider("b")
        ),
        *BAD,
        "Invalid request: spec.provider: gateway route gw/gr would no longer be valid "
        "(spec.httpRoute.action.target.port: virtual service s is provided by virtual node b, "
        "which has multiple listeners; the target must name a port); update or delete it first",
    )
    client.update_virtual_service(meshName=mesh, virtualServiceName="s", spec=wt.node_provider("a"))
    client.update_gateway_route(
        meshName=mesh,
        virtualGatewayName="gw",
        gatewayRouteName="gr",
        spec=_gateway_route("s", target_port=80),
    )
    rejected(
        lambda: client.update_virtual_node(
            meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a", 8000)
        ),
        *BAD,
        "Invalid request: spec.listeners: gateway route gw/gr would no longer be valid "
        "(spec.httpRoute.action.target.port: 80 is not a listener port of virtual node a, the "
        "provider of virtual service s (8000)); update or delete it first",
    )
    assert _version(client, "describe_virtual_service", meshName=mesh, virtualServiceName="s") == 2
    assert _version(client, "describe_virtual_node", meshName=mesh, virtualNodeName="a") == 1
