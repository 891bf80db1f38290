"""What a mesh page reads from the store: the shown page of each kind, never the whole mesh.

Rendering a mesh page used to read and parse every resource of the mesh
(:func:`~meshplane.store.snapshots.mesh_snapshot`), seconds at ten times App Mesh's
quotas, and did it again on every live refresh. Now one read transaction takes each
kind's names (no spec decoded), :mod:`meshplane.console.listing` picks the page, and only
the page's resources are read: at most :data:`~meshplane.console.listing.PAGE_SIZE` per
section, plus the routers whose routes are shown.

The topology graph needs edges, which only specs hold. It draws the whole mesh while the
mesh has at most :data:`~meshplane.console.topology.MAX_BOXES` resources; a larger mesh
draws one virtual service's neighbourhood on request (:func:`neighbourhood`) and says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from meshplane.console import listing, topology
from meshplane.model import kinds
from meshplane.model.kinds import Kind, ResourceKey
from meshplane.model.snapshot import MeshSnapshot, Resource
from meshplane.store import snapshots
from meshplane.store.protocols import ReadTransaction, Store
from meshplane.store.records import Record

KINDS: Mapping[str, Kind] = {
    "vs": kinds.VIRTUAL_SERVICE,
    "vr": kinds.VIRTUAL_ROUTER,
    "rt": kinds.ROUTE,
    "vn": kinds.VIRTUAL_NODE,
    "vg": kinds.VIRTUAL_GATEWAY,
    "gr": kinds.GATEWAY_ROUTE,
}
"""The resource sections of a mesh page and their kinds."""


@dataclasses.dataclass(frozen=True)
class MeshPage:
    """One mesh page's resources: a page per kind and what its rows mention."""

    mesh: Resource
    revision: int
    pages: Mapping[str, listing.Page]
    resources: Mapping[str, tuple[Resource, ...]]
    """Section id → the shown resources, in the page's order."""
    routers: Mapping[str, Resource]
    """The routers of the shown routes (their ports head each group)."""
    children: Mapping[str, int]
    """Routes per router and gateway routes per gateway, by parent name."""
    total: int
    """Resources in the mesh, the mesh itself not counted."""


def read(store: Store, mesh: str, view: listing.View) -> MeshPage | None:
    """The page of ``mesh`` that ``view`` asks for, or ``None`` if there is no such mesh."""
    with store.read() as tx:
        found = tx.get(ResourceKey.of(kinds.MESH, mesh, mesh))
        if found is None:
            return None
        pages = {section: _page(tx, mesh, section, view) for section in KINDS}
        resources = {
            section: _records(tx, KINDS[section], mesh, pages[section].names) for section in KINDS
        }
        shown_routers = sorted({parent for parent, _ in pages["rt"].names})
        routers = {
            r.resource.name: r.resource
            for r in _records(tx, kinds.VIRTUAL_ROUTER, mesh, [("", n) for n in shown_routers])
        }
        children = {
            vr.key.name: tx.count(kinds.ROUTE.key, mesh, vr.key.name) for vr in resources["vr"]
        }
        children.update(
            (vg.key.name, tx.count(kinds.GATEWAY_ROUTE.key, mesh, vg.key.name))
            for vg in resources["vg"]
        )
        revision = tx.revision()
    return MeshPage(
        mesh=found.resource,
        revision=revision,
        pages=pages,
        resources={
            section: tuple(r.resource for r in found) for section, found in resources.items()
        },
        routers=routers,
        children=children,
        total=sum(p.total for p in pages.values()),
    )


def _page(tx: ReadTransaction, mesh: str, section: str, view: listing.View) -> listing.Page:
    """The names of ``section`` that ``view`` shows (counts and one bounded query)."""
    kind, size = KINDS[section].key, listing.PAGE_SIZE
    asked = view.page(section)
    total, matching, names = tx.name_page(kind, mesh, view.query, (asked - 1) * size, size)
    shown = listing.number(view, section, matching)
    if shown != asked:  # past the last page (the mesh shrank): show the last one
        _, _, names = tx.name_page(kind, mesh, view.query, (shown - 1) * size, size)
    return listing.Page(section, tuple(names), matching, total, shown)


def _records(
    tx: ReadTransaction, kind: Kind, mesh: str, names: Iterable[listing.Name]
) -> list[Record]:
    """The records of ``names`` that exist, in that order (one keyed read each)."""
    found = []
    for parent, name in names:
        record = tx.get(ResourceKey.of(kind, mesh, name, parent))
        if record is not None:
            found.append(record)
    return found


def graph(store: Store, mesh: str, total: int, service: str) -> tuple[MeshSnapshot | None, str]:
    """What the topology draws, and why not when it draws nothing.

    The whole mesh when it has at most ``MAX_BOXES`` resources; else the neighbourhood of
    ``service`` if one is asked for; else nothing, with the sentence the page shows.
    """
    if service:
        with store.read() as tx:
            records = neighbourhood(tx, mesh, service)
            revision = tx.revision()
        if records is None:
            return None, f"No virtual service named {service} in this mesh."
        return snapshots.from_records(records, {}, revision), ""
    if total <= topology.MAX_BOXES:
        return snapshots.mesh_snapshot(store, mesh), ""
    return None, (
        f"{total:,} resources: too many to draw at once (the graph shows up to "
        f"{topology.MAX_BOXES}). Choose “graph” beside a virtual service to draw its "
        "neighbourhood."
    )


def neighbourhood(tx: ReadTransaction, mesh: str, service: str) -> list[Record] | None:
    """``service``, who calls it, what provides it and where its routes go (``None``: no service).

    Callers are the virtual nodes whose backends name it (App Mesh keeps no reference for a
    backend: the store finds the nodes whose spec text holds the name, this checks them) and
    the gateways whose gateway routes target it (found through the store's references).
    """
    mesh_record = tx.get(ResourceKey.of(kinds.MESH, mesh, mesh))
    key = ResourceKey.of(kinds.VIRTUAL_SERVICE, mesh, service)
    found = tx.get(key)
    if mesh_record is None or found is None:
        return None
    shown: dict[ResourceKey, Record] = {mesh_record.key: mesh_record, key: found}

    def add(record: Record | None) -> None:
        if record is not None:
            shown.setdefault(record.key, record)

    provider = found.resource.spec.get("provider", {})
    if "virtualRouter" in provider:
        router = str(provider["virtualRouter"].get("virtualRouterName", ""))
        add(tx.get(ResourceKey.of(kinds.VIRTUAL_ROUTER, mesh, router)))
        for route in tx.list_records(kinds.ROUTE.key, mesh, router):
            add(route)
            for target in _targets(route.resource):
                add(tx.get(ResourceKey.of(kinds.VIRTUAL_NODE, mesh, target)))
    elif "virtualNode" in provider:
        node = str(provider["virtualNode"].get("virtualNodeName", ""))
        add(tx.get(ResourceKey.of(kinds.VIRTUAL_NODE, mesh, node)))
    for caller in tx.mentioning(kinds.VIRTUAL_NODE.key, mesh, service):
        backends = caller.resource.spec.get("backends", [])
        if any(b.get("virtualService", {}).get("virtualServiceName") == service for b in backends):
            add(caller)
    for referrer in tx.referrers(key):
        if referrer.kind == kinds.GATEWAY_ROUTE.key:
            add(tx.get(referrer))
            add(tx.get(ResourceKey.of(kinds.VIRTUAL_GATEWAY, mesh, referrer.parent)))
    return list(shown.values())


def _targets(route: Resource) -> list[str]:
    for kind in topology.ROUTE_KINDS:
        if kind in route.spec:
            targets = route.spec[kind].get("action", {}).get("weightedTargets", [])
            return [str(t.get("virtualNode", "")) for t in targets]
    return []
