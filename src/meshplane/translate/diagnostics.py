"""Translation warnings as values: which resource, a stable code, and the sentence users read.

Translation never fails a push: a piece it cannot use is skipped and a
:class:`Warning` recorded. Kubernetes conditions, ``meshplane proxy-status``
and a console each need the same three facts: the resource to attach it to
(its ARN path, ``mesh/demos/virtualRouter/vr/route/r``, the form node ids
use), a ``code`` a program can branch on (one of :data:`CODES`, stable across
releases), and the ``message`` shown to people, which is exactly the text
meshplane has always printed.
"""

from __future__ import annotations

import dataclasses

from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey

CODES = frozenset(
    {
        "mesh-not-found",
        "wrong-mesh",
        "node-not-found",
        "gateway-not-found",
        "listener-binds-egress-port",
        "service-not-found",
        "service-no-provider",
        "provider-not-found",
        "provider-no-listeners",
        "router-no-listeners",
        "route-type-count",
        "route-type-mismatch",
        "route-no-targets",
        "route-zero-weights",
        "target-not-found",
        "target-no-listener",
        "mirror-unusable",
        "tcp-port-taken",
        "tcp-zero-weights",
        "tcp-port-shared-with-http",
        "no-discovery",
        "gateway-route-type-count",
        "gateway-target-not-found",
        "gateway-hostname-rewrite",
        "tls-certificate-missing",
        "tls-trust-missing",
        "tls-acm-builtin-ca",
        "tls-policy-conflict",
        "tls-no-ca",
        "tls-identity-not-own",
        "tls-san-mismatch",
        "gateway-route-no-listener",
        "field-not-translated",
        "cloudmap-emulated",
    }
)
"""Every code translation emits; a new one is added here (and to the changelog)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Warning:  # shadows the builtin here only; used qualified: diagnostics.Warning
    """One skipped or degraded piece of a translation."""

    resource: str
    """ARN path of the resource it concerns (a node id is one)."""
    code: str
    """One of :data:`CODES`."""
    message: str
    """The sentence shown to people (proxy-status, logs, conditions)."""

    def __post_init__(self) -> None:
        """Refuse an unregistered code, so every code a program sees is documented."""
        if self.code not in CODES:
            raise ValueError(f"unknown warning code {self.code!r}")

    def __str__(self) -> str:
        """The message, as meshplane has always printed it."""
        return self.message

    def as_json(self) -> dict[str, str]:
        """The three facts as a JSON object (``/meshplane/v1``, conditions)."""
        return {"resource": self.resource, "code": self.code, "message": self.message}


def of(key: ResourceKey, code: str, message: str) -> Warning:
    """A warning about the resource at ``key``."""
    return Warning(kinds.path(key), code, message)


def service(mesh: str, name: str, code: str, message: str) -> Warning:
    """A warning about virtual service ``name``."""
    return of(ResourceKey.of(kinds.VIRTUAL_SERVICE, mesh, name), code, message)


def node(mesh: str, name: str, code: str, message: str) -> Warning:
    """A warning about virtual node ``name``."""
    return of(ResourceKey.of(kinds.VIRTUAL_NODE, mesh, name), code, message)
