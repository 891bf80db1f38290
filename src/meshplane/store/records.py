"""Rows of the store as values: a stored resource with its tags, a change-feed entry, an event."""

from __future__ import annotations

import dataclasses
import json

from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Endpoint, Resource


@dataclasses.dataclass(frozen=True)
class Tag:
    """One tag; App Mesh keeps one value per key."""

    key: str
    value: str


@dataclasses.dataclass(frozen=True)
class Record:
    """A stored resource, its tags and its creation order (used for pagination)."""

    resource: Resource
    tags: tuple[Tag, ...]
    seq: int

    @property
    def key(self) -> ResourceKey:
        """The resource's identity."""
        return self.resource.key


@dataclasses.dataclass(frozen=True)
class Change:
    """One committed write: the revision it created and the resource it touched."""

    revision: int
    key: ResourceKey
    op: str
    """``create``, ``update``, ``delete`` or ``endpoints``."""
    at: float


@dataclasses.dataclass(frozen=True)
class Event:
    """Something that happened to a manifest object, as ``describe`` lists it."""

    type: str
    """``Normal`` or ``Warning``."""
    reason: str
    message: str
    count: int
    first_at: float
    last_at: float


def endpoint_row(endpoint: Endpoint) -> tuple[int, str, int, str]:
    """An endpoint's columns after (mesh, virtual_node, source): attributes as a JSON object."""
    return (
        endpoint.listener_port,
        endpoint.address,
        endpoint.port,
        json.dumps(dict(endpoint.attributes), sort_keys=True, separators=(",", ":")),
    )


def endpoint_of(listener_port: int, address: str, port: int, attributes: str) -> Endpoint:
    """An endpoint read back from its columns (see :func:`endpoint_row`)."""
    return Endpoint(listener_port, address, port, tuple(sorted(json.loads(attributes).items())))
