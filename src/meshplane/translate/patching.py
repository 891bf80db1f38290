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
plans and routes once; :func:`splice_virtual_hosts` rewrites a caller's
serialized route configuration host by host, which gives the bytes a full
translation serializes to (a repeated message field is its entries'
serializations in order).

Pure, like all of :mod:`meshplane.translate`: rebuilt pieces are entered in
the shared table, nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Container, Hashable, Mapping, Sequence
from typing import Any, cast

from envoy.config.route.v3 import route_components_pb2

from meshplane.model.snapshot import MeshSnapshot
from meshplane.translate import building, dependencies, names, plan, reuse, specs


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


_ROUTE_PIECES = frozenset({"service", "routes", "routes-wire", "service-targets"})


def patch_routes(
    snapshot: MeshSnapshot,
    shared: reuse.SharedTranslations,
    dropped: Mapping[Hashable, reuse.Piece],
) -> RoutesPatch | None:
    """The plans and routes of ``dropped`` rebuilt on ``snapshot`` (entered in ``shared``).

    ``None``: a piece of another kind changed, or a plan changed shape (hosts, ports,
    targets, TCP backends), warnings or reads — callers must be translated again.
    """
    if any(not isinstance(k, tuple) or k[0] not in _ROUTE_PIECES for k in dropped):
        return None
    entries = [(cast(tuple[Any, ...], key), old) for key, old in dropped.items()]
    recorder = dependencies.Recorder(snapshot)
    pieces = shared.using(snapshot, recorder)
    plans: dict[str, tuple[plan.HostPlan | plan.TcpPlan, ...]] = {}
    expected: set[str] = set()
    for key, old in entries:
        if key[0] != "service":
            continue
        service = cast(str, key[1])
        found = pieces.piece(
            key, functools.partial(plan.service_plan, recorder.snapshot, service), []
        )
        new = shared.get(key)
        if new is None or new.reads != old.reads or new.warnings != old.warnings:
            return None
        if _shape(found) != _shape(cast(tuple[plan.HostPlan | plan.TcpPlan, ...], old.value)):
            return None
        plans[service] = found
        http = [h for h in found if isinstance(h, plan.HostPlan)]
        expected.update(plan.host_name(service, h.port, len(http)) for h in http)
    routes_of = building.shared_routes(recorder.snapshot, pieces, None)
    assert routes_of is not None  # a table was given
    hosts: dict[str, Sequence[route_components_pb2.Route]] = {}
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
        hosts[plan.host_name(service, port, len(http))] = routes_of(host)
        new = shared.get(key)
        if new is None or new.reads != old.reads or new.warnings != old.warnings:
            return None
    return RoutesPatch(frozenset(plans), hosts, frozenset(expected))


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
    spans: list[HostSpan] = []
    view = memoryview(body)
    at = 0
    while at < len(body):
        start = at
        tag, at = _varint(view, at)
        wire_type = tag & 7
        if wire_type == _LENGTH_DELIMITED:
            size, at = _varint(view, at)
            payload, at = at, at + size
            if tag >> 3 == _VIRTUAL_HOSTS:
                spans.append(HostSpan(_first_string(view, payload), start, payload, at))
        elif wire_type == _VARINT:
            _, at = _varint(view, at)
        elif wire_type == _FIXED64:
            at += 8
        elif wire_type == _FIXED32:
            at += 4
        else:
            raise ValueError(f"unexpected wire type {wire_type} in a route configuration")
    return tuple(spans)


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
    parts: list[bytes] = []
    placed: list[HostSpan] = []
    at = shift = 0
    for span in spans:
        if span.name not in wanted:
            placed.append(_moved(span, shift))
            continue
        host = rewrite(span.name, body[span.payload : span.end])
        header = _encode_varint(_VIRTUAL_HOSTS << 3 | _LENGTH_DELIMITED) + _encode_varint(len(host))
        parts += (body[at : span.start], header, host)
        begin = span.start + shift
        placed.append(
            HostSpan(span.name, begin, begin + len(header), begin + len(header) + len(host))
        )
        shift += len(header) + len(host) - (span.end - span.start)
        at = span.end
    if not parts:
        return body, spans
    parts.append(body[at:])
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
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def _varint(view: memoryview, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = view[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _first_string(view: memoryview, at: int) -> str:
    """Field 1 of the message serialized at ``at`` when it is a string (a host's name)."""
    tag, at = _varint(view, at)
    if tag != (1 << 3 | _LENGTH_DELIMITED):
        return ""
    size, at = _varint(view, at)
    return bytes(view[at : at + size]).decode()
