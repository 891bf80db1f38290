"""The "nothing silently ignored" registry: what translation does with each App Mesh spec member.

botocore's App Mesh model has a few hundred spec members across the seven resources.
A member is *translated* when Envoy's behaviour follows it; most are shown so by the
golden cases (``tests/translate/cases``). :data:`REGISTRY` records the others: members
the goldens do not exercise but shared code translates (``http2Route`` matches are built
by the ``httpRoute`` code), members the TLS translation owns, and members meshplane
accepts but does not translate, with the sentence users get. A test walks botocore's
model and fails on any member that is neither in a golden case nor here.

Paths are ``<Resource>.<member>.<member>…`` in the API's wire names, list elements
transparent (``VirtualNode.listeners.healthCheck.port``). An entry covers its members
too, unless a longer entry says otherwise. :func:`untranslated` finds, in one spec, the
accepted members that change nothing, so ``meshplane apply`` and ``proxy-status`` can
say so instead of staying silent.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any

TRANSLATED = "translated"
NOT_TRANSLATED = "not translated"
TLS = "translated by translate.tls"
"""Listener and client-policy TLS: translated by :mod:`meshplane.translate.tls` (its goldens and
the botocore TLS-member test cover them; what it cannot honour it warns about itself)."""


@dataclasses.dataclass(frozen=True)
class Status:
    """One registry entry: the state and, for users, why."""

    state: str
    note: str


def _shared(note: str) -> Status:
    return Status(TRANSLATED, note)


def _ignored(note: str) -> Status:
    return Status(NOT_TRANSLATED, note)


_TLS = Status(TLS, "listener and client-policy TLS are translated by translate/tls.py")
_HTTP_MATCH = "built by the same code as httpRoute's match (translate.routes.build_match)"
_HTTP_ROUTE = "built by the same code as httpRoute (translate.routes, translate.retries)"
_GATEWAY_HTTP = "built by the same code as the gateway's httpRoute (translate.gateways)"

REGISTRY: dict[str, Status] = {
    # -- TLS -------------------------------------------------------------------------------
    "VirtualNode.backendDefaults": _TLS,
    "VirtualNode.backends.virtualService.clientPolicy": _TLS,
    "VirtualNode.listeners.tls": _TLS,
    "VirtualGateway.backendDefaults": _TLS,
    "VirtualGateway.listeners.tls": _TLS,
    # -- virtual nodes ---------------------------------------------------------------------
    "VirtualNode.listeners.connectionPool": _shared(
        "each protocol's pool becomes circuit breakers on the local cluster (translate.specs.pool)"
    ),
    "VirtualNode.listeners.timeout": _shared(
        "each protocol's timeouts are read by translate.specs.Listener for its protocol"
    ),
    "VirtualNode.listeners.healthCheck.port": _shared(
        "must equal the listener port (model rule), which is where callers' health checks go"
    ),
    "VirtualNode.logging.accessLog.file.format.text": _shared(
        "a text format becomes the access log's text_format_source (translate.listeners)"
    ),
    "VirtualNode.serviceDiscovery.awsCloudMap": _shared(
        "callers get the endpoints registered under the same namespace and service whose "
        "attributes match (translate.cloudmap); what Cloud Map itself did is warned about "
        "with cloudmap-emulated"
    ),
    "VirtualNode.serviceDiscovery.awsCloudMap.ipPreference": _shared(
        "the IP preference picks the cluster's DNS lookup family, as for dns"
    ),
    # -- routes ----------------------------------------------------------------------------
    "Route.grpcRoute.action.weightedTargets.port": _shared(
        "picks the target node's listener, as for httpRoute (translate.plan)"
    ),
    "Route.grpcRoute.match.metadata": _shared(
        "metadata matches are header matches, built by the httpRoute header code"
    ),
    "Route.grpcRoute.match.port": _shared("picks the router listener, as for httpRoute"),
    "Route.grpcRoute.retryPolicy.tcpRetryEvents": _shared(
        "connection-error retries, as for httpRoute (translate.retries)"
    ),
    "Route.grpcRoute.timeout.idle": _shared("the route's idle timeout, as for httpRoute"),
    "Route.http2Route": _shared(_HTTP_ROUTE),
    "Route.http2Route.match": _shared(_HTTP_MATCH),
    "Route.httpRoute.match.scheme": _shared("a :scheme header match (translate.routes)"),
    "Route.tcpRoute.action.weightedTargets.port": _shared(
        "picks the target node's listener (translate.plan)"
    ),
    "Route.tcpRoute.match": _shared("the port picks the router listener (translate.plan)"),
    # -- virtual gateways ------------------------------------------------------------------
    "VirtualGateway.listeners.connectionPool": _shared(
        "each protocol's pool becomes circuit breakers on the self-redirect cluster"
    ),
    "VirtualGateway.listeners.healthCheck": _ignored(
        "a gateway's own health check was the load balancer's business; meshplane's publish "
        "forwarder sends traffic to every ready gateway replica without probing it"
    ),
    "VirtualGateway.logging": _shared(
        "the gateway's access log, built by the virtual node's logging code (translate.listeners)"
    ),
    # -- gateway routes --------------------------------------------------------------------
    "GatewayRoute.grpcRoute.action.rewrite": _shared(
        "hostname rewrite, as for the gateway's httpRoute (translate.gateways)"
    ),
    "GatewayRoute.grpcRoute.action.target.port": _shared(
        "the target's port in the rewritten Host (translate.gateways)"
    ),
    "GatewayRoute.grpcRoute.match.hostname": _shared(
        "an :authority match that allows a :port, as for the gateway's httpRoute"
    ),
    "GatewayRoute.grpcRoute.match.metadata": _shared(
        "metadata matches are header matches (translate.routes)"
    ),
    "GatewayRoute.http2Route": _shared(_GATEWAY_HTTP),
    "GatewayRoute.httpRoute.action.rewrite.prefix.defaultPrefix": _shared(
        "DISABLED keeps the matched prefix (translate.gateways)"
    ),
    "GatewayRoute.httpRoute.match": _shared(_HTTP_MATCH),
}

_INDEX = re.compile(r"\[\d+\]")


def status(path: str) -> Status | None:
    """The most specific entry covering ``path`` (list indices ignored), or ``None``."""
    parts = _INDEX.sub("", path).split(".")
    for length in range(len(parts), 0, -1):
        found = REGISTRY.get(".".join(parts[:length]))
        if found is not None:
            return found
    return None


def untranslated(resource: str, spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(field path, note)`` for each accepted member of ``spec`` that translation ignores.

    ``resource`` is the API resource (``VirtualNode``); ``spec`` its wire form (or a
    manifest's spec where the names agree). Paths start at ``spec`` and carry list
    indices (``spec.listeners[0].healthCheck.port``); a member's children are not
    reported again.
    """
    yield from _walk(resource, "spec", spec)


def _above_untranslated() -> frozenset[str]:
    """Every registry path that is, or leads to, a not-translated member.

    The walk goes down only these: below any other member nothing can be reported, so a
    sidecar's spec that uses none of them (most do) costs a look-up per top-level member.
    """
    found: set[str] = set()
    for path, entry in REGISTRY.items():
        if entry.state == NOT_TRANSLATED:
            parts = path.split(".")
            found.update(".".join(parts[:length]) for length in range(1, len(parts) + 1))
    return frozenset(found)


_LEADS_TO_UNTRANSLATED = _above_untranslated()


def _walk(registry_path: str, shown: str, value: Any) -> Iterator[tuple[str, str]]:
    if registry_path not in _LEADS_TO_UNTRANSLATED:
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(registry_path, f"{shown}[{index}]", item)
        return
    if not isinstance(value, Mapping):
        return
    for key, item in value.items():
        here = f"{registry_path}.{key}"
        if here not in _LEADS_TO_UNTRANSLATED:
            continue
        label = f"{shown}.{key}"
        entry = REGISTRY.get(here)
        if entry is not None and entry.state == NOT_TRANSLATED:
            yield label, entry.note
            continue
        yield from _walk(here, label, item)
