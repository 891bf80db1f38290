"""Build the immutable :class:`~meshplane.model.snapshot.MeshSnapshot` of one mesh."""

from __future__ import annotations

from types import MappingProxyType

from meshplane.model.snapshot import MeshSnapshot, Resource
from meshplane.store.sqlite import SqliteStore


def mesh_snapshot(store: SqliteStore, mesh: str) -> MeshSnapshot | None:
    """Everything ``mesh`` holds at the current revision, or ``None`` if it does not exist."""
    with store.read() as tx:
        records = tx.list_mesh(mesh)
        endpoints = tx.endpoints(mesh)
        revision = tx.revision()
    by_kind: dict[str, dict[str, Resource]] = {}
    nested: dict[str, dict[str, dict[str, Resource]]] = {"route": {}, "gatewayRoute": {}}
    mesh_resource: Resource | None = None
    for record in records:
        resource = record.resource
        if resource.key.kind == "mesh":
            mesh_resource = resource
        elif resource.key.kind in nested:
            nested[resource.key.kind].setdefault(resource.key.parent, {})[resource.name] = resource
        else:
            by_kind.setdefault(resource.key.kind, {})[resource.name] = resource
    if mesh_resource is None:
        return None

    def frozen(kind: str) -> MappingProxyType[str, Resource]:
        return MappingProxyType(dict(sorted(by_kind.get(kind, {}).items())))

    return MeshSnapshot(
        revision=revision,
        mesh=mesh_resource,
        virtual_nodes=frozen("virtualNode"),
        virtual_services=frozen("virtualService"),
        virtual_routers=frozen("virtualRouter"),
        routes=MappingProxyType(
            {
                p: MappingProxyType(dict(sorted(r.items())))
                for p, r in sorted(nested["route"].items())
            }
        ),
        virtual_gateways=frozen("virtualGateway"),
        gateway_routes=MappingProxyType(
            {
                p: MappingProxyType(dict(sorted(r.items())))
                for p, r in sorted(nested["gatewayRoute"].items())
            }
        ),
        endpoints=MappingProxyType(endpoints),
    )
