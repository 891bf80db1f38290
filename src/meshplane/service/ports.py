"""Port rules of multiple listeners (``appmesh-api.md`` R10), which need other resources.

Since 2022 a node, router or gateway may have several listeners; then a route must
say which router port it matches, a weighted target which node port it sends to,
and a gateway route which gateway port it serves. Ports that are named must exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshplane.model import errors, validation
from meshplane.model.kinds import ResourceKey
from meshplane.model.references import listener_ports
from meshplane.model.rules import GATEWAY_ROUTE_TYPES, ROUTE_TYPES
from meshplane.store.sqlite import Transaction


def _ports_of(tx: Transaction, key: ResourceKey) -> list[int]:
    record = tx.get(key)
    return listener_ports(record.resource.spec) if record else []


def check(tx: Transaction, key: ResourceKey, spec: Mapping[str, Any]) -> None:
    """BadRequest if a route, gateway route or router breaks a multiple-listener rule."""
    found: list[str] = []
    if key.kind == "route":
        router_ports = _ports_of(tx, ResourceKey("virtualRouter", key.mesh, "", key.parent))
        for kind in (k for k in ROUTE_TYPES if spec.get(k)):
            body = spec[kind]
            port = (body.get("match") or {}).get("port")
            if port is None and len(router_ports) > 1:
                found.append(
                    f"spec.{kind}.match.port: Route must define a port match criteria if the "
                    "Virtual Router has multiple listeners"
                )
            elif port is not None and router_ports and port not in router_ports:
                found.append(
                    f"spec.{kind}.match.port: {port} is not a listener port of virtual router "
                    f"{key.parent} ({', '.join(map(str, router_ports))})"
                )
            targets = (body.get("action") or {}).get("weightedTargets") or []
            for index, target in enumerate(targets):
                node = ResourceKey("virtualNode", key.mesh, "", target["virtualNode"])
                node_ports = _ports_of(tx, node)
                where = f"spec.{kind}.action.weightedTargets[{index}].port"
                if target.get("port") is None and len(node_ports) > 1:
                    found.append(
                        f"{where}: virtual node {node.name} has multiple listeners; the "
                        "target must name a port"
                    )
                elif target.get("port") is not None and target["port"] not in node_ports:
                    found.append(
                        f"{where}: {target['port']} is not a listener port of virtual node "
                        f"{node.name}"
                    )
    elif key.kind == "gatewayRoute":
        gateway_ports = _ports_of(tx, ResourceKey("virtualGateway", key.mesh, "", key.parent))
        for kind in (k for k in GATEWAY_ROUTE_TYPES if spec.get(k)):
            port = (spec[kind].get("match") or {}).get("port")
            if port is None and len(gateway_ports) > 1:
                found.append(
                    f"spec.{kind}.match.port: Gateway route must define a port match criteria "
                    "if the Virtual Gateway has multiple listeners"
                )
            elif port is not None and gateway_ports and port not in gateway_ports:
                found.append(
                    f"spec.{kind}.match.port: {port} is not a listener port of virtual "
                    f"gateway {key.parent}"
                )
    elif key.kind == "virtualRouter" and len(listener_ports(spec)) > 1:
        for route in tx.list_records("route", key.mesh, key.name):
            for kind in (k for k in ROUTE_TYPES if route.resource.spec.get(k)):
                if (route.resource.spec[kind].get("match") or {}).get("port") is None:
                    found.append(
                        f"spec.listeners: route {route.key.name} has no match.port, so the "
                        "router cannot have multiple listeners; give its routes a port first"
                    )
    if found:
        raise errors.BadRequestException(validation.summarize(found))
