"""Route findings of ``meshplane analyze``: what a mesh's routes do that users rarely mean.

Pure functions of a :class:`~meshplane.model.snapshot.MeshSnapshot`, or of the route specs
alone (no I/O), so the rules live beside the model they judge and any front end — ``analyze
-f`` on a throwaway store, ``analyze`` reading a running server — reports the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from meshplane.model.snapshot import MeshSnapshot

ERROR, WARNING = "error", "warning"
HTTP_KINDS = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")


@dataclasses.dataclass(frozen=True, order=True)
class Finding:
    """One problem: how bad, its code, the resource it is about, what to do."""

    severity: str
    code: str
    resource: str
    message: str

    def to_json(self) -> dict[str, str]:
        """The JSON form (``-o json``)."""
        return dataclasses.asdict(self)


def _kind(spec: Mapping[str, Any]) -> str | None:
    return next((k for k in HTTP_KINDS if k in spec), None)


def _match(spec: Mapping[str, Any]) -> tuple[str, bool] | None:
    """A route's (prefix or path, whether it has other constraints); None for TCP routes."""
    kind = _kind(spec)
    if kind is None or kind == "tcpRoute":
        return None
    match = spec[kind].get("match", {})
    if kind == "grpcRoute":
        return (
            f"{match.get('serviceName', '*')}/{match.get('methodName', '*')}",
            bool(match.get("metadata")),
        )
    where = match.get("prefix") or (match.get("path") or {}).get("exact") or "/"
    extra = any(match.get(k) for k in ("headers", "method", "queryParameters", "scheme", "port"))
    return str(where), extra or "regex" in (match.get("path") or {})


RouteSpecs = Mapping[str, Mapping[str, Mapping[str, Any]]]
"""Router name → route name → the route's App Mesh spec (wire form)."""


def routes(snapshot: MeshSnapshot) -> Iterator[Finding]:
    """Zero-weight routes, and routes without priority that shadow or overlap each other."""
    specs = {
        router: {name: route.resource.spec for name, route in by_name.items()}
        for router, by_name in snapshot.routes.items()
    }
    return route_specs(specs)


def route_specs(specs: RouteSpecs) -> Iterator[Finding]:
    """:func:`routes` of specs read elsewhere (``analyze`` against a running server)."""
    for router, by_name in sorted(specs.items()):
        unprioritised: list[tuple[str, str, str, bool]] = []
        for name, spec in sorted(by_name.items()):
            kind = _kind(spec)
            where = f"route/{router}/{name}"
            targets = spec[kind].get("action", {}).get("weightedTargets", []) if kind else []
            if targets and sum(int(t.get("weight", 0)) for t in targets) == 0:
                yield Finding(
                    ERROR,
                    "weights-zero",
                    where,
                    "every weighted target has weight 0: Envoy refuses a zero total, callers "
                    "get 503",
                )
            matched = _match(spec)
            if kind is not None and matched is not None and "priority" not in spec:
                unprioritised.append((name, kind, *matched))
        for index, (a, kind_a, where_a, extra_a) in enumerate(unprioritised):
            for b, kind_b, where_b, extra_b in unprioritised[index + 1 :]:
                if kind_a != kind_b or extra_a or extra_b:
                    continue
                if where_a == where_b:
                    yield Finding(
                        ERROR,
                        "route-shadowed",
                        f"route/{router}/{b}",
                        f"matches exactly what route {a} matches ({where_a}) and neither has a "
                        "priority: give them priorities or different matches",
                    )
                elif kind_a != "grpcRoute" and (
                    where_b.startswith(where_a) or where_a.startswith(where_b)
                ):
                    wide, narrow = (a, b) if len(where_a) < len(where_b) else (b, a)
                    yield Finding(
                        WARNING,
                        "route-overlap",
                        f"route/{router}/{narrow}",
                        f"route {wide} without priority also matches its requests: set "
                        "priorities so the order is yours",
                    )
