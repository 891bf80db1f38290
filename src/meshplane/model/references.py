"""Which other resources a spec points at, and which of those pointers keep them alive.

App Mesh refuses a route whose target node is missing (NotFound) and refuses to
delete that node while the route exists (ResourceInUse). The same edges serve
both checks: the service verifies them on write and the store indexes them for
delete. A virtual node's *backends* are not such edges: App Mesh lets a backend
name a service that does not exist yet (``appmesh-api.md`` R13, R16).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from meshplane.model.kinds import ResourceKey
from meshplane.model.rules import GATEWAY_ROUTE_TYPES, ROUTE_TYPES


@dataclasses.dataclass(frozen=True)
class Reference:
    """One edge: the field that holds it and the resource it names."""

    field: str
    target: ResourceKey


def of(key: ResourceKey, spec: Mapping[str, Any]) -> list[Reference]:
    """The references that ``spec`` (of the resource at ``key``) requires to exist."""
    found: list[Reference] = []
    mesh = key.mesh
    if key.kind == "route":
        for kind in ROUTE_TYPES:
            targets = ((spec.get(kind) or {}).get("action") or {}).get("weightedTargets") or []
            for index, target in enumerate(targets):
                found.append(
                    Reference(
                        f"spec.{kind}.action.weightedTargets[{index}].virtualNode",
                        ResourceKey("virtualNode", mesh, "", target["virtualNode"]),
                    )
                )
    elif key.kind == "virtualService":
        provider = spec.get("provider") or {}
        if provider.get("virtualNode"):
            name = provider["virtualNode"]["virtualNodeName"]
            found.append(
                Reference(
                    "spec.provider.virtualNode.virtualNodeName",
                    ResourceKey("virtualNode", mesh, "", name),
                )
            )
        if provider.get("virtualRouter"):
            name = provider["virtualRouter"]["virtualRouterName"]
            found.append(
                Reference(
                    "spec.provider.virtualRouter.virtualRouterName",
                    ResourceKey("virtualRouter", mesh, "", name),
                )
            )
    elif key.kind == "gatewayRoute":
        for kind in GATEWAY_ROUTE_TYPES:
            target = ((spec.get(kind) or {}).get("action") or {}).get("target") or {}
            service = (target.get("virtualService") or {}).get("virtualServiceName")
            if service:
                found.append(
                    Reference(
                        f"spec.{kind}.action.target.virtualService.virtualServiceName",
                        ResourceKey("virtualService", mesh, "", service),
                    )
                )
    return found


def listener_ports(spec: Mapping[str, Any]) -> list[int]:
    """The ``portMapping.port`` of each listener of a node, router or gateway."""
    return [int(lst["portMapping"]["port"]) for lst in spec.get("listeners") or []]
