"""The mesh's topology as a server-rendered SVG: who calls whom, and how much right now.

The graph is read from configuration alone, as App Mesh defines the paths a request may
take: a virtual node (or gateway) calls the virtual services of its ``backends`` (a
gateway, those of its gateway routes); a virtual service is provided by a router or a
node; a router's routes send to their weighted targets. Boxes are laid out in columns by
their longest distance from a caller, so traffic reads left to right.

Live traffic (:mod:`meshplane.sync.traffic`) is written into two kinds of labels, each
marked ``data-traffic="<kind>/<mesh>/<node>"`` so the page's script can replace their text
when the event stream sends new numbers (text only: nothing the server did not escape
ever becomes markup):

* under a virtual node, what its replicas received (``node/…``);
* on a route's edge to a target, what the callers sent that target (``target/…``).

SVG presentation attributes (``x``, ``fill``) are not inline styles, so the console's
Content-Security-Policy (no inline style or script) holds. A mesh with more than
:data:`MAX_BOXES` resources in the graph gets a sentence instead of an unreadable picture.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from meshplane.console.pages import h
from meshplane.model.snapshot import MeshSnapshot

MAX_BOXES = 150
WIDTH, HEIGHT, COLUMN, ROW = 190, 46, 370, 86
ROUTE_KINDS = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
KIND_LABELS = {"vn": "node", "vs": "service", "vr": "router", "vg": "gateway"}

Box = tuple[str, str]
"""(kind, name): ``vn``, ``vs``, ``vr`` or ``vg`` and the resource's name."""


@dataclasses.dataclass(frozen=True)
class Edge:
    """A possible call: ``source`` → ``target``, with its route and weight if it has one."""

    source: Box
    target: Box
    route: str = ""
    weight: int | None = None


def edges(snapshot: MeshSnapshot) -> list[Edge]:
    """Every edge of the mesh's graph, in a stable order."""
    found: list[Edge] = []
    for name, node in sorted(snapshot.virtual_nodes.items()):
        for backend in node.resource.spec.get("backends", []):
            service = backend.get("virtualService", {}).get("virtualServiceName")
            if service:
                found.append(Edge(("vn", name), ("vs", service)))
    for name, service in sorted(snapshot.virtual_services.items()):
        provider = service.resource.spec.get("provider", {})
        if "virtualRouter" in provider:
            router = provider["virtualRouter"].get("virtualRouterName", "")
            found.append(Edge(("vs", name), ("vr", router)))
        elif "virtualNode" in provider:
            found.append(
                Edge(("vs", name), ("vn", provider["virtualNode"].get("virtualNodeName", "")))
            )
    for router, routes in sorted(snapshot.routes.items()):
        for route_name, route in sorted(routes.items()):
            spec = route.resource.spec
            kind = next((k for k in ROUTE_KINDS if k in spec), None)
            targets = (
                spec.get(kind, {}).get("action", {}).get("weightedTargets", []) if kind else []
            )
            for target in targets:
                found.append(
                    Edge(
                        ("vr", router),
                        ("vn", str(target.get("virtualNode", ""))),
                        route_name,
                        int(target.get("weight", 0)),
                    )
                )
    for gateway, gateway_routes in sorted(snapshot.gateway_routes.items()):
        for gateway_route in gateway_routes.values():
            spec = gateway_route.resource.spec
            for kind in ("httpRoute", "http2Route", "grpcRoute"):
                target = spec.get(kind, {}).get("action", {}).get("target", {})
                service = target.get("virtualService", {}).get("virtualServiceName")
                if service:
                    found.append(Edge(("vg", gateway), ("vs", service)))
    return list(dict.fromkeys(found))


def boxes(snapshot: MeshSnapshot, found: list[Edge]) -> list[Box]:
    """Every resource in the graph: all nodes, services, routers and gateways, and edge ends."""
    every: list[Box] = [("vg", n) for n in sorted(snapshot.virtual_gateways)]
    every += [("vn", n) for n in sorted(snapshot.virtual_nodes)]
    every += [("vs", n) for n in sorted(snapshot.virtual_services)]
    every += [("vr", n) for n in sorted(snapshot.virtual_routers)]
    for edge in found:
        every += [edge.source, edge.target]
    return list(dict.fromkeys(every))


def columns(every: list[Box], found: list[Edge]) -> dict[Box, int]:
    """Each box's column: its longest distance from a box nothing calls (cycles cut)."""
    callers: dict[Box, list[Box]] = {box: [] for box in every}
    for edge in found:
        callers[edge.target].append(edge.source)
    column: dict[Box, int] = {}

    def depth(box: Box, visiting: frozenset[Box]) -> int:
        if box in column:
            return column[box]
        inbound = [c for c in callers[box] if c not in visiting]
        value = 1 + max((depth(c, visiting | {box}) for c in inbound), default=-1)
        column[box] = value
        return value

    for box in every:
        depth(box, frozenset())
    return column


def summary(row: Mapping[str, Any] | None) -> str:
    """One traffic label: ``12.5 rps · 100% ok · p50 1.2 ms · p99 4.8 ms``."""
    if row is None:
        return "no traffic"
    parts = [f"{row['rps']:g} rps"]
    if row["success"] is not None:
        parts.append(f"{row['success']:g}% ok")
    if row["p50"] is not None:
        parts.append(f"p50 {row['p50']:g} ms")
    if row["p99"] is not None:
        parts.append(f"p99 {row['p99']:g} ms")
    return " · ".join(parts)


def traffic_key(kind: str, mesh: str, node: str) -> str:
    """The ``data-traffic`` key of a label: ``node/<mesh>/<name>`` or ``target/<mesh>/<name>``."""
    return f"{kind}/{mesh}/{node}"


def render(snapshot: MeshSnapshot, rows: Mapping[str, Mapping[str, Any]]) -> str:
    """The ``<svg>`` (or a sentence) for ``snapshot``; ``rows`` by :func:`traffic_key`."""
    mesh = snapshot.mesh.resource.key.name
    found = edges(snapshot)
    every = boxes(snapshot, found)
    if not every:
        return '<p class="empty">Nothing to draw yet.</p>'
    if len(every) > MAX_BOXES:
        return (
            f'<p class="empty">{len(every)} resources: too many to draw '
            f"(the graph shows up to {MAX_BOXES}).</p>"
        )
    column = columns(every, found)
    rows_in: dict[int, int] = {}
    place: dict[Box, tuple[int, int]] = {}
    for box in every:
        index = rows_in.get(column[box], 0)
        rows_in[column[box]] = index + 1
        place[box] = (20 + column[box] * COLUMN, 20 + index * ROW)
    width = 40 + (max(column.values()) + 1) * COLUMN
    height = 40 + max(rows_in.values()) * ROW
    parts = [
        f'<svg class="topology" data-testid="topology" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="topology of {h(mesh)}">'
    ]
    for edge in found:
        (x1, y1), (x2, y2) = place[edge.source], place[edge.target]
        start, end = (x1 + WIDTH, y1 + HEIGHT // 2), (x2, y2 + HEIGHT // 2)
        parts.append(
            f'<line class="edge" x1="{start[0]}" y1="{start[1]}" x2="{end[0]}" y2="{end[1]}"/>'
        )
        if edge.weight is not None:
            key = traffic_key("target", mesh, edge.target[1])
            mid_x, mid_y = (start[0] + end[0]) // 2, (start[1] + end[1]) // 2
            parts.append(
                f'<text class="edge-label" x="{mid_x}" y="{mid_y - 4}" text-anchor="middle">'
                f"{h(edge.route)} {edge.weight}</text>"
                f'<text class="traffic" x="{mid_x}" y="{mid_y + 10}" text-anchor="middle" '
                f'data-traffic="{h(key)}">'
                f"{h(summary(rows.get(key)))}</text>"
            )
    for box in every:
        kind, name = box
        x, y = place[box]
        shown = name if len(name) <= 26 else name[:25] + "…"
        parts.append(
            f'<g class="box box-{kind}" data-testid="box-{kind}-{h(name)}"><title>'
            f"{h(KIND_LABELS[kind])} {h(name)}</title>"
            f'<rect x="{x}" y="{y}" width="{WIDTH}" height="{HEIGHT}" rx="6"/>'
            f'<text class="kind" x="{x + 8}" y="{y + 16}">{h(KIND_LABELS[kind])}</text>'
            f'<text class="name" x="{x + 8}" y="{y + 34}">{h(shown)}</text></g>'
        )
        if kind == "vn":
            key = traffic_key("node", mesh, name)
            parts.append(
                f'<text class="traffic" x="{x}" y="{y + HEIGHT + 14}" data-traffic="{h(key)}">'
                f"{h(summary(rows.get(key)))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
