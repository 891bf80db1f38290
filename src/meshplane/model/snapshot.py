"""Immutable views of stored resources: what the sync stage hands to the translator.

A :class:`MeshSnapshot` is everything one mesh holds at one store revision, plus
the endpoints registered for its virtual nodes. It is a plain value: no store
handle, no clock, so :mod:`meshplane.translate` stays a pure function of it.
Specs are the App Mesh API's JSON (camelCase, exactly as the API echoes them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from meshplane.model.kinds import ResourceKey


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


@dataclasses.dataclass(frozen=True)
class MeshSnapshot:
    """One mesh at one store revision."""

    revision: int
    mesh: Resource
    virtual_nodes: Mapping[str, Resource]
    virtual_services: Mapping[str, Resource]
    virtual_routers: Mapping[str, Resource]
    routes: Mapping[str, Mapping[str, Resource]]
    """Router name → route name → route."""
    virtual_gateways: Mapping[str, Resource]
    gateway_routes: Mapping[str, Mapping[str, Resource]]
    """Gateway name → gateway route name → gateway route."""
    endpoints: Mapping[str, tuple[Endpoint, ...]] = dataclasses.field(default_factory=dict)
    """Virtual node name → its registered endpoints."""

    @property
    def name(self) -> str:
        """The mesh's name."""
        return self.mesh.name
