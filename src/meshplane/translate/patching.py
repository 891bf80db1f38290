"""What a change does to the shared pieces: the resources, or virtual hosts, to splice.

At fleet scale most changes are replicas coming and going: the registered
endpoints of one virtual node change, and every caller of it would be translated
again only to swap that node's load assignment. But a caller whose translation
read those endpoints *only through shared pieces*
(:class:`~meshplane.translate.reuse.SharedTranslations`: a target's cluster and
load assignment, and a service's targets made of them) got those pieces'
objects verbatim. If the rebuilt pieces keep their names, warnings and reads,
a full translation of the caller would give exactly what it had with the old
objects swapped for the new — so the sync stage can splice the new serialized
cluster and assignment into the caller's previous snapshot instead
(:meth:`~meshplane.xds.snapshot.Snapshot.replaced`).

:func:`patch_targets` rebuilds the dropped target pieces once per change (not
once per caller) and says what changed, or ``None`` when the change cannot be
spliced (any other kind of piece changed, a name, a warning or a read did), in
which case callers are translated again as before.

A route change is the other common case: a router's routes change (weights
shifted), and every caller would be translated again only to rebuild the
virtual host of each service the router provides. When the services' plans
keep their shape (the same hosts, ports and targets, so the same clusters and
listeners; the same warnings and reads), a caller's translation would differ
only in those virtual hosts' routes: the shared routes piece, followed (for a
local-mode sidecar) by its CONNECT route. :func:`patch_routes` rebuilds the
plans and routes once and says which routes of each host changed
(:class:`RouteEdit`);
:func:`splice_virtual_hosts` rewrites a caller's serialized route configuration
host by host and :func:`splice_routes` a host route by route, which gives the
bytes a full translation serializes to (a repeated message field is its
entries' serializations in order).

Pure, like all of :mod:`meshplane.translate`: rebuilt pieces are entered in
the shared table, nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Container, Hashable, Mapping, Sequence
from typing import Any, cast

from envoy.config.route.v3 import route_components_pb2

from meshplane.envoy import wireformat
from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import MeshSnapshot
from meshplane.translate import building, dependencies, names, plan, reuse, routes, specs


@dataclasses.dataclass(frozen=True)
class TargetPatch:
    """One shared target piece rebuilt: the resources callers had, and their successors."""

    discovery: str
    """Which flavour of the piece (callers whose ``NodeIdentity.discovery`` is this)."""
    before: building.TargetResources
    after: building.TargetResources


_SPLICEABLE = frozenset({"target", "service-targets"})
"""Piece kinds whose objects reach a caller verbatim (a service's targets hold target pieces)."""


def patch_targets(
    snapshot: MeshSnapshot,
    shared: reuse.SharedTranslations,
    dropped: Mapping[Hashable, reuse.Piece],
) -> tuple[TargetPatch, ...] | None:
    """The target pieces of ``dropped`` rebuilt on ``snapshot`` (entered in ``shared``).

    ``dropped`` is what :meth:`~meshplane.translate.reuse.SharedTranslations.advance`
    returned for a batch of endpoints changes. ``None``: the batch changed more than
    target resources, and callers must be translated again.
    """
    patches: list[TargetPatch] = []
    for key, old in dropped.items():
        if not isinstance(key, tuple) or key[0] not in _SPLICEABLE:
            return None
        if key[0] != "target":
            continue  # rebuilt from the target pieces by the next caller translated
        _, target, discovery = key
        if old.value is None:
            return None
        recorder = dependencies.Recorder(snapshot)
        pieces = shared.using(snapshot, recorder)
        after = pieces.piece(
            key, functools.partial(building.shared_target, recorder.snapshot, target, discovery), []
        )
        new = shared.get(key)
        before = cast(building.TargetResources, old.value)
        if (
            after is None
            or new is None
            or new.reads != old.reads
            or new.warnings != old.warnings
            or after[0].name != before[0].name
            or (after[1] is None) != (before[1] is None)
        ):
            return None
        patches.append(TargetPatch(discovery, before, after))
    return tuple(patches)


def target_cluster_names(snapshot: MeshSnapshot, node: str) -> frozenset[str]:
    """The names of the clusters callers reach ``node``'s listeners by."""
    found = snapshot.virtual_nodes.get(node)
    if found is None:
        return frozenset()
    return frozenset(
        names.egress_cluster(snapshot.name, node, listener.protocol, listener.port)
        for listener in specs.listeners(found.spec)
    )


@dataclasses.dataclass(frozen=True)
class RoutesPatch:
    """The services whose routes changed, and each of their virtual hosts' new routes."""

    services: frozenset[str]
    hosts: Mapping[str, Sequence[route_components_pb2.Route]]
    """Virtual host name (the same in every caller) → its routes, before any CONNECT route."""
    expected: frozenset[str]
    """Every virtual host name of those services: a caller's host among them not in
    :attr:`hosts` cannot be patched."""
    edits: Mapping[str, tuple[RouteEdit, ...]] = dataclasses.field(default_factory=dict)
    """Virtual host name → its routes whose bytes changed, when the host keeps its number
    of routes: a caller's host is then spliced route by route (:func:`splice_routes`)
    instead of parsed and serialized whole."""

    @functools.cached_property
    def unbuilt(self) -> frozenset[str]:
        """The hosts of :attr:`expected` not in :attr:`hosts` (once per change, not per caller).

        A caller holding one of them is translated.
        """
        return self.expected - self.hosts.keys()


@dataclasses.dataclass(frozen=True, slots=True)
class RouteEdit:
    """One route of a virtual host replaced: its place and its old and new serializations."""

    index: int
    before: bytes
    after: bytes


_ROUTE_PIECES = frozenset({"service", "routes", "routes-wire", "service-targets"})


def patch_routes(
    snapshot: MeshSnapshot,
    shared: reuse.SharedTranslations,
    dropped: Mapping[Hashable, reuse.Piece],
    changed: Collection[ResourceKey] | None = None,
) -> RoutesPatch | None:
    """The plans and routes of ``dropped`` rebuilt on ``snapshot`` (entered in ``shared``).

    ``changed``: the keys of the batch's changes, when every one is a route. Then the
    routes of a changed router that are not among them are taken from its previous plan
    instead of planned again (when that plan warned about nothing), and every route whose
    plan is unchanged keeps its previous proto: a weight shift of one route of ten plans
    and builds one route, not ten.

    ``None``: a piece of another kind changed, or a plan changed shape (hosts, ports,
    targets, TCP backends), warnings or reads — callers must be translated again.
    """
    if any(not isinstance(k, tuple) or k[0] not in _ROUTE_PIECES for k in dropped):
        return None
    entries = [(cast(tuple[Any, ...], key), old) for key, old in dropped.items()]
    recorder = dependencies.Recorder(snapshot)
    pieces = shared.using(snapshot, recorder)
    plans: dict[str, tuple[plan.HostPlan | plan.TcpPlan, ...]] = {}
    before: dict[tuple[str, int], tuple[plan.HostPlan, Sequence[route_components_pb2.Route]]] = {}
    expected: set[str] = set()
    for key, old in entries:
        if key[0] != "service":
            continue
        service = cast(str, key[1])
        known = _known_routes(snapshot, service, old, changed)
        found = pieces.piece(
            key,
            functools.partial(plan.service_plan, recorder.snapshot, service, known=known),
            [],
        )
        new = shared.get(key)
        if new is None or new.reads != old.reads or new.warnings != old.warnings:
            return None
        previous = cast(tuple[plan.HostPlan | plan.TcpPlan, ...], old.value)
        if _shape(found) != _shape(previous):
            return None
        plans[service] = found
        http = [h for h in found if isinstance(h, plan.HostPlan)]
        expected.update(plan.host_name(service, h.port, len(http)) for h in http)
        for planned in previous:
            routes_piece = dropped.get(("routes", service, planned.port, None))
            if isinstance(planned, plan.HostPlan) and routes_piece is not None:
                built = cast(Sequence[route_components_pb2.Route], routes_piece.value)
                before[(service, planned.port)] = (planned, built)
    routes_of = _routes_reusing(recorder.snapshot, pieces, before)
    hosts: dict[str, Sequence[route_components_pb2.Route]] = {}
    edits: dict[str, tuple[RouteEdit, ...]] = {}
    for key, old in entries:
        if key[0] != "routes":
            continue
        service, port, kept_host_header = cast(tuple[str, int, str | None], key[1:])
        found_plan = plans.get(service)
        if kept_host_header is not None or found_plan is None:
            return None  # a gateway's routes, or routes whose plan did not change
        http = [h for h in found_plan if isinstance(h, plan.HostPlan)]
        host = next((h for h in http if h.port == port), None)
        if host is None:
            return None
        name = plan.host_name(service, port, len(http))
        hosts[name] = routes_of(host)
        new = shared.get(key)
        if new is None or new.reads != old.reads or new.warnings != old.warnings:
            return None
        found_edits = _edits(cast(Sequence[route_components_pb2.Route], old.value), hosts[name])
        if found_edits is not None:
            edits[name] = found_edits
    return RoutesPatch(frozenset(plans), hosts, frozenset(expected), edits)


def _known_routes(
    snapshot: MeshSnapshot,
    service: str,
    old: reuse.Piece,
    changed: Collection[ResourceKey] | None,
) -> plan.KnownRoutes | None:
    """The routes of ``service``'s router that ``changed`` left alone, as last planned.

    Sound because nothing else a route's plan depends on changed: the batch holds only
    route changes (so the router, its listeners and every node are as they were when
    ``old`` was planned), and ``old`` warned about nothing, so each route it skipped did
    not apply to that listener's port. ``None``: plan every route.
    """
    if changed is None or old.warnings or old.value is None:
        return None
    if any(key.kind != kinds.ROUTE.key for key in changed):
        return None
    previous = cast(tuple[plan.HostPlan | plan.TcpPlan, ...], old.value)
    if not all(isinstance(host, plan.HostPlan) for host in previous):
        return None
    found = snapshot.virtual_services.get(service)
    provider = found.spec.provider if found is not None else None
    if provider is None or provider.virtual_router is None:
        return None
    router = provider.virtual_router.virtual_router_name
    touched = {key.name for key in changed if key.mesh == snapshot.name and key.parent == router}
    left_alone = [name for name in snapshot.routes.get(router, {}) if name not in touched]
    known: dict[tuple[int, str], plan.RoutePlan | None] = {}
    for host in cast(tuple[plan.HostPlan, ...], previous):
        by_name = {route.name: route for route in host.routes}
        for name in left_alone:
            known[(host.port, name)] = by_name.get(name)
    return known


def _routes_reusing(
    snapshot: MeshSnapshot,
    pieces: reuse.Reuse,
    before: Mapping[tuple[str, int], tuple[plan.HostPlan, Sequence[route_components_pb2.Route]]],
) -> Callable[[plan.HostPlan], Sequence[route_components_pb2.Route]]:
    """:func:`~meshplane.translate.building.shared_routes` (no kept Host header), reusing protos.

    The routes piece of a host is its plan's routes built one by one
    (``routes.build_route``, a function of the mesh name and the route's plan alone): a
    route whose plan equals the one at its place in ``before`` (the host's previous plan
    and the routes built from it) is that previous proto, which pieces never modify.
    """

    def build(host: plan.HostPlan, _warnings: plan.Warnings) -> list[route_components_pb2.Route]:
        planned = building.shared_host_plan(snapshot, pieces, host)
        previous, built = before.get((host.service, host.port), (None, ()))
        old_plans = previous.routes if previous is not None else ()
        if len(old_plans) != len(planned.routes) or len(built) != len(old_plans):
            return routes.build_host_routes(snapshot.name, planned, None)
        return [
            proto
            if (old is new or old == new) and proto.name == new.name
            else routes.build_route(snapshot.name, new)
            for old, new, proto in zip(old_plans, planned.routes, built, strict=True)
        ]

    def host_routes(host: plan.HostPlan) -> Sequence[route_components_pb2.Route]:
        key = ("routes", host.service, host.port, None)
        return pieces.piece(key, functools.partial(build, host), [])

    return host_routes


def _edits(
    before: Sequence[route_components_pb2.Route], after: Sequence[route_components_pb2.Route]
) -> tuple[RouteEdit, ...] | None:
    """The routes of a host that changed (``None``: their count changed).

    Serialized once per change, not per caller: a weight shift on one route of ten
    leaves nine routes' bytes as they were, so each caller's host is spliced at one place.
    """
    if len(before) != len(after):
        return None
    # Equal messages serialize alike (deterministically: map entries sorted), and the
    # comparison runs in C: only the routes that differ are serialized.
    return tuple(
        RouteEdit(
            index,
            old.SerializeToString(deterministic=True),
            new.SerializeToString(deterministic=True),
        )
        for index, (old, new) in enumerate(zip(before, after, strict=True))
        if old is not new and old != new
    )


def _shape(found: tuple[plan.HostPlan | plan.TcpPlan, ...]) -> tuple[object, ...]:
    """What of a service plan a caller uses besides its routes' content (the routes piece).

    A host's targets decide the caller's clusters (and, with client policies, which
    service's TLS a target is called with); TCP plans decide listeners whole.
    """
    shape: list[object] = []
    for piece in found:
        if isinstance(piece, plan.TcpPlan):
            shape.append(piece)
            continue
        targets = {t.target for r in piece.routes for t in r.targets}
        targets |= {r.mirror.target for r in piece.routes if r.mirror is not None}
        shape.append((piece.name, piece.service, piece.port, piece.protocol, piece.domains))
        shape.append(frozenset(targets))
    return tuple(shape)


@dataclasses.dataclass(frozen=True, slots=True)
class HostSpan:
    """Where one virtual host sits in a serialized RouteConfiguration."""

    name: str
    start: int
    """The entry's first byte (its field tag)."""
    payload: int
    """The serialized virtual host's first byte."""
    end: int


def virtual_host_spans(body: bytes) -> tuple[HostSpan, ...]:
    """The virtual hosts of a serialized RouteConfiguration, in order."""
    view = memoryview(body)
    return tuple(
        HostSpan(wireformat.first_string(view, payload), start, payload, end)
        for start, payload, end in wireformat.entries(view, _VIRTUAL_HOSTS)
    )


def splice_routes(host: bytes, edits: Sequence[RouteEdit]) -> bytes | None:
    """A serialized virtual host with the ``edits`` routes swapped in place.

    ``None`` when a route to replace is not the one the edit replaces (the caller's host
    was not built from those pieces): then the host is rebuilt whole. Every other byte
    keeps its place, as a full serialization would put it (a repeated message field is
    its entries' serializations in order).
    """
    view = memoryview(host)
    routes = wireformat.entries(view, _ROUTES)
    parts: list[bytes | memoryview] = []
    at = 0
    for edit in edits:
        if edit.index >= len(routes):
            return None
        start, payload, end = routes[edit.index]
        if view[payload:end] != edit.before:
            return None
        header = wireformat.header(_ROUTES, len(edit.after))
        parts += (view[at:start], header, edit.after)
        at = end
    parts.append(view[at:])
    return b"".join(parts)


class SharedStarts:
    """:func:`splice_routes` of many callers' copies of one host, walking one of them.

    Callers' hosts of a service differ only after the shared routes (a local-mode
    sidecar's CONNECT route names its own cluster). The first host is spliced; its
    bytes up to the end of the last replaced route, before and after, are kept; a
    later host that starts with those same bytes is spliced there by the same edits,
    so it is the kept new start followed by the rest of its own bytes. A host that
    differs before that point is spliced on its own (and becomes the kept start).
    """

    __slots__ = ("_after", "_before", "_edits")

    def __init__(self, edits: Sequence[RouteEdit]) -> None:
        """Splice hosts by ``edits`` (non-empty, in route order)."""
        self._edits = edits
        self._before = self._after = b""

    def spliced(self, host: bytes) -> bytes | None:
        """``splice_routes(host, edits)``, found from the kept start when ``host`` has it."""
        if self._before and host.startswith(self._before):
            return b"".join((self._after, memoryview(host)[len(self._before) :]))
        spliced = splice_routes(host, self._edits)
        if spliced is not None:
            end = wireformat.entries(host, _ROUTES)[self._edits[-1].index][2]
            self._before = host[:end]
            self._after = spliced[: end + len(spliced) - len(host)]
        return spliced


def splice_virtual_hosts(
    body: bytes,
    wanted: Container[str],
    rewrite: Callable[[str, bytes], bytes],
    spans: tuple[HostSpan, ...] | None = None,
) -> tuple[bytes, tuple[HostSpan, ...]]:
    """A serialized RouteConfiguration with the ``wanted`` virtual hosts rewritten.

    ``rewrite(name, serialized_host)`` gives a wanted host's new serialization;
    everything else keeps its bytes and place. ``spans`` (from
    :func:`virtual_host_spans`, or an earlier splice) saves walking ``body``; the
    result's spans come back for the next splice.
    """
    if spans is None:
        spans = virtual_host_spans(body)
    view = memoryview(body)  # the unchanged runs are joined without copying them first
    parts: list[bytes | memoryview] = []
    placed: list[HostSpan] = []
    at = shift = 0
    for span in spans:
        if span.name not in wanted:
            placed.append(_moved(span, shift))
            continue
        host = rewrite(span.name, body[span.payload : span.end])
        header = wireformat.header(_VIRTUAL_HOSTS, len(host))
        parts += (view[at : span.start], header, host)
        begin = span.start + shift
        placed.append(
            HostSpan(span.name, begin, begin + len(header), begin + len(header) + len(host))
        )
        shift += len(header) + len(host) - (span.end - span.start)
        at = span.end
    if not parts:
        return body, spans
    parts.append(view[at:])
    return b"".join(parts), tuple(placed)


def _moved(span: HostSpan, shift: int) -> HostSpan:
    if not shift:
        return span
    return HostSpan(span.name, span.start + shift, span.payload + shift, span.end + shift)


def rebuilt_host(
    host: bytes, routes: Sequence[route_components_pb2.Route], *, tunnelled: bool
) -> bytes:
    """A serialized virtual host given ``routes`` (its CONNECT route kept last: ``tunnelled``)."""
    virtual_host = route_components_pb2.VirtualHost.FromString(host)
    connect = virtual_host.routes[-1] if tunnelled and virtual_host.routes else None
    if connect is not None and connect.name != names.CONNECT_ROUTE:
        raise ValueError(f"virtual host {virtual_host.name} lacks its CONNECT route")
    kept = route_components_pb2.Route()
    if connect is not None:
        kept.CopyFrom(connect)
    del virtual_host.routes[:]
    virtual_host.routes.extend(routes)
    if connect is not None:
        virtual_host.routes.append(kept)
    serialized: bytes = virtual_host.SerializeToString(deterministic=True)
    return serialized


_VIRTUAL_HOSTS = 2
"""RouteConfiguration.virtual_hosts' field number."""
_ROUTES = 3
"""VirtualHost.routes' field number."""
