"""Who a sidecar is and where it listens: the per-replica input of translation.

App Mesh sidecars bind fixed ports (ingress 15000, egress 15001) and rely on
iptables to steer traffic. meshplane's local mode has no iptables: every
replica's sidecar gets its own ports on 127.0.0.1, the app reaches the mesh
through ``HTTP_PROXY=http://127.0.0.1:<egress port>``, and the inbound side
listens on one port per virtual-node listener. :class:`NodeIdentity` carries
those local facts; absent facts fall back to App Mesh's defaults.

A sidecar whose pod runs ``meshplane proxy-init`` (Kubernetes, or a network
namespace) is *intercepted*: it binds App Mesh's own shape, ``0.0.0.0:15000``
and ``0.0.0.0:15001``, and tells traffic apart by the original destination
iptables preserved, exactly as App Mesh's sidecars did.

How a sidecar reaches a DNS virtual node (:data:`DISCOVERIES`) follows where it runs: on
Kubernetes through the DNS cluster App Mesh sent; in local mode through the endpoints the
runtime registered for the node's replicas, falling back to DNS when none are; and in a
network namespace of ``meshplane up --isolation netns`` through registered endpoints only —
there a replica is registered once its app and Envoy are ready and withdrawn when it exits,
and the namespaces reach no DNS server (their hosts files are all there is, and Envoy's
resolver re-reads a hosts file only once a minute).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from meshplane.model import kinds, naming

DEFAULT_BIND_ADDRESS = "127.0.0.1"
INTERCEPTED_BIND_ADDRESS = "0.0.0.0"
"""An intercepted sidecar serves its pod IP, where iptables redirects to."""
INTERCEPTION_IPTABLES = "iptables"
"""The node-metadata value (``meshplane.interception``) of a sidecar behind proxy-init's rules."""
ENDPOINTS_REGISTERED = "registered"
"""The node-metadata value (``meshplane.endpoints``) of a sidecar whose callees are reached only
through registered endpoints (``meshplane up --isolation netns``)."""
DNS_FIRST = "dns-first"
"""Intercepted, on Kubernetes: a DNS node's DNS cluster, even with endpoints registered."""
REGISTERED_FIRST = "registered-first"
"""Local mode: a node's registered endpoints (EDS); its DNS cluster only when none are."""
REGISTERED_ONLY = "registered-only"
"""``up --isolation netns``: registered endpoints only (EDS, empty until a replica is ready)."""
DISCOVERIES = (DNS_FIRST, REGISTERED_FIRST, REGISTERED_ONLY)
DEFAULT_INGRESS_PORT = 15000
"""App Mesh's inbound port; every virtual-node listener shares it unless told otherwise."""
DEFAULT_EGRESS_PORT = 15001
"""App Mesh's outbound port."""
DEFAULT_APP_HOST = "127.0.0.1"
"""Where the local app listens (App Mesh's local cluster is STATIC 127.0.0.1:<port>)."""

KINDS = naming.NODE_KINDS
DEFAULT_TRUST_DOMAIN = "meshplane.local"
"""``MESHPLANE_TRUST_DOMAIN``'s default: SPIFFE IDs ``spiffe://meshplane.local/mesh/…``."""


@dataclasses.dataclass(frozen=True)
class NodeIdentity:
    """One sidecar: its App Mesh resource plus the local facts of its replica."""

    mesh: str
    kind: str
    """``virtualNode`` or ``virtualGateway``."""
    name: str
    bind_address: str = DEFAULT_BIND_ADDRESS
    egress_port: int = DEFAULT_EGRESS_PORT
    ingress_ports: Mapping[int, int] = dataclasses.field(default_factory=dict, hash=False)
    """Listener ``portMapping.port`` → the port the sidecar binds for it."""
    app_addresses: Mapping[int, tuple[str, int]] = dataclasses.field(
        default_factory=dict, hash=False
    )
    """Listener ``portMapping.port`` → (host, port) where the local app serves it."""
    intercepted: bool = False
    """iptables redirects the pod's TCP to this sidecar (App Mesh's layout, not ``HTTP_PROXY``)."""
    tcp_ports: Mapping[str, int] = dataclasses.field(default_factory=dict, hash=False)
    """TCP backend virtual service → the loopback port the runtime announced to the app for it."""
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    """The SPIFFE trust domain of automatic mTLS's identities (the control plane's setting)."""
    registered_only: bool = False
    """Callees only through registered endpoints, never DNS (``up --isolation netns``)."""

    @property
    def discovery(self) -> str:
        """How this sidecar reaches a DNS virtual node: one of :data:`DISCOVERIES`."""
        if self.registered_only:
            return REGISTERED_ONLY
        if self.intercepted and self.kind == kinds.VIRTUAL_NODE.key:
            return DNS_FIRST
        return REGISTERED_FIRST

    @property
    def node_id(self) -> str:
        """The Envoy node id App Mesh's injector sets: ``mesh/<mesh>/virtualNode/<name>``."""
        return naming.node_id(self.mesh, self.kind, self.name)

    @classmethod
    def from_node_id(cls, node_id: str) -> NodeIdentity | None:
        """Parse ``mesh/M/virtualNode/N`` or its ARN form; ``None`` if it is neither.

        The owner of a shared mesh (``mesh@owner``) is not part of the identity.
        """
        ref = naming.parse_node_id(node_id)
        if ref is None:
            return None
        return cls(mesh=ref.mesh, kind=ref.kind, name=ref.name)

    def ingress_port(self, listener_port: int) -> int:
        """The port this sidecar binds for a listener.

        Virtual nodes default to App Mesh's shared 15000; virtual gateways bind
        the listener's own port, as App Mesh's gateways do.
        """
        default = DEFAULT_INGRESS_PORT if self.kind == kinds.VIRTUAL_NODE.key else listener_port
        return self.ingress_ports.get(listener_port, default)

    def app_address(self, listener_port: int) -> tuple[str, int]:
        """Where the local app serves a listener (default ``127.0.0.1:<listener port>``)."""
        return self.app_addresses.get(listener_port, (DEFAULT_APP_HOST, listener_port))
