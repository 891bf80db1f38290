"""The catalogue of semantic rules: one id per rule, structured problems, App Mesh's wording.

A rule the service model cannot state (one route type, prefix xor path,
serviceDiscovery required, …) is defined once, in :mod:`meshplane.model.rules`,
and reports what it finds as a :class:`Problem`: the field path, the rule id
and the facts a message needs. Each front door renders problems in its own
wording: the REST API in App Mesh's (:func:`api_line`, the table below), the
manifest front door in the controller webhook's
(:mod:`meshplane.manifests.wording`). So both doors refuse the same specs at
the same fields, and the words stay the ones each audience already knows.

Some rules are applied by one door only. ``api`` is ``None`` for a rule the
REST API does not apply itself: either botocore's model already states it for
the API shape (a header match is a tagged union there), or it concerns a
v1beta2-only form (``virtualNodeRef`` or ``virtualNodeARN``) or the webhook
alone refused it. Rules that need the store (references, quotas, listener
ports of targets) live in :mod:`meshplane.service`; rules only the webhook
had (immutability, mesh and gateway membership) in :mod:`meshplane.manifests`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Problem:
    """One broken rule: where, which rule, and the facts a message is made of."""

    path: str
    """The field path, e.g. ``spec.httpRoute.match``."""
    rule: str
    """The rule id, a key of :data:`RULES`."""
    facts: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Wording = str | Callable[[Mapping[str, Any]], str]
"""A fixed message, or one made of the problem's facts."""


def say(wording: Wording, facts: Mapping[str, Any]) -> str:
    """The message ``wording`` gives for ``facts``."""
    return wording if isinstance(wording, str) else wording(facts)


@dataclasses.dataclass(frozen=True)
class Rule:
    """A semantic rule: its id, what it says, and App Mesh's words for breaking it."""

    id: str
    summary: str
    api: Wording | None
    """The REST API's message, or ``None`` where the API does not apply this rule itself."""


def _listed(facts: Mapping[str, Any]) -> str:
    return ", ".join(facts["members"])


def _found(facts: Mapping[str, Any]) -> str:
    present = facts["present"]
    return ", ".join(present) if present else "none"


_CATALOGUE = (
    Rule(
        "exactly-one",
        "a union sets exactly one member",
        lambda f: f"must set exactly one of {_listed(f)} (found {_found(f)})",
    ),
    Rule(
        "listener-port-unique",
        "two listeners of a resource do not share a port",
        lambda f: f"port {f['port']} is used by another listener",
    ),
    Rule(
        "listener-protocol-member",
        "a listener's connectionPool/timeout member is the one of its protocol",
        lambda f: (
            f"a {f['protocol']} listener takes {f['union']}.{f['expected']}, "
            f"not {f['union']}.{f['chosen']}"
        ),
    ),
    Rule(
        "connection-pool-one",
        "a listener sets at most one connection pool",
        None,  # the API's VirtualNodeConnectionPool is a tagged union in botocore's model
    ),
    Rule(
        "health-check-port",
        "a health check probes the listener's own port",
        lambda f: f"must equal the listener port {f['port']}, got {f['got']}",
    ),
    Rule(
        "service-discovery-required",
        "a virtual node with listeners has service discovery",
        "is required when the node has listeners",
    ),
    Rule(
        "backend-unique",
        "a virtual node lists each backend virtual service once",
        lambda f: f"{f['identity']} is listed more than once",
    ),
    Rule(
        "gateway-listener-required",
        "a virtual gateway has at least one listener",
        "a virtual gateway needs at least one listener",
    ),
    Rule(
        "header-match-one",
        "a header or metadata match sets exactly one match method",
        None,  # botocore's HeaderMatchMethod is a tagged union: the shape walk reports it
    ),
    Rule(
        "header-range-order",
        "a header range match starts below its end",
        "start must be below end",
    ),
    Rule(
        "prefix-xor-path",
        "an HTTP match sets prefix or path, not both",
        "set prefix or path, not both",
    ),
    Rule(
        "prefix-or-path",
        "a route's HTTP match sets prefix or path",
        "must set prefix or path",
    ),
    Rule(
        "gateway-match-required",
        "a gateway route's HTTP match sets prefix, path or hostname",
        None,  # the webhook's rule; App Mesh's API accepts a match of headers alone
    ),
    Rule(
        "prefix-slash",
        "a prefix match starts with '/'",
        lambda f: f"must start with '/', got {f['prefix']!r}",
    ),
    Rule(
        "reserved-prefix",
        "a gateway route does not match App Mesh's reserved prefixes",
        lambda f: f"{f['prefix']!r} is reserved (/aws-appmesh*, /aws-app-mesh*)",
    ),
    Rule(
        "reserved-grpc-service",
        "a gateway route does not match App Mesh's reserved gRPC services",
        lambda f: f"{f['service']!r} is reserved",
    ),
    Rule(
        "grpc-gateway-match-required",
        "a gRPC gateway route matches a serviceName or a hostname",
        None,  # the webhook's rule
    ),
    Rule(
        "query-exact-required",
        "a query parameter match gives its exact value",
        None,  # the webhook's rule; the API's QueryParameterMatch is optional
    ),
    Rule(
        "name-no-slash",
        "a resource name holds no '/': it would share its ARN with another resource",
        lambda f: (
            f"{f['name']!r} contains '/', which App Mesh ARNs use as the separator "
            "(mesh/a/virtualNode/b is both mesh 'a/virtualNode/b' and a node of mesh 'a')"
        ),
    ),
    Rule(
        "name-not-dots",
        "a resource name is not '.' or '..': HTTP paths would resolve them away",
        lambda f: (
            f"{f['name']!r} is a path segment every HTTP client and server resolves "
            "away, so the resource could never be described or deleted"
        ),
    ),
    Rule(
        "name-uri-length",
        "a resource name fits its URI: every created resource stays describable and deletable",
        lambda f: (
            f"its URI form (percent-encoded UTF-8) is {f['size']} bytes; at most "
            f"{f['limit']} fit in a request line"
        ),
    ),
    Rule(
        "regex-valid",
        "a regex is one Envoy's RE2 can compile",
        lambda f: f"{f['pattern']!r} is not a valid regular expression: {f['reason']}",
    ),
    Rule(
        "retry-event-required",
        "a retry policy names at least one event list",
        lambda f: f"needs at least one of {_listed(f)}",
    ),
    Rule(
        "target-unique",
        "a route targets each (virtual node, port) once",
        lambda f: f"{f['identity']} is targeted more than once",
    ),
    Rule(
        "route-name-unique",
        "a virtual router's routes have distinct names",
        None,  # the API has one resource per route: a second create is ConflictException
    ),
    Rule(
        "grpc-method-needs-service",
        "a gRPC route matching a methodName also matches a serviceName",
        "requires match.serviceName",
    ),
    Rule(
        "rewrite-path-needs-path-match",
        "a path rewrite goes with a path match",
        "only valid with a path match",
    ),
    Rule(
        "rewrite-prefix-needs-prefix-match",
        "a prefix rewrite goes with a prefix match",
        "only valid with a prefix match",
    ),
    Rule(
        "rewrite-required",
        "a rewrite block rewrites a prefix, a path or the hostname",
        None,  # the webhook's rule
    ),
    Rule(
        "rewrite-prefix-xor-path",
        "a rewrite rewrites the prefix or the path, not both",
        None,  # the webhook's rule
    ),
    Rule(
        "rewrite-prefix-one",
        "a prefix rewrite sets value or defaultPrefix, not both",
        "set value or defaultPrefix, not both",
    ),
    Rule(
        "rewrite-prefix-slashes",
        "a new rewrite prefix starts and ends with '/'",
        None,  # the webhook's rule
    ),
    Rule(
        "ref-or-arn",
        "a v1beta2 reference names its target by ref or by ARN, exactly one",
        None,  # the API names targets by name only
    ),
    Rule(
        "arn-kind",
        "a v1beta2 reference ARN is an ARN of the referenced kind",
        None,  # the API names targets by name only
    ),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _CATALOGUE}


def api_line(problem: Problem) -> str:
    """A problem as the REST API words it: ``field path: message``."""
    wording = RULES[problem.rule].api
    if wording is None:  # pragma: no cover - the API's checkers report only API rules
        raise ValueError(f"rule {problem.rule} has no API wording")
    return f"{problem.path or 'spec'}: {say(wording, problem.facts)}"
