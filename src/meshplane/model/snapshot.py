"""Immutable views of stored resources: what the sync stage hands to the translator.

A :class:`MeshSnapshot` is everything one mesh holds at one store revision, plus
the endpoints registered for its virtual nodes. It is a plain value: no store
handle, no clock, so :mod:`meshplane.translate` stays a pure function of it.
:class:`Resource` specs are the App Mesh API's JSON (camelCase, exactly as the
API echoes them); a snapshot holds each resource as :class:`Typed`, its spec
parsed once into the classes generated from botocore's model
(:mod:`meshplane.model.specs_generated`), so translation reads attributes, not
``.get()`` chains, and a spec is parsed once per change, not once per proxy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from meshplane.model.kinds import ResourceKey
from meshplane.model.specs_generated import (
    GatewayRouteSpec,
    MeshSpec,
    RouteSpec,
    VirtualGatewaySpec,
    VirtualNodeSpec,
    VirtualRouterSpec,
    VirtualServiceSpec,
)

S = TypeVar("S")


@dataclasses.dataclass(frozen=True)
class Resource:
    """One stored App Mesh resource with its metadata."""

    key: ResourceKey
    arn: str
    uid: str
    version: int
    created_at: float
    updated_at: float
    spec: Mapping[str, Any]
    owner: str
    """12-digit account id (meshOwner and resourceOwner are the same in one account)."""
    extensions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Its ``meshplane.dev/`` tags (see :mod:`meshplane.model.extensions`): data-plane input."""

    @property
    def name(self) -> str:
        """The resource's own name."""
        return self.key.name


@dataclasses.dataclass(frozen=True)
class Typed(Generic[S]):
    """A stored resource with its spec parsed into its generated class (``S``)."""

    resource: Resource
    spec: S

    @classmethod
    def of(cls, resource: Resource, parse: Callable[[object, str], S]) -> Typed[S]:
        """Parse ``resource.spec`` (raises :class:`~meshplane.model.wirevalues.SpecError`)."""
        return cls(resource, parse(resource.spec, "spec"))

    @property
    def key(self) -> ResourceKey:
        """The resource's key."""
        return self.resource.key

    @property
    def name(self) -> str:
        """The resource's own name."""
        return self.resource.key.name

    @property
    def extensions(self) -> Mapping[str, str]:
        """Its ``meshplane.dev/`` tags."""
        return self.resource.extensions


@dataclasses.dataclass(frozen=True, order=True)
class Endpoint:
    """Where one replica of a virtual node receives mesh traffic for one of its listeners.

    ``listener_port`` is the virtual node listener's ``portMapping.port``;
    ``address:port`` is where a caller's Envoy should send that traffic (on
    Kubernetes the pod IP and the listener port; locally the replica's sidecar).
    """

    listener_port: int
    address: str
    port: int
    attributes: tuple[tuple[str, str], ...] = ()
    """The instance's attributes, sorted by key (App Mesh's Cloud Map instance attributes:
    the workload's or pod's labels); a Cloud Map node's callers get only the instances of
    its service whose attributes match all of the node's (:mod:`meshplane.translate.cloudmap`)."""

    @property
    def attribute_map(self) -> dict[str, str]:
        """The attributes as a dict."""
        return dict(self.attributes)


def attributes_of(values: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Attributes in :class:`Endpoint`'s canonical form (sorted pairs)."""
    return tuple(sorted(values.items()))


@dataclasses.dataclass(frozen=True)
class MeshSnapshot:
    """One mesh at one store revision."""

    revision: int
    mesh: Typed[MeshSpec]
    virtual_nodes: Mapping[str, Typed[VirtualNodeSpec]]
    virtual_services: Mapping[str, Typed[VirtualServiceSpec]]
    virtual_routers: Mapping[str, Typed[VirtualRouterSpec]]
    routes: Mapping[str, Mapping[str, Typed[RouteSpec]]]
    """Router name → route name → route."""
    virtual_gateways: Mapping[str, Typed[VirtualGatewaySpec]]
    gateway_routes: Mapping[str, Mapping[str, Typed[GatewayRouteSpec]]]
    """Gateway name → gateway route name → gateway route."""
    endpoints: Mapping[str, tuple[Endpoint, ...]] = dataclasses.field(default_factory=dict)
    """Virtual node name → its registered endpoints."""

    @property
    def name(self) -> str:
        """The mesh's name."""
        return self.mesh.name
