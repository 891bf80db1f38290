"""Names that tie the two front doors and the data plane together: awsName defaults, node ids.

* **awsName** — the App Mesh name a v1beta2 object twins. The controller's
  mutating webhook defaulted it on create: the object's own name for a Mesh,
  ``<name>.<namespace>`` for a VirtualService (a DNS name), and
  ``<name>_<namespace>`` for every other kind.
* **node id** — what a sidecar announces to xDS, App Mesh's
  ``APPMESH_RESOURCE_ARN`` short form ``mesh/<mesh>/virtualNode/<vn>`` (or
  ``…/virtualGateway/<vg>``), or the full ARN. App Mesh's bootstrap generator
  splits it on ``/``: segment 1 is the mesh, which may carry its owner as
  ``<mesh>@<owner>`` for a shared mesh; 2 the kind; 3 the name.

ARNs of every kind are built and parsed in :mod:`meshplane.model.kinds`.
"""

from __future__ import annotations

import dataclasses

from meshplane.model import kinds

NODE_KINDS = (kinds.VIRTUAL_NODE.key, kinds.VIRTUAL_GATEWAY.key)
"""The resource kinds an Envoy can be: ``virtualNode`` or ``virtualGateway``."""


def default_aws_name(kind: str, name: str, namespace: str) -> str:
    """The awsName the controller's webhook writes for a v1beta2 ``kind`` that has none."""
    if kind == "Mesh":
        return name
    if kind == "VirtualService":
        return f"{name}.{namespace}"
    return f"{name}_{namespace}"


@dataclasses.dataclass(frozen=True)
class NodeRef:
    """The App Mesh resource a node id names."""

    mesh: str
    kind: str
    """``virtualNode`` or ``virtualGateway``."""
    name: str
    owner: str | None = None
    """The mesh owner's account for a shared mesh (``<mesh>@<owner>``), else ``None``."""


def split_mesh(segment: str) -> tuple[str, str | None]:
    """``demos@111122223333`` → ``("demos", "111122223333")``; no ``@`` → no owner."""
    mesh, at, owner = segment.partition("@")
    return mesh, (owner or None) if at else None


def node_id(mesh: str, kind: str, name: str, owner: str | None = None) -> str:
    """The short-form node id ``mesh/<mesh>[@<owner>]/<kind>/<name>``."""
    where = f"{mesh}@{owner}" if owner else mesh
    return f"mesh/{where}/{kind}/{name}"


def parse_node_id(value: str) -> NodeRef | None:
    """Parse the short form or the ARN form of a node id; ``None`` if it is neither."""
    fields = value.split(":", 5)
    parts = fields[-1].split("/") if len(fields) in (1, 6) else []
    if len(parts) != 4 or parts[0] != "mesh" or parts[2] not in NODE_KINDS:
        return None
    mesh, owner = split_mesh(parts[1])
    if not mesh or not parts[3]:
        return None
    return NodeRef(mesh=mesh, kind=parts[2], name=parts[3], owner=owner)
