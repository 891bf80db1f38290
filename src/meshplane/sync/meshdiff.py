"""What changed between two snapshots of one mesh, said as the change feed says it.

A whole reread of a mesh (the sync stage's full rebuild) used to throw away every
shared translation piece (:mod:`meshplane.translate.reuse`) and build them all
again. The reread keeps each unchanged resource as the same parsed object
(:func:`meshplane.store.snapshots.mesh_snapshot` with the previous snapshot), so
comparing the two snapshots by identity finds exactly the keys whose resource
appeared, went away or differs, and the nodes whose registered endpoints differ:
the changes the feed would have listed. The table advanced by them drops every
piece that read one of them and keeps the rest, which are then right for the new
snapshot too — the same rule the incremental path relies on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import MeshSnapshot, Typed


def changes(before: MeshSnapshot, after: MeshSnapshot) -> list[tuple[ResourceKey, str]]:
    """(key, op) for every difference; op is ``endpoints`` for registrations, else ``update``.

    A different mesh resource is one change to it (which every translation read).
    """
    if before.mesh is not after.mesh:
        return [(after.mesh.key, "update")]
    found: list[tuple[ResourceKey, str]] = []
    for old, new in (
        (before.virtual_nodes, after.virtual_nodes),
        (before.virtual_services, after.virtual_services),
        (before.virtual_routers, after.virtual_routers),
        (before.virtual_gateways, after.virtual_gateways),
    ):
        found.extend((key, "update") for key in _differing(old, new))
    for old_nested, new_nested in (
        (before.routes, after.routes),
        (before.gateway_routes, after.gateway_routes),
    ):
        if old_nested is new_nested:
            continue
        for parent in old_nested.keys() | new_nested.keys():
            old_children = old_nested.get(parent, {})
            new_children = new_nested.get(parent, {})
            found.extend((key, "update") for key in _differing(old_children, new_children))
    if before.endpoints is not after.endpoints:
        for node in sorted(before.endpoints.keys() | after.endpoints.keys()):
            if before.endpoints.get(node) != after.endpoints.get(node):
                key = ResourceKey(kinds.VIRTUAL_NODE.key, after.name, "", node)
                found.append((key, "endpoints"))
    return found


def _differing(
    old: Mapping[str, Typed[Any]], new: Mapping[str, Typed[Any]]
) -> Iterator[ResourceKey]:
    """The keys of the resources in one mapping but not the other, or not the same object."""
    if old is new:
        return
    for name, typed in new.items():
        if old.get(name) is not typed:
            yield typed.key
    for name, typed in old.items():
        if name not in new:
            yield typed.key
