"""The blue-green walkthrough's mesh as App Mesh API specs, and spec builders for tests.

Mesh ``demos`` (egress DROP_ALL), nodes ``vn-echo-backend-blue`` and ``-green``, router
``vr-echo-backend`` with route ``vrr-echo-backend`` weighting them 100/0, service
``vs-echo-backend.demos.svc.cluster.local`` provided by the router, and
``vn-echo-frontend-blue`` calling it.
"""

from __future__ import annotations

from typing import Any

MESH = "demos"
BLUE = "vn-echo-backend-blue"
GREEN = "vn-echo-backend-green"
FRONTEND = "vn-echo-frontend-blue"
ROUTER = "vr-echo-backend"
ROUTE = "vrr-echo-backend"
SERVICE = "vs-echo-backend.demos.svc.cluster.local"
SHORT_SERVICE = "vs-echo-backend"


def node_spec(hostname: str, *ports: int, backends: tuple[str, ...] = ()) -> dict[str, Any]:
    """A virtual node with an http listener per port, DNS discovery and VS backends."""
    spec: dict[str, Any] = {
        "listeners": [{"portMapping": {"port": p, "protocol": "http"}} for p in ports or (80,)],
        "serviceDiscovery": {"dns": {"hostname": hostname}},
    }
    if backends:
        spec["backends"] = [{"virtualService": {"virtualServiceName": b}} for b in backends]
    return spec


def router_spec(*ports: int) -> dict[str, Any]:
    """A virtual router with an http listener per port."""
    return {"listeners": [{"portMapping": {"port": p, "protocol": "http"}} for p in ports or (80,)]}


def route_spec(
    weights: dict[str, int], prefix: str = "/", port: int | None = None
) -> dict[str, Any]:
    """An http route on ``prefix`` weighting its target nodes."""
    match: dict[str, Any] = {"prefix": prefix}
    if port is not None:
        match["port"] = port
    targets = [{"virtualNode": node, "weight": weight} for node, weight in weights.items()]
    return {"httpRoute": {"match": match, "action": {"weightedTargets": targets}}}


def router_provider(router: str) -> dict[str, Any]:
    """A virtual service spec provided by a router."""
    return {"provider": {"virtualRouter": {"virtualRouterName": router}}}


def node_provider(node: str) -> dict[str, Any]:
    """A virtual service spec provided by a node."""
    return {"provider": {"virtualNode": {"virtualNodeName": node}}}


def gateway_spec(*ports: int) -> dict[str, Any]:
    """A virtual gateway with an http listener per port."""
    return {
        "listeners": [{"portMapping": {"port": p, "protocol": "http"}} for p in ports or (8080,)]
    }


def gateway_route_spec(service: str, prefix: str = "/") -> dict[str, Any]:
    """An http gateway route sending ``prefix`` to a virtual service."""
    return {
        "httpRoute": {
            "match": {"prefix": prefix},
            "action": {"target": {"virtualService": {"virtualServiceName": service}}},
        }
    }


def build(client: Any, mesh: str = MESH) -> dict[str, Any]:
    """Create the walkthrough's mesh through ``client``; returns each create's payload."""
    made: dict[str, Any] = {}
    made["mesh"] = client.create_mesh(meshName=mesh, spec={"egressFilter": {"type": "DROP_ALL"}})[
        "mesh"
    ]
    for node, host in ((BLUE, "echo-blue"), (GREEN, "echo-green")):
        made[node] = client.create_virtual_node(
            meshName=mesh, virtualNodeName=node, spec=node_spec(f"{host}.{mesh}.svc.cluster.local")
        )["virtualNode"]
    made[ROUTER] = client.create_virtual_router(
        meshName=mesh, virtualRouterName=ROUTER, spec=router_spec(80)
    )["virtualRouter"]
    made[ROUTE] = client.create_route(
        meshName=mesh,
        virtualRouterName=ROUTER,
        routeName=ROUTE,
        spec=route_spec({BLUE: 100, GREEN: 0}),
    )["route"]
    made[SERVICE] = client.create_virtual_service(
        meshName=mesh, virtualServiceName=SERVICE, spec=router_provider(ROUTER)
    )["virtualService"]
    made[FRONTEND] = client.create_virtual_node(
        meshName=mesh,
        virtualNodeName=FRONTEND,
        spec=node_spec(f"echo-frontend.{mesh}.svc.cluster.local", backends=(SERVICE,)),
    )["virtualNode"]
    return made


def shift(client: Any, weights: dict[str, int], mesh: str = MESH) -> dict[str, Any]:
    """Update the walkthrough's route to new weights; returns the route payload."""
    route: dict[str, Any] = client.update_route(
        meshName=mesh, virtualRouterName=ROUTER, routeName=ROUTE, spec=route_spec(weights)
    )["route"]
    return route
