"""How stored resources look on the wire: ``XxxData`` for one resource, ``XxxRef`` in lists.

Field presence follows App Mesh: the spec is echoed exactly as stored, no defaults
are invented, timestamps are epoch seconds with a millisecond fraction.
"""

from __future__ import annotations

from typing import Any

from meshplane.model import kinds
from meshplane.model.snapshot import Resource


def _names(resource: Resource) -> dict[str, str]:
    kind = kinds.BY_KEY[resource.key.kind]
    found = {"meshName": resource.key.mesh}
    if kind.parent_member:
        found[kind.parent_member] = resource.key.parent
    if not kind.is_mesh:
        found[kind.name_member] = resource.key.name
    return found


def data(resource: Resource, status: str = "ACTIVE") -> dict[str, Any]:
    """The ``XxxData`` object of one resource."""
    return {
        **_names(resource),
        "metadata": {
            "arn": resource.arn,
            "createdAt": resource.created_at,
            "lastUpdatedAt": resource.updated_at,
            "meshOwner": resource.owner,
            "resourceOwner": resource.owner,
            "uid": resource.uid,
            "version": resource.version,
        },
        "spec": dict(resource.spec),
        "status": {"status": status},
    }


def ref(resource: Resource) -> dict[str, Any]:
    """The ``XxxRef`` list item of one resource: no uid, spec or status."""
    return {
        **_names(resource),
        "arn": resource.arn,
        "createdAt": resource.created_at,
        "lastUpdatedAt": resource.updated_at,
        "meshOwner": resource.owner,
        "resourceOwner": resource.owner,
        "version": resource.version,
    }
