"""Build the immutable :class:`~meshplane.model.snapshot.MeshSnapshot` of one mesh.

:func:`mesh_snapshot` reads a whole mesh (hundreds of milliseconds at ten
times App Mesh's quotas); :func:`updated` derives the next snapshot from the
previous one and a batch of the change feed by reading only the changed keys,
which is what the sync stage does per change once a mesh is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Endpoint, MeshSnapshot, Resource
from meshplane.store.protocols import Store
from meshplane.store.records import Change

_NESTED = (kinds.ROUTE.key, kinds.GATEWAY_ROUTE.key)


def _sorted(found: Mapping[str, Resource]) -> MappingProxyType[str, Resource]:
    """A read-only mapping in name order (the order a full read gives)."""
    return MappingProxyType(dict(sorted(found.items())))


def _nested(
    found: Mapping[str, Mapping[str, Resource]],
) -> MappingProxyType[str, Mapping[str, Resource]]:
    """Parent → children, both levels read-only and in name order, empty parents dropped."""
    return MappingProxyType({p: _sorted(c) for p, c in sorted(found.items()) if c})


def mesh_snapshot(store: Store, mesh: str) -> MeshSnapshot | None:
    """Everything ``mesh`` holds at the current revision, or ``None`` if it does not exist."""
    with store.read() as tx:
        records = tx.list_mesh(mesh)
        endpoints = tx.endpoints(mesh)
        revision = tx.revision()
    by_kind: dict[str, dict[str, Resource]] = {}
    nested: dict[str, dict[str, dict[str, Resource]]] = {kind: {} for kind in _NESTED}
    mesh_resource: Resource | None = None
    for record in records:
        resource = record.resource
        if resource.key.kind == kinds.MESH.key:
            mesh_resource = resource
        elif resource.key.kind in nested:
            nested[resource.key.kind].setdefault(resource.key.parent, {})[resource.name] = resource
        else:
            by_kind.setdefault(resource.key.kind, {})[resource.name] = resource
    if mesh_resource is None:
        return None
    return MeshSnapshot(
        revision=revision,
        mesh=mesh_resource,
        virtual_nodes=_sorted(by_kind.get(kinds.VIRTUAL_NODE.key, {})),
        virtual_services=_sorted(by_kind.get(kinds.VIRTUAL_SERVICE.key, {})),
        virtual_routers=_sorted(by_kind.get(kinds.VIRTUAL_ROUTER.key, {})),
        routes=_nested(nested[kinds.ROUTE.key]),
        virtual_gateways=_sorted(by_kind.get(kinds.VIRTUAL_GATEWAY.key, {})),
        gateway_routes=_nested(nested[kinds.GATEWAY_ROUTE.key]),
        endpoints=MappingProxyType(endpoints),
    )


def updated(
    store: Store, previous: MeshSnapshot | None, mesh: str, changes: Sequence[Change]
) -> MeshSnapshot | None:
    """``previous`` with ``changes`` (all of ``mesh``) applied, reading only the changed keys.

    Each changed key is re-read at the store's current state, so applying a
    change twice, or after a later one, is harmless. A change to the mesh
    resource itself (or no previous snapshot) falls back to a full read.
    The result is a new snapshot; ``previous`` is not modified.
    """
    if previous is None or any(c.key.kind == kinds.MESH.key for c in changes):
        return mesh_snapshot(store, mesh)
    keys = sorted({c.key for c in changes if c.op != "endpoints"})
    endpoint_nodes = sorted({c.key.name for c in changes if c.key.kind == kinds.VIRTUAL_NODE.key})
    with store.read() as tx:
        found = {key: tx.get(key) for key in keys}
        endpoints = {name: tx.node_endpoints(mesh, name) for name in endpoint_nodes}
    flat: dict[str, dict[str, Resource]] = {}
    nested: dict[str, dict[str, dict[str, Resource]]] = {}
    for key, record in found.items():
        if key.kind in _NESTED:
            parents = nested.setdefault(key.kind, {})
            if key.parent not in parents:
                children = _children(previous, key.kind).get(key.parent, {})
                parents[key.parent] = dict(children)
            _put(parents[key.parent], key, record.resource if record else None)
        else:
            if key.kind not in flat:
                flat[key.kind] = dict(_flat(previous, key.kind))
            _put(flat[key.kind], key, record.resource if record else None)
    return MeshSnapshot(
        revision=max(previous.revision, *(c.revision for c in changes)),
        mesh=previous.mesh,
        virtual_nodes=_replaced(previous.virtual_nodes, flat.get(kinds.VIRTUAL_NODE.key)),
        virtual_services=_replaced(previous.virtual_services, flat.get(kinds.VIRTUAL_SERVICE.key)),
        virtual_routers=_replaced(previous.virtual_routers, flat.get(kinds.VIRTUAL_ROUTER.key)),
        routes=_replaced_nested(previous.routes, nested.get(kinds.ROUTE.key)),
        virtual_gateways=_replaced(previous.virtual_gateways, flat.get(kinds.VIRTUAL_GATEWAY.key)),
        gateway_routes=_replaced_nested(
            previous.gateway_routes, nested.get(kinds.GATEWAY_ROUTE.key)
        ),
        endpoints=_with_endpoints(previous.endpoints, endpoints),
    )


def _flat(snapshot: MeshSnapshot, kind: str) -> Mapping[str, Resource]:
    """The snapshot's mapping for a kind that lives directly in the mesh."""
    by_kind: dict[str, Mapping[str, Resource]] = {
        kinds.VIRTUAL_NODE.key: snapshot.virtual_nodes,
        kinds.VIRTUAL_SERVICE.key: snapshot.virtual_services,
        kinds.VIRTUAL_ROUTER.key: snapshot.virtual_routers,
        kinds.VIRTUAL_GATEWAY.key: snapshot.virtual_gateways,
    }
    return by_kind[kind]


def _children(snapshot: MeshSnapshot, kind: str) -> Mapping[str, Mapping[str, Resource]]:
    """The snapshot's parent → children mapping for routes or gateway routes."""
    return snapshot.routes if kind == kinds.ROUTE.key else snapshot.gateway_routes


def _put(into: dict[str, Resource], key: ResourceKey, resource: Resource | None) -> None:
    """Store the re-read resource, or forget it when it no longer exists."""
    if resource is None:
        into.pop(key.name, None)
    else:
        into[key.name] = resource


def _replaced(
    previous: Mapping[str, Resource], changed: dict[str, Resource] | None
) -> Mapping[str, Resource]:
    """The new mapping for a kind, or the previous one (shared) when nothing of it changed."""
    return previous if changed is None else _sorted(changed)


def _replaced_nested(
    previous: Mapping[str, Mapping[str, Resource]],
    changed: dict[str, dict[str, Resource]] | None,
) -> Mapping[str, Mapping[str, Resource]]:
    """Parents whose children changed get new mappings; the others are shared."""
    if changed is None:
        return previous
    merged: dict[str, Mapping[str, Resource]] = dict(previous)
    for parent, children in changed.items():
        if children:
            merged[parent] = _sorted(children)
        else:
            merged.pop(parent, None)
    return MappingProxyType(dict(sorted(merged.items())))


def _with_endpoints(
    previous: Mapping[str, tuple[Endpoint, ...]], changed: dict[str, tuple[Endpoint, ...]]
) -> Mapping[str, tuple[Endpoint, ...]]:
    """Endpoints with the re-read nodes replaced (a node with none is dropped, like a full read)."""
    if not changed:
        return previous
    merged = dict(previous)
    for name, endpoints in changed.items():
        if endpoints:
            merged[name] = endpoints
        else:
            merged.pop(name, None)
    return MappingProxyType(dict(sorted(merged.items())))
