"""App Mesh's rules that the service model cannot state (``appmesh-api.md`` §8).

Each checker takes one spec (already valid against its model shape) and returns
the broken rules as ``field path: rule`` lines. Rules that need other resources
(references, listener ports of routers and targets, quotas, delete dependencies)
live in :mod:`meshplane.service`, which can read the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from meshplane.model import regexes

Spec = Mapping[str, Any]

ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
GATEWAY_ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute")
_RESERVED_PREFIXES = ("/aws-appmesh", "/aws-app-mesh")
_RESERVED_GRPC_SERVICES = ("aws.appmesh", "aws.app-mesh")

# Which connectionPool / timeout member each listener protocol takes (rule R7).
_PROTOCOL_MEMBER = {"http": "http", "http2": "http2", "grpc": "grpc", "tcp": "tcp"}


def _exactly_one(spec: Spec, members: tuple[str, ...], path: str, found: list[str]) -> str | None:
    present = [m for m in members if spec.get(m) is not None]
    if len(present) != 1:
        got = ", ".join(present) if present else "none"
        found.append(
            f"{path or 'spec'}: must set exactly one of {', '.join(members)} (found {got})"
        )
        return None
    return present[0]


def _listeners(spec: Spec, path: str, found: list[str], *, node: bool) -> None:
    seen: set[int] = set()
    for index, listener in enumerate(spec.get("listeners") or []):
        where = f"{path}.listeners[{index}]"
        mapping = listener.get("portMapping") or {}
        port, protocol = mapping.get("port"), mapping.get("protocol")
        if not isinstance(port, int):
            continue
        if port in seen:
            found.append(f"{where}.portMapping.port: port {port} is used by another listener")
        seen.add(port)
        for union in ("connectionPool", "timeout"):
            chosen = [m for m, v in (listener.get(union) or {}).items() if v is not None]
            expected = _PROTOCOL_MEMBER.get(protocol or "")
            if chosen and chosen != [expected]:
                found.append(
                    f"{where}.{union}: a {protocol} listener takes {union}.{expected}, "
                    f"not {union}.{chosen[0]}"
                )
        check = listener.get("healthCheck") or {}
        if check.get("port") is not None and check["port"] != port:
            found.append(
                f"{where}.healthCheck.port: must equal the listener port {port}, "
                f"got {check['port']}"
            )
    if node and spec.get("listeners") and spec.get("serviceDiscovery") is None:
        found.append(f"{path}.serviceDiscovery: is required when the node has listeners")


def virtual_node(spec: Spec) -> list[str]:
    """Listener rules (R6-R8) and unique backends (R14)."""
    found: list[str] = []
    _listeners(spec, "spec", found, node=True)
    names: set[str] = set()
    for index, backend in enumerate(spec.get("backends") or []):
        service = str((backend.get("virtualService") or {}).get("virtualServiceName"))
        if service in names:
            found.append(
                f"spec.backends[{index}].virtualService.virtualServiceName: "
                f"{service} is listed more than once"
            )
        names.add(service)
    return found


def virtual_router(spec: Spec) -> list[str]:
    """Listener ports are unique."""
    found: list[str] = []
    _listeners(spec, "spec", found, node=False)
    return found


def virtual_gateway(spec: Spec) -> list[str]:
    """At least one listener; listener rules as for nodes."""
    found: list[str] = []
    if not spec.get("listeners"):
        found.append("spec.listeners: a virtual gateway needs at least one listener")
    _listeners(spec, "spec", found, node=False)
    return found


def _header_matches(headers: Any, path: str, found: list[str]) -> None:
    for index, header in enumerate(headers or []):
        span = (header.get("match") or {}).get("range")
        if span and span.get("start") is not None and span["start"] >= span.get("end", 0):
            found.append(f"{path}[{index}].match.range: start must be below end")


def _http_match(match: Spec, path: str, found: list[str], *, gateway: bool) -> None:
    has_prefix, has_path = match.get("prefix") is not None, match.get("path") is not None
    if has_prefix and has_path:
        found.append(f"{path}: set prefix or path, not both")
    if not gateway and not has_prefix and not has_path:
        found.append(f"{path}: must set prefix or path")
    prefix = match.get("prefix")
    if prefix is not None and not prefix.startswith("/"):
        found.append(f"{path}.prefix: must start with '/', got {prefix!r}")
    if gateway and prefix is not None and prefix.startswith(_RESERVED_PREFIXES):
        found.append(f"{path}.prefix: {prefix!r} is reserved (/aws-appmesh*, /aws-app-mesh*)")
    if has_path:
        _exactly_one(match["path"], ("exact", "regex"), f"{path}.path", found)
    if gateway and match.get("hostname") is not None:
        _exactly_one(match["hostname"], ("exact", "suffix"), f"{path}.hostname", found)
    _header_matches(match.get("headers"), f"{path}.headers", found)


def _regex_fields(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every ``regex`` string under a route body (path, header and metadata matches)."""
    if isinstance(value, Mapping):
        for member, item in value.items():
            where = f"{path}.{member}"
            if member == "regex" and isinstance(item, str):
                yield where, item
            else:
                yield from _regex_fields(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _regex_fields(item, f"{path}[{index}]")


def _regexes(body: Spec, path: str, found: list[str]) -> None:
    """Regexes Envoy's RE2 certainly cannot compile (every Envoy would NACK the route)."""
    for where, pattern in _regex_fields(body, path):
        reason = regexes.certainly_invalid(pattern)
        if reason is not None:
            found.append(f"{where}: {pattern!r} is not a valid regular expression: {reason}")


def _retry_policy(policy: Spec | None, path: str, found: list[str]) -> None:
    if policy is None:
        return
    events = ("httpRetryEvents", "tcpRetryEvents", "grpcRetryEvents")
    if not any(policy.get(e) for e in events):
        found.append(f"{path}: needs at least one of {', '.join(events)}")


def _targets(targets: Any, path: str, found: list[str]) -> None:
    seen: set[tuple[str, Any]] = set()
    for index, target in enumerate(targets or []):
        ident = (target.get("virtualNode"), target.get("port"))
        if ident in seen:
            found.append(f"{path}[{index}].virtualNode: {ident[0]} is targeted more than once")
        seen.add(ident)


def route(spec: Spec) -> list[str]:
    """One route type (R1), match rules (R2-R4), retry events (R5), distinct targets, regexes."""
    found: list[str] = []
    kind = _exactly_one(spec, ROUTE_TYPES, "spec", found)
    if kind is None:
        return found
    body = spec[kind]
    where = f"spec.{kind}"
    match = body.get("match") or {}
    if kind in ("httpRoute", "http2Route"):
        _http_match(match, f"{where}.match", found, gateway=False)
    if kind == "grpcRoute":
        if match.get("methodName") is not None and match.get("serviceName") is None:
            found.append(f"{where}.match.methodName: requires match.serviceName")
        _header_matches(match.get("metadata"), f"{where}.match.metadata", found)
    _retry_policy(body.get("retryPolicy"), f"{where}.retryPolicy", found)
    _regexes(match, f"{where}.match", found)
    _targets(
        (body.get("action") or {}).get("weightedTargets"), f"{where}.action.weightedTargets", found
    )
    return found


def gateway_route(spec: Spec) -> list[str]:
    """One route type, match and rewrite rules, reserved prefixes and services (R1-R3), regexes."""
    found: list[str] = []
    kind = _exactly_one(spec, GATEWAY_ROUTE_TYPES, "spec", found)
    if kind is None:
        return found
    body = spec[kind]
    where = f"spec.{kind}"
    match = body.get("match") or {}
    if kind == "grpcRoute":
        service = match.get("serviceName")
        if service is not None and service.startswith(_RESERVED_GRPC_SERVICES):
            found.append(f"{where}.match.serviceName: {service!r} is reserved")
        if match.get("hostname") is not None:
            _exactly_one(match["hostname"], ("exact", "suffix"), f"{where}.match.hostname", found)
        _regexes(match, f"{where}.match", found)
        return found
    _http_match(match, f"{where}.match", found, gateway=True)
    _regexes(match, f"{where}.match", found)
    rewrite = (body.get("action") or {}).get("rewrite") or {}
    if rewrite.get("path") is not None and match.get("path") is None:
        found.append(f"{where}.action.rewrite.path: only valid with a path match")
    if rewrite.get("prefix") is not None and match.get("prefix") is None:
        found.append(f"{where}.action.rewrite.prefix: only valid with a prefix match")
    prefix_rewrite = rewrite.get("prefix") or {}
    if prefix_rewrite.get("value") is not None and prefix_rewrite.get("defaultPrefix") is not None:
        found.append(f"{where}.action.rewrite.prefix: set value or defaultPrefix, not both")
    return found


def _none(spec: Spec) -> list[str]:  # noqa: ARG001 - same signature as every checker
    return []


CHECKERS: dict[str, Callable[[Spec], list[str]]] = {
    "mesh": _none,
    "virtualNode": virtual_node,
    "virtualService": _none,
    "virtualRouter": virtual_router,
    "route": route,
    "virtualGateway": virtual_gateway,
    "gatewayRoute": gateway_route,
}


def problems(kind: str, spec: Spec) -> list[str]:
    """Every semantic rule ``spec`` breaks, for a resource of ``kind``."""
    return CHECKERS[kind](spec)
