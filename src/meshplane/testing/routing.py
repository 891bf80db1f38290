"""A tiny model of Envoy's HTTP routing, so tests can state behaviour, not proto shape.

Public so users can check their own routes the same way::

    from meshplane.testing import routing
    outcome = routing.route(route_config, host="vs-echo-backend", path="/")
    assert outcome.clusters == (("cds_egress_demos_vn-blue_http_80", 50), ...)

Given a route configuration and a request (Host, path, headers), it answers
what Envoy would do: which virtual host and route match, and either the
weighted clusters the request is split over or the status Envoy answers.
It covers the matchers the translator emits: exact and ``*`` domains, prefix,
path and regex paths, string/range/present header matches with inversion,
query-parameter matches, and CONNECT requests (``method="CONNECT"``, host
``name:port``), which only ``connect_matcher`` routes take.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from envoy.config.route.v3 import route_components_pb2 as route_pb
from envoy.config.route.v3 import route_pb2
from envoy.type.matcher.v3 import string_pb2


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What Envoy does with one request."""

    status: int | None = None
    """Set when Envoy answers itself: 404 (no host or route) or a direct response."""
    clusters: tuple[tuple[str, int], ...] = ()
    """(cluster, weight) pairs the request is split over; one pair with weight 1 for a
    plain cluster route."""
    virtual_host: str | None = None
    route: str | None = None

    @property
    def receiving(self) -> tuple[str, ...]:
        """Clusters with a non-zero share of the traffic."""
        return tuple(name for name, weight in self.clusters if weight > 0)


def route(
    config: route_pb2.RouteConfiguration,
    host: str,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
) -> Outcome:
    """Route one request through ``config`` as Envoy would."""
    virtual_host = _virtual_host(config, host)
    if virtual_host is None:
        return Outcome(status=404)
    bare_path, _, query = path.partition("?")
    request = {k.lower(): v for k, v in (headers or {}).items()}
    request.update({":method": method, ":authority": host, ":path": path, ":scheme": "http"})
    parameters = dict(parse_qsl(query, keep_blank_values=True))
    for candidate in virtual_host.routes:
        if _matches(candidate.match, bare_path, request, parameters):
            return _outcome(virtual_host.name, candidate)
    return Outcome(status=404, virtual_host=virtual_host.name)


def _virtual_host(config: route_pb2.RouteConfiguration, host: str) -> route_pb.VirtualHost | None:
    """Exact domain first, then the longest ``*.suffix``/``prefix*``, then ``*``."""
    host = host.lower()
    best: tuple[int, route_pb.VirtualHost] | None = None
    for virtual_host in config.virtual_hosts:
        for listed in virtual_host.domains:
            domain = listed.lower()
            if domain == host:
                return virtual_host
            score = -1
            if domain == "*":
                score = 0
            elif domain.startswith("*") and host.endswith(domain[1:]):
                score = len(domain) * 2
            elif domain.endswith("*") and host.startswith(domain[:-1]):
                score = len(domain) * 2 - 1
            if score >= 0 and (best is None or score > best[0]):
                best = (score, virtual_host)
    return best[1] if best else None


def _matches(
    match: route_pb.RouteMatch,
    path: str,
    headers: Mapping[str, str],
    parameters: Mapping[str, str],
) -> bool:
    """Path specifier, then every header and query-parameter matcher."""
    specifier = match.WhichOneof("path_specifier")
    # A CONNECT has no path: only a connect_matcher route takes it, and nothing else does.
    if (specifier == "connect_matcher") != (headers.get(":method") == "CONNECT"):
        return False
    if specifier == "prefix" and not path.startswith(match.prefix):
        return False
    if specifier == "path" and path != match.path:
        return False
    if specifier == "safe_regex" and re.fullmatch(match.safe_regex.regex, path) is None:
        return False
    for header in match.headers:
        if _header_matches(header, headers.get(header.name.lower())) == header.invert_match:
            return False
    for parameter in match.query_parameters:
        value = parameters.get(parameter.name)
        if parameter.present_match:
            if value is None:
                return False
        elif value is None or not _string_matches(parameter.string_match, value):
            return False
    return True


def _header_matches(header: route_pb.HeaderMatcher, value: str | None) -> bool:
    """One header matcher before inversion; an absent header matches only nothing."""
    kind = header.WhichOneof("header_match_specifier")
    if kind == "present_match":
        return (value is not None) == bool(header.present_match)
    if value is None:
        return False
    if kind == "string_match":
        return _string_matches(header.string_match, value)
    if kind == "range_match":
        try:
            number = int(value)
        except ValueError:
            return False
        return bool(header.range_match.start <= number < header.range_match.end)
    raise NotImplementedError(kind)


def _string_matches(matcher: string_pb2.StringMatcher, value: str) -> bool:
    """Exact, prefix, suffix, contains or full-regex string matching."""
    kind = matcher.WhichOneof("match_pattern")
    if kind == "exact":
        return value == str(matcher.exact)
    if kind == "prefix":
        return value.startswith(matcher.prefix)
    if kind == "suffix":
        return value.endswith(matcher.suffix)
    if kind == "contains":
        return matcher.contains in value
    if kind == "safe_regex":
        return re.fullmatch(matcher.safe_regex.regex, value) is not None
    raise NotImplementedError(kind)


def _outcome(virtual_host: str, matched: route_pb.Route) -> Outcome:
    """The matched route's action as an outcome."""
    action = matched.WhichOneof("action")
    if action == "direct_response":
        return Outcome(
            status=matched.direct_response.status, virtual_host=virtual_host, route=matched.name
        )
    assert action == "route", action
    target = matched.route
    if target.WhichOneof("cluster_specifier") == "weighted_clusters":
        clusters = tuple((c.name, c.weight.value) for c in target.weighted_clusters.clusters)
    else:
        clusters = ((target.cluster, 1),)
    return Outcome(clusters=clusters, virtual_host=virtual_host, route=matched.name)
