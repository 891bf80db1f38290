"""Checks of meshplane's extension tags (``meshplane.dev/…``) that need the store.

The format rules live in :mod:`meshplane.model.extensions`; here the mirror's target
must be an existing virtual node with the named port, as a weighted target must.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshplane.model import errors, extensions, validation
from meshplane.model.kinds import ResourceKey
from meshplane.model.references import listener_ports
from meshplane.store.protocols import ReadTransaction


def check(tx: ReadTransaction, key: ResourceKey, tags: Mapping[str, str]) -> None:
    """BadRequest or NotFound if the extension tags of the resource at ``key`` are wrong."""
    found = extensions.problems(key.kind, tags.items())
    if found:
        raise errors.BadRequestException(validation.summarize(found))
    mirror = extensions.mirror_of(tags)
    if mirror is None:
        return
    where = f"tags[{extensions.MIRROR}]"
    node = tx.get(ResourceKey("virtualNode", key.mesh, "", mirror.node))
    if node is None:
        raise errors.NotFoundException(
            f"{where}: VirtualNode with name {mirror.node} is not present under mesh "
            f"{key.mesh}; create it first"
        )
    ports = listener_ports(node.resource.spec)
    if mirror.port is not None and mirror.port not in ports:
        raise errors.BadRequestException(
            f"Invalid request: {where}: {mirror.port} is not a listener port of virtual node "
            f"{mirror.node}"
        )
    if mirror.port is None and len(ports) > 1:
        raise errors.BadRequestException(
            f"Invalid request: {where}: virtual node {mirror.node} has multiple listeners; "
            "name the port as <virtualNode>:<port>=<percent>"
        )
