"""Golden cases: a mesh as App Mesh API JSON plus one sidecar, read from YAML.

A case file holds what ``aws appmesh describe-*`` shows (``meshName``,
``virtualNodeName``, ``spec``, …), the sidecar's identity and local facts, and
the endpoints registered for virtual nodes. Rendering turns the translator's
output into sorted, stable JSON for the golden files.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import yaml
from google.protobuf import json_format

from meshplane.model import extensions, kinds
from meshplane.model import specs_generated as g
from meshplane.model.snapshot import Endpoint, MeshSnapshot, Resource, Typed
from meshplane.translate import EnvoyResources, NodeIdentity

HERE = pathlib.Path(__file__).parent
CASES = HERE / "cases"
GOLDENS = HERE / "goldens"
ACCOUNT = "111122223333"
PARSERS: dict[str, Any] = {
    kinds.MESH.key: g.MeshSpec.from_wire,
    kinds.VIRTUAL_NODE.key: g.VirtualNodeSpec.from_wire,
    kinds.VIRTUAL_SERVICE.key: g.VirtualServiceSpec.from_wire,
    kinds.VIRTUAL_ROUTER.key: g.VirtualRouterSpec.from_wire,
    kinds.ROUTE.key: g.RouteSpec.from_wire,
    kinds.VIRTUAL_GATEWAY.key: g.VirtualGatewaySpec.from_wire,
    kinds.GATEWAY_ROUTE.key: g.GatewayRouteSpec.from_wire,
}
"""Kind → its spec parser, as the store's snapshot builder parses them."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One case: its name, description, snapshot and sidecar."""

    name: str
    description: str
    snapshot: MeshSnapshot
    node: NodeIdentity


def case_names() -> list[str]:
    """Every case file's stem, sorted."""
    return sorted(path.stem for path in CASES.glob("*.yaml"))


def load(name: str) -> Case:
    """Read ``cases/<name>.yaml`` into a snapshot and a node identity."""
    data = yaml.safe_load((CASES / f"{name}.yaml").read_text())
    return Case(name, data["description"], snapshot_of(data), node_of(data["node"], data))


def snapshot_of(data: dict[str, Any]) -> MeshSnapshot:
    """Build a snapshot from API-shaped dicts."""
    mesh_name = data["mesh"]["meshName"]

    def resource(kind: kinds.Kind, item: dict[str, Any], parent: str = "") -> Typed[Any]:
        name = item[kind.name_member]
        key = kinds.ResourceKey.of(kind, mesh_name, name, parent)
        raw = Resource(
            key=key,
            arn=kinds.arn("us-west-2", ACCOUNT, key),
            uid=f"uid-{name}",
            version=1,
            created_at=1_700_000_000.0,
            updated_at=1_700_000_000.0,
            spec=item.get("spec", {}),
            owner=ACCOUNT,
            extensions=extensions.of((t["key"], t["value"]) for t in item.get("tags", [])),
        )
        return Typed.of(raw, PARSERS[kind.key])

    def by_name(kind: kinds.Kind, key: str) -> dict[str, Typed[Any]]:
        return {r.name: r for r in (resource(kind, item) for item in data.get(key, []))}

    routes: dict[str, dict[str, Typed[Any]]] = {}
    for item in data.get("routes", []):
        router = item["virtualRouterName"]
        routes.setdefault(router, {})[item["routeName"]] = resource(kinds.ROUTE, item, router)
    gateway_routes: dict[str, dict[str, Typed[Any]]] = {}
    for item in data.get("gatewayRoutes", []):
        gateway = item["virtualGatewayName"]
        gateway_routes.setdefault(gateway, {})[item["gatewayRouteName"]] = resource(
            kinds.GATEWAY_ROUTE, item, gateway
        )
    endpoints = {
        node: tuple(
            Endpoint(
                e["listenerPort"],
                e["address"],
                e["port"],
                tuple(sorted((e.get("attributes") or {}).items())),
            )
            for e in registered or []
        )
        for node, registered in (data.get("endpoints") or {}).items()
    }
    return MeshSnapshot(
        revision=1,
        mesh=resource(kinds.MESH, data["mesh"]),
        virtual_nodes=by_name(kinds.VIRTUAL_NODE, "virtualNodes"),
        virtual_services=by_name(kinds.VIRTUAL_SERVICE, "virtualServices"),
        virtual_routers=by_name(kinds.VIRTUAL_ROUTER, "virtualRouters"),
        routes=routes,
        virtual_gateways=by_name(kinds.VIRTUAL_GATEWAY, "virtualGateways"),
        gateway_routes=gateway_routes,
        endpoints=endpoints,
    )


def node_of(node: dict[str, Any], data: dict[str, Any]) -> NodeIdentity:
    """The sidecar identity with its optional local facts."""
    extra: dict[str, Any] = {}
    if node.get("interception") == "iptables":  # as sync.identities reads node metadata
        extra["intercepted"] = True
        extra["bind_address"] = "0.0.0.0"
    if node.get("endpoints") == "registered":  # `up --isolation netns`: EDS only
        extra["registered_only"] = True
    if "bindAddress" in node:
        extra["bind_address"] = node["bindAddress"]
    if "egressPort" in node:
        extra["egress_port"] = node["egressPort"]
    if "ingressPorts" in node:
        extra["ingress_ports"] = {int(k): v for k, v in node["ingressPorts"].items()}
    if "appAddresses" in node:
        extra["app_addresses"] = {int(k): tuple(v) for k, v in node["appAddresses"].items()}
    if "tcpPorts" in node:
        extra["tcp_ports"] = dict(node["tcpPorts"])
    return NodeIdentity(
        mesh=node.get("mesh", data["mesh"]["meshName"]),
        kind=node["kind"],
        name=node["name"],
        **extra,
    )


def render(resources: EnvoyResources) -> str:
    """The translator's output as sorted, indented JSON (the golden file's text)."""

    def dicts(messages: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [json_format.MessageToDict(m) for m in messages]

    document = {
        "listeners": dicts(resources.listeners),
        "routeConfigurations": dicts(resources.route_configurations),
        "clusters": dicts(resources.clusters),
        "clusterLoadAssignments": dicts(resources.cluster_load_assignments),
        "warnings": [warning.message for warning in resources.warnings],
    }
    if resources.secrets:
        # Only TLS cases name secrets; the older goldens stay byte for byte as they were.
        document["secrets"] = [
            {"name": s.name, "kind": s.kind, "dnsNames": list(s.dns_names)}
            for s in resources.secrets
        ]
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
