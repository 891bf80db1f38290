"""Build the immutable :class:`~meshplane.model.snapshot.MeshSnapshot` of one mesh.

:func:`mesh_snapshot` reads a whole mesh (hundreds of milliseconds at ten
times App Mesh's quotas); :func:`updated` derives the next snapshot from the
previous one and a batch of the change feed by reading only the changed keys,
which is what the sync stage does per change once a mesh is loaded.

Specs are parsed into their generated classes here, once per resource read,
so every proxy's translation shares the parsed values. A stored spec the
model refuses (possible only if the model changed under stored data) is left
out of the snapshot and logged: translation then reports it missing instead
of a push failing.
"""

from __future__ import annotations

import itertools
import logging
import operator
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from meshplane.model import kinds
from meshplane.model import specs_generated as generated
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Endpoint, MeshSnapshot, Resource, Typed
from meshplane.model.wirevalues import SpecError
from meshplane.store.protocols import Store
from meshplane.store.records import Change, Record

log = logging.getLogger(__name__)

_NESTED = (kinds.ROUTE.key, kinds.GATEWAY_ROUTE.key)

_PARSERS: dict[str, Callable[[object, str], Any]] = {
    kinds.MESH.key: generated.MeshSpec.from_wire,
    kinds.VIRTUAL_NODE.key: generated.VirtualNodeSpec.from_wire,
    kinds.VIRTUAL_SERVICE.key: generated.VirtualServiceSpec.from_wire,
    kinds.VIRTUAL_ROUTER.key: generated.VirtualRouterSpec.from_wire,
    kinds.ROUTE.key: generated.RouteSpec.from_wire,
    kinds.VIRTUAL_GATEWAY.key: generated.VirtualGatewaySpec.from_wire,
    kinds.GATEWAY_ROUTE.key: generated.GatewayRouteSpec.from_wire,
}
"""Kind → the generated parser of its spec."""

V = TypeVar("V")


def _typed(resource: Resource) -> Typed[Any] | None:
    """The resource with its spec parsed, or ``None`` (logged) when the model refuses it."""
    try:
        return Typed.of(resource, _PARSERS[resource.key.kind])
    except SpecError as exc:
        log.error("snapshot: %s left out: %s", resource.arn, exc)
        return None


def _sorted(found: Mapping[str, V]) -> MappingProxyType[str, V]:
    """A read-only mapping in name order (the order a full read gives)."""
    return MappingProxyType(dict(sorted(found.items())))


def _nested(
    found: Mapping[str, Mapping[str, V]],
) -> MappingProxyType[str, Mapping[str, V]]:
    """Parent → children, both levels read-only and in name order, empty parents dropped."""
    return MappingProxyType({p: _sorted(c) for p, c in sorted(found.items()) if c})


def mesh_snapshot(
    store: Store, mesh: str, previous: MeshSnapshot | None = None
) -> MeshSnapshot | None:
    """Everything ``mesh`` holds at the current revision, or ``None`` if it does not exist.

    ``previous`` (an earlier snapshot of the mesh): its parsed resources are kept for
    the records the store hands back unchanged (the same record object), so a whole
    reread parses only what changed and unchanged resources stay the same objects.
    """
    with store.read() as tx:
        records = tx.list_mesh(mesh)
        endpoints = tx.endpoints(mesh)
        revision = tx.revision()
    return from_records(records, endpoints, revision, previous)


def from_records(
    records: Iterable[Record],
    endpoints: Mapping[str, tuple[Endpoint, ...]],
    revision: int,
    previous: MeshSnapshot | None = None,
) -> MeshSnapshot | None:
    """The snapshot holding just ``records`` (one mesh's, its mesh record among them).

    :func:`mesh_snapshot` passes the whole mesh; the console passes one virtual service's
    neighbourhood to draw it without reading the rest. ``None`` without the mesh record.
    A record whose resource ``previous`` holds (the same object) keeps its parsed spec.
    """
    lines = _LINES.get(id(previous)) if previous is not None else None
    records = list(records)  # kept with the snapshot: a copy, so no caller changes it
    if lines is not None and previous is not None and lines[0]() is previous:
        forward = _forward(previous, lines[1], lines[2], records, endpoints, revision)
        if forward is not None:
            return _lined(forward, records)
    found = _from_records(records, endpoints, revision, previous)
    return None if found is None else _lined(found, records)


_Lines = tuple["weakref.ref[MeshSnapshot]", list[Record], frozenset[ResourceKey]]
_LINES: dict[int, _Lines] = {}
"""id(snapshot) → the records of the whole read it comes from, in order, and the keys
changed since (by :func:`updated`), while the snapshot lives."""
MAX_DIRTY = 256
"""Past this many keys changed since its whole read, a snapshot keeps no lines."""
_KEY_OF = operator.attrgetter("resource.key")


def _lined(
    snapshot: MeshSnapshot,
    records: list[Record],
    dirty: frozenset[ResourceKey] = frozenset(),
) -> MeshSnapshot:
    """``snapshot``, its whole read's ``records`` kept for the next whole read to compare."""
    key = id(snapshot)
    _LINES[key] = (weakref.ref(snapshot, lambda _: _LINES.pop(key, None)), records, dirty)
    return snapshot


def _carried(
    previous: MeshSnapshot, keys: Sequence[ResourceKey], snapshot: MeshSnapshot
) -> MeshSnapshot:
    """``snapshot`` (``previous`` with ``keys`` re-read) keeping ``previous``'s lines, if any.

    The re-read keys are dirty: their resources are not the whole read's records any
    more, so the next whole read parses them again whatever it finds.
    """
    lines = _LINES.get(id(previous))
    if lines is None or lines[0]() is not previous:
        return snapshot
    dirty = lines[2].union(keys)
    if len(dirty) > MAX_DIRTY:
        return snapshot
    return _lined(snapshot, lines[1], dirty)


def _forward(
    previous: MeshSnapshot,
    before: list[Record],
    dirty: frozenset[ResourceKey],
    records: list[Record],
    endpoints: Mapping[str, tuple[Endpoint, ...]],
    revision: int,
) -> MeshSnapshot | None:
    """The snapshot of ``records`` from ``previous`` (built of ``before``), when they line up.

    Lined up: as many records, and each one not the very record at its place in
    ``before`` is a new version of that resource, which ``previous`` holds (an
    update; the store gives unchanged rows back as the same records,
    :class:`~meshplane.store.sqlbase.MeshRows`). Then only those are parsed and put
    in copies of the mappings they belong to, as :func:`updated` does: the same
    snapshot a full build gives, in a pass over the records that runs in C.
    ``None`` when they do not line up (resources came or went): build it whole.

    ``dirty``: keys ``previous`` re-read since ``before`` was read; whatever record
    the read gives for one is parsed again.
    """
    if len(records) != len(before):
        return None
    places = set(itertools.compress(range(len(records)), map(operator.is_not, records, before)))
    if dirty:
        at_key = dict(zip(map(_KEY_OF, records), itertools.count(), strict=False))
        for key in dirty:
            place = at_key.get(key)
            if place is None:
                return None  # gone since: rows came or went
            places.add(place)
    flat: dict[str, _Draft[Typed[Any]]] = {}
    nested: dict[str, dict[str, _Draft[Typed[Any]]]] = {}
    for at in sorted(places):
        old, new = before[at].resource, records[at].resource
        key = new.key
        if key != old.key or key.kind == kinds.MESH.key:
            return None
        if key.kind in _NESTED:
            parents = nested.setdefault(key.kind, {})
            draft = parents.get(key.parent)
            if draft is None:
                children = _children(previous, key.kind).get(key.parent, {})
                draft = parents[key.parent] = _Draft(children)
        else:
            draft = flat.get(key.kind)
            if draft is None:
                draft = flat[key.kind] = _Draft(_flat(previous, key.kind))
        held = draft.items.get(key.name)
        if held is None or (held.resource is not old and key not in dirty):
            return None  # the previous snapshot left it out (refused): not an update of it
        draft.put(key.name, _typed(new))
    return MeshSnapshot(
        revision=revision,
        mesh=previous.mesh,
        virtual_nodes=_replaced(previous.virtual_nodes, flat.get(kinds.VIRTUAL_NODE.key)),
        virtual_services=_replaced(previous.virtual_services, flat.get(kinds.VIRTUAL_SERVICE.key)),
        virtual_routers=_replaced(previous.virtual_routers, flat.get(kinds.VIRTUAL_ROUTER.key)),
        routes=_replaced_nested(previous.routes, nested.get(kinds.ROUTE.key)),
        virtual_gateways=_replaced(previous.virtual_gateways, flat.get(kinds.VIRTUAL_GATEWAY.key)),
        gateway_routes=_replaced_nested(
            previous.gateway_routes, nested.get(kinds.GATEWAY_ROUTE.key)
        ),
        endpoints=(
            previous.endpoints if previous.endpoints == endpoints else MappingProxyType(endpoints)
        ),
    )


def _from_records(
    records: list[Record],
    endpoints: Mapping[str, tuple[Endpoint, ...]],
    revision: int,
    previous: MeshSnapshot | None,
) -> MeshSnapshot | None:
    """:func:`from_records` the long way: every record placed, the mappings sorted."""
    by_kind: dict[str, dict[str, Typed[Any]]] = {}
    nested: dict[str, dict[str, dict[str, Typed[Any]]]] = {kind: {} for kind in _NESTED}
    mesh_resource: Typed[Any] | None = None
    # Names bound once: the loop runs once per resource of the mesh (~9,500 at ten times
    # App Mesh's quotas) on every whole reread.
    parsed = (_parsed(previous) if previous is not None else {}).get
    mesh_kind = kinds.MESH.key
    nested_of = nested.get
    for record in records:
        stored = record.resource
        resource = parsed(id(stored))
        if resource is None or resource.resource is not stored:
            resource = _typed(stored)
            if resource is None:
                continue
        key = stored.key
        kind = key.kind
        parents = nested_of(kind)
        if parents is not None:
            children = parents.get(key.parent)
            if children is None:
                children = parents[key.parent] = {}
            children[key.name] = resource
        elif kind == mesh_kind:
            mesh_resource = resource
        else:
            flat = by_kind.get(kind)
            if flat is None:
                flat = by_kind[kind] = {}
            flat[key.name] = resource
    if mesh_resource is None:
        return None
    if previous is None:
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
    # Mappings whose resources are all the previous snapshot's are the previous mappings
    # (same order, same objects): cheaper than sorting anew, and a reader comparing
    # snapshots (the sync stage) sees at once that nothing of them changed.
    return MeshSnapshot(
        revision=revision,
        mesh=mesh_resource,
        virtual_nodes=_same_or_sorted(previous.virtual_nodes, by_kind.get(kinds.VIRTUAL_NODE.key)),
        virtual_services=_same_or_sorted(
            previous.virtual_services, by_kind.get(kinds.VIRTUAL_SERVICE.key)
        ),
        virtual_routers=_same_or_sorted(
            previous.virtual_routers, by_kind.get(kinds.VIRTUAL_ROUTER.key)
        ),
        routes=_same_or_nested(previous.routes, nested[kinds.ROUTE.key]),
        virtual_gateways=_same_or_sorted(
            previous.virtual_gateways, by_kind.get(kinds.VIRTUAL_GATEWAY.key)
        ),
        gateway_routes=_same_or_nested(previous.gateway_routes, nested[kinds.GATEWAY_ROUTE.key]),
        endpoints=(
            previous.endpoints if previous.endpoints == endpoints else MappingProxyType(endpoints)
        ),
    )


def _same(previous: Mapping[str, V], found: Mapping[str, V]) -> bool:
    """Whether ``found`` holds exactly ``previous``'s objects under the same names."""
    # Compared in C (map, operator.is_): ~2,000 names per kind on every whole reread.
    return len(previous) == len(found) and all(
        map(operator.is_, map(previous.get, found), found.values())
    )


def _same_or_sorted(previous: Mapping[str, V], found: dict[str, V] | None) -> Mapping[str, V]:
    """``previous`` itself when ``found`` holds just its objects, else ``found`` sorted."""
    found = found or {}
    return previous if _same(previous, found) else _sorted(found)


def _same_or_nested(
    previous: Mapping[str, Mapping[str, V]], found: dict[str, dict[str, V]]
) -> Mapping[str, Mapping[str, V]]:
    """:func:`_nested`, keeping ``previous``'s mappings (or all of it) where unchanged."""
    merged: dict[str, Mapping[str, V]] = {}
    unchanged = True
    for parent, children in sorted(found.items()):
        if not children:
            continue
        before = previous.get(parent)
        if before is not None and _same(before, children):
            merged[parent] = before
        else:
            merged[parent] = _sorted(children)
            unchanged = False
    if unchanged and len(merged) == len(previous):
        return previous
    return MappingProxyType(merged)


def _parsed(snapshot: MeshSnapshot) -> dict[int, Typed[Any]]:
    """id(resource) → its parsed form, for every resource ``snapshot`` holds."""
    found: dict[int, Typed[Any]] = {id(snapshot.mesh.resource): snapshot.mesh}
    flats: tuple[Mapping[str, Typed[Any]], ...] = (
        snapshot.virtual_nodes,
        snapshot.virtual_services,
        snapshot.virtual_routers,
        snapshot.virtual_gateways,
    )
    nesteds: tuple[Mapping[str, Mapping[str, Typed[Any]]], ...] = (
        snapshot.routes,
        snapshot.gateway_routes,
    )
    for flat in flats:
        found.update({id(typed.resource): typed for typed in flat.values()})
    for nested in nesteds:
        for children in nested.values():
            found.update({id(child.resource): child for child in children.values()})
    return found


def updated(
    store: Store, previous: MeshSnapshot | None, mesh: str, changes: Sequence[Change]
) -> MeshSnapshot | None:
    """``previous`` with ``changes`` (all of ``mesh``) applied, reading only the changed keys.

    Each changed key is re-read at the store's current state, so applying a
    change twice, or after a later one, is harmless. A change to the mesh
    resource itself (or no previous snapshot) falls back to a full read.
    The result is a new snapshot; ``previous`` is not modified. Only the mappings
    a change touches are copied (a C-level dict copy, see :class:`_Draft`); the
    others are shared with ``previous``.
    """
    if previous is None or any(c.key.kind == kinds.MESH.key for c in changes):
        return mesh_snapshot(store, mesh)
    keys = sorted({c.key for c in changes if c.op != "endpoints"})
    endpoint_nodes = sorted({c.key.name for c in changes if c.key.kind == kinds.VIRTUAL_NODE.key})
    with store.read() as tx:
        found = {key: tx.get(key) for key in keys}
        endpoints = {name: tx.node_endpoints(mesh, name) for name in endpoint_nodes}
    flat: dict[str, _Draft[Typed[Any]]] = {}
    nested: dict[str, dict[str, _Draft[Typed[Any]]]] = {}
    for key, record in found.items():
        if key.kind in _NESTED:
            parents = nested.setdefault(key.kind, {})
            if key.parent not in parents:
                children = _children(previous, key.kind).get(key.parent, {})
                parents[key.parent] = _Draft(children)
            draft = parents[key.parent]
        else:
            if key.kind not in flat:
                flat[key.kind] = _Draft(_flat(previous, key.kind))
            draft = flat[key.kind]
        typed = None if record is None else _typed(record.resource)
        draft.put(key.name, typed)  # a resource the model refuses is left out, as in a full read
    return _carried(
        previous,
        keys,
        MeshSnapshot(
            revision=max(previous.revision, *(c.revision for c in changes)),
            mesh=previous.mesh,
            virtual_nodes=_replaced(previous.virtual_nodes, flat.get(kinds.VIRTUAL_NODE.key)),
            virtual_services=_replaced(
                previous.virtual_services, flat.get(kinds.VIRTUAL_SERVICE.key)
            ),
            virtual_routers=_replaced(previous.virtual_routers, flat.get(kinds.VIRTUAL_ROUTER.key)),
            routes=_replaced_nested(previous.routes, nested.get(kinds.ROUTE.key)),
            virtual_gateways=_replaced(
                previous.virtual_gateways, flat.get(kinds.VIRTUAL_GATEWAY.key)
            ),
            gateway_routes=_replaced_nested(
                previous.gateway_routes, nested.get(kinds.GATEWAY_ROUTE.key)
            ),
            endpoints=_with_endpoints(previous.endpoints, endpoints),
        ),
    )


def _flat(snapshot: MeshSnapshot, kind: str) -> Mapping[str, Typed[Any]]:
    """The snapshot's mapping for a kind that lives directly in the mesh."""
    by_kind: dict[str, Mapping[str, Typed[Any]]] = {
        kinds.VIRTUAL_NODE.key: snapshot.virtual_nodes,
        kinds.VIRTUAL_SERVICE.key: snapshot.virtual_services,
        kinds.VIRTUAL_ROUTER.key: snapshot.virtual_routers,
        kinds.VIRTUAL_GATEWAY.key: snapshot.virtual_gateways,
    }
    return by_kind[kind]


def _children(snapshot: MeshSnapshot, kind: str) -> Mapping[str, Mapping[str, Typed[Any]]]:
    """The snapshot's parent → children mapping for routes or gateway routes."""
    return snapshot.routes if kind == kinds.ROUTE.key else snapshot.gateway_routes


class _Draft(Generic[V]):
    """A copy of one of the previous snapshot's mappings, being changed; then frozen.

    Copy-on-write for the mapping a change touches, at C speed: the snapshot's
    read-only proxies wrap dicts, whose own ``copy`` is a tenth of ``dict(proxy)``
    (which goes key by key: ~4 µs for 500 routers instead of ~50). The copy keeps
    name order as long as keys are only replaced, removed or added after the last
    one; only an insertion in the middle pays the sort a full read's order needs.
    """

    __slots__ = ("items", "resort")

    def __init__(self, previous: Mapping[str, V]) -> None:
        """Start from ``previous`` (in name order, as every snapshot mapping is)."""
        self.items: dict[str, V] = (
            previous.copy() if isinstance(previous, MappingProxyType | dict) else dict(previous)
        )
        self.resort = False

    def put(self, name: str, value: V | None) -> None:
        """Set ``name`` to ``value``, or forget it (``None``)."""
        if value is None:
            self.items.pop(name, None)
            return
        if not self.resort and name not in self.items and self.items:
            self.resort = name < next(reversed(self.items))
        self.items[name] = value

    def frozen(self) -> MappingProxyType[str, V]:
        """The mapping, read-only, in name order."""
        return _sorted(self.items) if self.resort else MappingProxyType(self.items)


def _replaced(previous: Mapping[str, V], changed: _Draft[V] | None) -> Mapping[str, V]:
    """The new mapping for a kind, or the previous one (shared) when nothing of it changed."""
    return previous if changed is None else changed.frozen()


def _replaced_nested(
    previous: Mapping[str, Mapping[str, V]],
    changed: dict[str, _Draft[V]] | None,
) -> Mapping[str, Mapping[str, V]]:
    """Parents whose children changed get new mappings; the others are shared."""
    if changed is None:
        return previous
    merged: _Draft[Mapping[str, V]] = _Draft(previous)
    for parent, children in changed.items():
        merged.put(parent, children.frozen() if children.items else None)
    return merged.frozen()


def _with_endpoints(
    previous: Mapping[str, tuple[Endpoint, ...]], changed: dict[str, tuple[Endpoint, ...]]
) -> Mapping[str, tuple[Endpoint, ...]]:
    """Endpoints with the re-read nodes replaced (a node with none is dropped, like a full read)."""
    if not changed:
        return previous
    merged: _Draft[tuple[Endpoint, ...]] = _Draft(previous)
    for name, endpoints in changed.items():
        merged.put(name, endpoints or None)
    return merged.frozen()
