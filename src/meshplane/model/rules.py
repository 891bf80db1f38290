"""App Mesh's rules that the service model cannot state (``appmesh-api.md`` §8), defined once.

Each rule is a small function over one part of a spec (a match, a listener
list, a rewrite) and a field path, and returns :class:`~meshplane.model.problems.Problem`
values naming the rule by its id (the catalogue is :mod:`meshplane.model.problems`).
The parts have the same shape in an App Mesh API spec and in a v1beta2 manifest
spec, so both front doors apply the same functions, each at its own paths:
the per-kind checkers below for the REST API, :mod:`meshplane.manifests.admission`
for manifests. Rules that need other resources (references, listener ports of
routers and targets, quotas, delete dependencies) live in :mod:`meshplane.service`,
which can read the store.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any

from meshplane.model import kinds, regexes
from meshplane.model.problems import Problem, api_line

Spec = Mapping[str, Any]

ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
GATEWAY_ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute")
HEADER_METHODS = ("exact", "prefix", "range", "regex", "suffix")
RETRY_EVENTS = ("httpRetryEvents", "tcpRetryEvents", "grpcRetryEvents")
_RESERVED_PREFIXES = ("/aws-appmesh", "/aws-app-mesh")
_RESERVED_GRPC_SERVICES = ("aws.appmesh", "aws.app-mesh")

# Which connectionPool / timeout member each listener protocol takes.
_PROTOCOL_MEMBER = {"http": "http", "http2": "http2", "grpc": "grpc", "tcp": "tcp"}


def join(path: str, member: str) -> str:
    """Extend a dotted field path."""
    return f"{path}.{member}" if path else member


# --- resource names ---------------------------------------------------------------------

MAX_NAME_URI_BYTES = 4096
"""A name's URI form (percent-encoded UTF-8) is at most this long. Describe and delete put
up to three names in one request line (mesh, router, route), so with the API's request
line limit of 16 KiB every name that can be created can also be described and deleted;
any ``ResourceName`` (255 characters at most) fits, only an overlong ``ServiceName`` does not."""
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def uri_size(name: str) -> int:
    """The length of ``name`` percent-encoded as a URI path segment (RFC 3986 unreserved kept)."""
    return sum(
        1 if char in _UNRESERVED else 3 * len(char.encode("utf-8", "surrogatepass"))
        for char in name
    )


def name(value: str, path: str) -> list[Problem]:
    """``name-no-slash``, ``name-not-dots``, ``name-uri-length``: a name that stays reachable.

    Every resource that can be created must stay describable and deletable through its
    URI, and own its ARN alone.
    """
    if "/" in value:
        return [Problem(path, "name-no-slash", {"name": value})]
    if value in {".", ".."}:
        return [Problem(path, "name-not-dots", {"name": value})]
    size = uri_size(value)
    if size > MAX_NAME_URI_BYTES:
        return [Problem(path, "name-uri-length", {"size": size, "limit": MAX_NAME_URI_BYTES})]
    return []


# --- rules shared by both front doors --------------------------------------------------


def chosen(value: Spec, members: tuple[str, ...]) -> str | None:
    """The one member of a union that is set, or ``None`` when none or several are."""
    present = [m for m in members if value.get(m) is not None]
    return present[0] if len(present) == 1 else None


def exactly_one(value: Spec, members: tuple[str, ...], path: str) -> list[Problem]:
    """``exactly-one``: a union sets exactly one of ``members``."""
    present = [m for m in members if value.get(m) is not None]
    if len(present) == 1:
        return []
    return [Problem(path, "exactly-one", {"members": members, "present": present})]


def service_discovery(spec: Spec, path: str) -> list[Problem]:
    """``service-discovery-required``: a node with listeners says how it is discovered."""
    if spec.get("listeners") and spec.get("serviceDiscovery") is None:
        return [Problem(join(path, "serviceDiscovery"), "service-discovery-required")]
    return []


def repeated(entries: Iterable[tuple[Hashable, str, str]], rule: str) -> list[Problem]:
    """A uniqueness rule: every ``(identity, path, shown)`` whose identity came before."""
    seen: set[Hashable] = set()
    found = []
    for identity, path, shown in entries:
        if identity in seen:
            found.append(Problem(path, rule, {"identity": shown}))
        seen.add(identity)
    return found


def prefix_and_path(match: Spec, path: str, *, required: bool) -> list[Problem]:
    """``prefix-xor-path``, and ``prefix-or-path`` where the match must set one."""
    has_prefix, has_path = match.get("prefix") is not None, match.get("path") is not None
    if has_prefix and has_path:
        return [Problem(path, "prefix-xor-path")]
    if required and not has_prefix and not has_path:
        return [Problem(path, "prefix-or-path")]
    return []


def prefix_slash(match: Spec, path: str) -> list[Problem]:
    """``prefix-slash``: a prefix match starts with ``/``."""
    prefix = match.get("prefix")
    if prefix is not None and not prefix.startswith("/"):
        return [Problem(join(path, "prefix"), "prefix-slash", {"prefix": prefix})]
    return []


def header_matches(
    headers: Any, path: str, *, what: str = "header", methods: bool = False
) -> list[Problem]:
    """``header-range-order`` for every header (or gRPC metadata) match under ``path``.

    With ``methods`` also ``header-match-one``, for a door whose shape check
    does not already treat the match as a union (the v1beta2 schema does not).
    """
    found = []
    for index, header in enumerate(headers or []):
        here = f"{path}[{index}].match"
        match = header.get("match")
        if match is None:
            continue
        if methods:
            present = [m for m in HEADER_METHODS if match.get(m) is not None]
            if len(present) != 1:
                found.append(Problem(here, "header-match-one", {"present": present, "what": what}))
                continue
        span = match.get("range")
        if span and span.get("start") is not None and span["start"] >= span.get("end", 0):
            found.append(Problem(f"{here}.range", "header-range-order"))
    return found


def rewrite_prefix_one(rewrite: Spec, path: str) -> list[Problem]:
    """``rewrite-prefix-one``: a prefix rewrite sets value or defaultPrefix, not both."""
    prefix = rewrite.get("prefix") or {}
    if prefix.get("value") is not None and prefix.get("defaultPrefix") is not None:
        return [Problem(join(path, "prefix"), "rewrite-prefix-one")]
    return []


# --- rules of the v1beta2 shapes (the webhook applied them; see problems.RULES) --------


def gateway_match_required(match: Spec, path: str) -> list[Problem]:
    """``gateway-match-required``: a gateway route's HTTP match sets prefix, path or hostname."""
    if all(match.get(m) is None for m in ("prefix", "path", "hostname")):
        return [Problem(path, "gateway-match-required")]
    return []


def grpc_gateway_match(match: Spec, path: str) -> list[Problem]:
    """``grpc-gateway-match-required``: a gRPC gateway route matches a service or a hostname."""
    if match.get("serviceName") is None and match.get("hostname") is None:
        return [Problem(path, "grpc-gateway-match-required")]
    return []


def query_exact(queries: Any, path: str) -> list[Problem]:
    """``query-exact-required``: every query parameter match gives its exact value."""
    return [
        Problem(f"{path}[{index}].match", "query-exact-required")
        for index, query in enumerate(queries or [])
        if (query.get("match") or {}).get("exact") is None
    ]


def rewrite_block(rewrite: Spec, path: str) -> list[Problem]:
    """A gateway route's rewrite: something to rewrite, prefix xor path, a well-formed prefix."""
    found = []
    if all(rewrite.get(m) is None for m in ("prefix", "path", "hostname")):
        found.append(Problem(path, "rewrite-required"))
    if rewrite.get("prefix") is not None and rewrite.get("path") is not None:
        found.append(Problem(path, "rewrite-prefix-xor-path"))
    found += rewrite_prefix_one(rewrite, path)
    value = (rewrite.get("prefix") or {}).get("value")
    if value is not None and not (value.startswith("/") and value.endswith("/")):
        found.append(Problem(join(path, "prefix.value"), "rewrite-prefix-slashes"))
    return found


def connection_pool_one(listeners: Any, resource: str) -> list[Problem]:
    """``connection-pool-one``: a listener sets at most one connection pool."""
    return [
        Problem(f"spec.listeners[{index}].connectionPool", "connection-pool-one", {"of": resource})
        for index, listener in enumerate(listeners or [])
        if len([v for v in (listener.get("connectionPool") or {}).values() if v is not None]) > 1
    ]


def ref_or_arn(value: Spec, path: str, ref: str, arn: str, kind: kinds.Kind) -> list[Problem]:
    """``ref-or-arn`` and ``arn-kind``: a v1beta2 reference names its target one right way."""
    has_ref, has_arn = value.get(ref) is not None, value.get(arn) is not None
    if has_ref == has_arn:
        return [Problem(path, "ref-or-arn", {"members": (ref, arn)})]
    if has_arn:
        parsed = kinds.parse_arn(value[arn])
        if parsed is None or parsed[2].kind != kind.key:
            return [Problem(join(path, arn), "arn-kind", {"arn": value[arn], "kind": kind.title})]
    return []


# --- the REST API's checkers, one per kind ---------------------------------------------


def _listeners(spec: Spec, path: str) -> list[Problem]:
    found: list[Problem] = []
    seen: set[int] = set()
    for index, listener in enumerate(spec.get("listeners") or []):
        where = f"{path}.listeners[{index}]"
        mapping = listener.get("portMapping") or {}
        port, protocol = mapping.get("port"), mapping.get("protocol")
        if not isinstance(port, int):
            continue
        if port in seen:
            # (Not ``path``: rebinding the parameter grew every later path, quadratically.)
            found.append(
                Problem(f"{where}.portMapping.port", "listener-port-unique", {"port": port})
            )
        seen.add(port)
        for union in ("connectionPool", "timeout"):
            members = [m for m, v in (listener.get(union) or {}).items() if v is not None]
            expected = _PROTOCOL_MEMBER.get(protocol or "")
            if members and members != [expected]:
                facts = {
                    "protocol": protocol,
                    "union": union,
                    "expected": expected,
                    "chosen": members[0],
                }
                found.append(Problem(f"{where}.{union}", "listener-protocol-member", facts))
        check = listener.get("healthCheck") or {}
        if check.get("port") is not None and check["port"] != port:
            facts = {"port": port, "got": check["port"]}
            found.append(Problem(f"{where}.healthCheck.port", "health-check-port", facts))
    return found


def _virtual_node(spec: Spec) -> list[Problem]:
    """Listener rules, service discovery, unique backends."""
    found = _listeners(spec, "spec") + service_discovery(spec, "spec")
    entries = []
    for index, backend in enumerate(spec.get("backends") or []):
        service = str((backend.get("virtualService") or {}).get("virtualServiceName"))
        path = f"spec.backends[{index}].virtualService.virtualServiceName"
        entries.append((service, path, service))
    return found + repeated(entries, "backend-unique")


def _virtual_gateway(spec: Spec) -> list[Problem]:
    """At least one listener; listener rules as for nodes."""
    found: list[Problem] = []
    if not spec.get("listeners"):
        found.append(Problem("spec.listeners", "gateway-listener-required"))
    return found + _listeners(spec, "spec")


def _http_match(match: Spec, path: str, *, gateway: bool) -> list[Problem]:
    found = prefix_and_path(match, path, required=not gateway)
    found += prefix_slash(match, path)
    prefix = match.get("prefix")
    if gateway and prefix is not None and prefix.startswith(_RESERVED_PREFIXES):
        found.append(Problem(f"{path}.prefix", "reserved-prefix", {"prefix": prefix}))
    if match.get("path") is not None:
        found += exactly_one(match["path"], ("exact", "regex"), f"{path}.path")
    if gateway and match.get("hostname") is not None:
        found += exactly_one(match["hostname"], ("exact", "suffix"), f"{path}.hostname")
    return found + header_matches(match.get("headers"), f"{path}.headers")


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


def _regexes(body: Spec, path: str) -> list[Problem]:
    """Regexes Envoy's RE2 certainly cannot compile (every Envoy would NACK the route)."""
    found = []
    for where, pattern in _regex_fields(body, path):
        reason = regexes.certainly_invalid(pattern)
        if reason is not None:
            found.append(Problem(where, "regex-valid", {"pattern": pattern, "reason": reason}))
    return found


def _retry_policy(policy: Spec | None, path: str) -> list[Problem]:
    if policy is None or any(policy.get(e) for e in RETRY_EVENTS):
        return []
    return [Problem(path, "retry-event-required", {"members": RETRY_EVENTS})]


def _targets(targets: Any, path: str) -> list[Problem]:
    entries = [
        ((t.get("virtualNode"), t.get("port")), f"{path}[{i}].virtualNode", t.get("virtualNode"))
        for i, t in enumerate(targets or [])
    ]
    return repeated(entries, "target-unique")


RouteCheck = Callable[[str, Spec, str, Spec], list[Problem]]


def _typed(types: tuple[str, ...], check: RouteCheck) -> Callable[[Spec], list[Problem]]:
    """A route checker: ``exactly-one`` route type, then ``check(type, body, path, match)``."""

    def checker(spec: Spec) -> list[Problem]:
        kind = chosen(spec, types)
        if kind is None:
            return exactly_one(spec, types, "spec")
        body = spec[kind]
        return check(kind, body, f"spec.{kind}", body.get("match") or {})

    return checker


def _route(kind: str, body: Spec, where: str, match: Spec) -> list[Problem]:
    """Match rules, retry events, distinct targets, regexes."""
    found: list[Problem] = []
    if kind in ("httpRoute", "http2Route"):
        found += _http_match(match, f"{where}.match", gateway=False)
    if kind == "grpcRoute":
        if match.get("methodName") is not None and match.get("serviceName") is None:
            found.append(Problem(f"{where}.match.methodName", "grpc-method-needs-service"))
        found += header_matches(match.get("metadata"), f"{where}.match.metadata")
    found += _retry_policy(body.get("retryPolicy"), f"{where}.retryPolicy")
    found += _regexes(match, f"{where}.match")
    targets = (body.get("action") or {}).get("weightedTargets")
    return found + _targets(targets, f"{where}.action.weightedTargets")


def _gateway_route(kind: str, body: Spec, where: str, match: Spec) -> list[Problem]:
    """Match and rewrite rules, reserved prefixes and services, regexes."""
    found: list[Problem] = []
    if kind == "grpcRoute":
        service = match.get("serviceName")
        if service is not None and service.startswith(_RESERVED_GRPC_SERVICES):
            path = f"{where}.match.serviceName"
            found.append(Problem(path, "reserved-grpc-service", {"service": service}))
        if match.get("hostname") is not None:
            found += exactly_one(match["hostname"], ("exact", "suffix"), f"{where}.match.hostname")
        return found + _regexes(match, f"{where}.match")
    found += _http_match(match, f"{where}.match", gateway=True)
    found += _regexes(match, f"{where}.match")
    rewrite = (body.get("action") or {}).get("rewrite") or {}
    rpath = f"{where}.action.rewrite"
    if rewrite.get("path") is not None and match.get("path") is None:
        found.append(Problem(f"{rpath}.path", "rewrite-path-needs-path-match"))
    if rewrite.get("prefix") is not None and match.get("prefix") is None:
        found.append(Problem(f"{rpath}.prefix", "rewrite-prefix-needs-prefix-match"))
    return found + rewrite_prefix_one(rewrite, rpath)


def _none(spec: Spec) -> list[Problem]:  # noqa: ARG001 - same signature as every checker
    return []


CHECKERS: dict[str, Callable[[Spec], list[Problem]]] = {
    "mesh": _none,
    "virtualNode": _virtual_node,
    "virtualService": _none,
    "virtualRouter": lambda spec: _listeners(spec, "spec"),
    "route": _typed(ROUTE_TYPES, _route),
    "virtualGateway": _virtual_gateway,
    "gatewayRoute": _typed(GATEWAY_ROUTE_TYPES, _gateway_route),
}


def check(kind: str, spec: Spec) -> list[Problem]:
    """Every semantic rule an API ``spec`` of ``kind`` breaks, as structured problems."""
    return CHECKERS[kind](spec)


def problems(kind: str, spec: Spec) -> list[str]:
    """The same, as the REST API words them (``field path: rule`` lines)."""
    return [api_line(problem) for problem in check(kind, spec)]


# The API's words per kind, for callers that hold one kind's spec.
virtual_node = functools.partial(problems, "virtualNode")
virtual_router = functools.partial(problems, "virtualRouter")
virtual_gateway = functools.partial(problems, "virtualGateway")
route = functools.partial(problems, "route")
gateway_route = functools.partial(problems, "gatewayRoute")
