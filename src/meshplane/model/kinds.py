"""The seven App Mesh resource kinds, their identities and their ARNs.

A :class:`Kind` carries everything generic code needs to treat meshes, nodes,
routers, routes, services, gateways and gateway routes alike: member names in the
API, where the resource lives (a mesh, a router, a gateway), and its ARN segment.
"""

from __future__ import annotations

import dataclasses
import enum


@dataclasses.dataclass(frozen=True)
class Kind:
    """One App Mesh resource kind."""

    key: str
    """camelCase name as in ARNs and API members: ``virtualNode``."""
    title: str
    """PascalCase name as in operation names: ``VirtualNode``."""
    list_key: str
    """The list operation's result member: ``virtualNodes``."""
    parent: str | None = None
    """Key of the kind this one lives under inside a mesh (routes → virtualRouter)."""

    @property
    def name_member(self) -> str:
        """The API member that names a resource of this kind: ``virtualNodeName``."""
        return f"{self.key}Name"

    @property
    def parent_member(self) -> str | None:
        """The API member naming the parent: ``virtualRouterName`` for routes."""
        return f"{self.parent}Name" if self.parent else None

    @property
    def is_mesh(self) -> bool:
        """Meshes are the only kind not scoped by a mesh."""
        return self.key == "mesh"


class Kinds(enum.Enum):
    """The closed set of kinds, in dependency order (parents before children)."""

    MESH = Kind("mesh", "Mesh", "meshes")
    VIRTUAL_NODE = Kind("virtualNode", "VirtualNode", "virtualNodes")
    VIRTUAL_SERVICE = Kind("virtualService", "VirtualService", "virtualServices")
    VIRTUAL_ROUTER = Kind("virtualRouter", "VirtualRouter", "virtualRouters")
    ROUTE = Kind("route", "Route", "routes", parent="virtualRouter")
    VIRTUAL_GATEWAY = Kind("virtualGateway", "VirtualGateway", "virtualGateways")
    GATEWAY_ROUTE = Kind("gatewayRoute", "GatewayRoute", "gatewayRoutes", parent="virtualGateway")


MESH = Kinds.MESH.value
VIRTUAL_NODE = Kinds.VIRTUAL_NODE.value
VIRTUAL_SERVICE = Kinds.VIRTUAL_SERVICE.value
VIRTUAL_ROUTER = Kinds.VIRTUAL_ROUTER.value
ROUTE = Kinds.ROUTE.value
VIRTUAL_GATEWAY = Kinds.VIRTUAL_GATEWAY.value
GATEWAY_ROUTE = Kinds.GATEWAY_ROUTE.value

ALL: tuple[Kind, ...] = tuple(k.value for k in Kinds)
BY_KEY: dict[str, Kind] = {k.key: k for k in ALL}
BY_TITLE: dict[str, Kind] = {k.title: k for k in ALL}


@dataclasses.dataclass(frozen=True, order=True)
class ResourceKey:
    """Where a resource lives: kind, mesh, parent (router/gateway name or ``""``), name."""

    kind: str
    mesh: str
    parent: str
    name: str

    @classmethod
    def of(cls, kind: Kind, mesh: str, name: str, parent: str = "") -> ResourceKey:
        """Build a key; for meshes ``mesh`` and ``name`` are the same."""
        return cls(kind.key, mesh, parent, name)

    def describe(self) -> str:
        """Human words for messages: ``VirtualNode vn-a in mesh demos``."""
        kind = BY_KEY[self.kind]
        if kind.is_mesh:
            return f"Mesh {self.name}"
        where = f"mesh {self.mesh}"
        if kind.parent:
            where = f"{BY_KEY[kind.parent].title} {self.parent} in {where}"
        return f"{kind.title} {self.name} in {where}"


def path(key: ResourceKey) -> str:
    """The resource part of its ARN (``mesh/demos/virtualRouter/vr/route/r``); node ids use it."""
    kind = BY_KEY[key.kind]
    found = f"mesh/{key.mesh}"
    if kind.parent:
        found += f"/{kind.parent}/{key.parent}/{kind.key}/{key.name}"
    elif not kind.is_mesh:
        found += f"/{kind.key}/{key.name}"
    return found


def arn(region: str, account: str, key: ResourceKey) -> str:
    """The App Mesh ARN of a resource (``appmesh-api.md`` §6.4)."""
    return f"arn:aws:appmesh:{region}:{account}:{path(key)}"


def parse_arn(value: str) -> tuple[str, str, ResourceKey] | None:
    """Split an App Mesh ARN into (region, account, key); ``None`` if it is not one."""
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "appmesh"]:
        return None
    region, account, path = parts[3], parts[4], parts[5]
    segments = path.split("/")
    if len(segments) < 2 or segments[0] != "mesh" or not segments[1]:
        return None
    mesh = segments[1]
    if len(segments) == 2:
        return region, account, ResourceKey(MESH.key, mesh, "", mesh)
    kind = BY_KEY.get(segments[2])
    if kind is None or kind.is_mesh or kind.parent is not None or len(segments) < 4:
        return None
    if kind is VIRTUAL_SERVICE:
        # Service names are DNS names but the model puts no pattern on them: keep the rest.
        return region, account, ResourceKey(kind.key, mesh, "", "/".join(segments[3:]))
    if len(segments) == 4:
        return region, account, ResourceKey(kind.key, mesh, "", segments[3])
    child = BY_KEY.get(segments[4])
    if len(segments) != 6 or child is None or child.parent != kind.key:
        return None
    return region, account, ResourceKey(child.key, mesh, segments[3], segments[5])
