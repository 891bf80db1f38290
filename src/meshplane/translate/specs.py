"""Reading App Mesh spec JSON the way App Mesh's data plane interprets it.

Specs arrive as the API echoes them (camelCase dicts, optional members absent).
This module owns the defaults that are invisible in the API but real in App
Mesh's Envoy config: 15 s per request, 300 s idle (``appmesh-api.md`` §11).
It knows nothing of Envoy protos.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

HTTP_FAMILY = frozenset({"http", "http2", "grpc"})
"""Listener protocols served by an HTTP connection manager."""
HTTP2_UPSTREAM = frozenset({"http2", "grpc"})
"""Listener protocols whose upstream connections must speak HTTP/2."""

DEFAULT_PER_REQUEST_MS = 15_000
DEFAULT_IDLE_MS = 300_000
UNLIMITED = 2_147_483_647
"""App Mesh's "circuit breakers effectively disabled" threshold."""

ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
NO_PRIORITY = 1001
"""Sorts after every legal priority (0..1000): unprioritised routes match last."""

Spec = Mapping[str, Any]


def member(spec: Spec | None, *path: str) -> Any:
    """``spec[a][b]…`` or ``None`` when any step is missing or not a mapping."""
    value: Any = spec
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def mapping(spec: Spec | None, *path: str) -> Spec:
    """Like :func:`member` but always a mapping (empty when absent)."""
    value = member(spec, *path)
    return value if isinstance(value, Mapping) else {}


def items(spec: Spec | None, *path: str) -> Sequence[Spec]:
    """A list of mappings at ``path``, skipping anything that is not a mapping."""
    value = member(spec, *path)
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, Mapping))


def duration_ms(value: Any) -> int | None:
    """An App Mesh ``Duration`` (``{"unit": "s"|"ms", "value": n}``) in milliseconds.

    ``None`` when absent or unreadable, so the caller's default applies.
    """
    if not isinstance(value, Mapping):
        return None
    amount, unit = value.get("value"), value.get("unit", "ms")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        return None
    if unit == "s":
        return amount * 1000
    if unit == "ms":
        return amount
    return None


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """A listener's or route's timeouts after App Mesh's defaults; 0 disables."""

    per_request_ms: int
    idle_ms: int

    @classmethod
    def of(cls, timeout: Spec, default: Timeouts | None = None) -> Timeouts:
        """Read an ``HttpTimeout``/``GrpcTimeout``/``TcpTimeout`` over a default."""
        base = default or Timeouts(DEFAULT_PER_REQUEST_MS, DEFAULT_IDLE_MS)
        per_request = duration_ms(timeout.get("perRequest"))
        idle = duration_ms(timeout.get("idle"))
        return cls(
            base.per_request_ms if per_request is None else per_request,
            base.idle_ms if idle is None else idle,
        )


@dataclasses.dataclass(frozen=True)
class Listener:
    """One ``listeners[]`` entry of a virtual node, router or gateway."""

    port: int
    protocol: str
    spec: Spec

    @property
    def timeouts(self) -> Timeouts:
        """The listener's timeouts, read from the member matching its protocol."""
        return Timeouts.of(mapping(self.spec, "timeout", self.protocol))

    @property
    def connection_pool(self) -> Spec:
        """The ``connectionPool`` member matching the protocol (empty when absent)."""
        return mapping(self.spec, "connectionPool", self.protocol)

    @property
    def is_http(self) -> bool:
        """Served by an HTTP connection manager (http, http2, grpc)."""
        return self.protocol in HTTP_FAMILY


def listeners(spec: Spec) -> tuple[Listener, ...]:
    """The well-formed listeners of a spec, in port order, first one per port kept."""
    found: dict[int, Listener] = {}
    for entry in items(spec, "listeners"):
        port = member(entry, "portMapping", "port")
        protocol = member(entry, "portMapping", "protocol")
        if isinstance(port, int) and isinstance(protocol, str) and port not in found:
            found[port] = Listener(port, protocol, entry)
    return tuple(found[port] for port in sorted(found))


def route_body(spec: Spec) -> tuple[str, Spec] | None:
    """The route's single ``httpRoute``/``http2Route``/``grpcRoute``/``tcpRoute`` member."""
    present = [(key, spec[key]) for key in ROUTE_TYPES if isinstance(spec.get(key), Mapping)]
    return present[0] if len(present) == 1 else None


def priority(spec: Spec) -> int:
    """A route's priority (0 first); routes without one sort after all others."""
    value = spec.get("priority")
    return value if isinstance(value, int) and not isinstance(value, bool) else NO_PRIORITY


def match_specificity(match: Spec) -> int:
    """How specific a match is, to order routes of equal priority (longest first)."""
    path = mapping(match, "path")
    text = match.get("prefix") or path.get("exact") or path.get("regex") or ""
    if match.get("serviceName"):
        text = f"/{match['serviceName']}/{match.get('methodName') or ''}"
    extra = len(items(match, "headers")) + len(items(match, "queryParameters"))
    extra += len(items(match, "metadata"))
    extra += 1 if match.get("method") else 0
    return len(str(text)) * 100 + extra
