"""Who a connected Envoy is: its App Mesh resource and its replica's local ports.

The node id is App Mesh's (``mesh/<mesh>/virtualNode/<name>`` or the ARN form);
local mode adds the replica's ports in node metadata, written by the runtime::

    {"meshplane": {"replica": "echo-backend-blue-0",
                   "ingress": {"80": 41231}, "app": {"80": 41230}, "egress": 41232,
                   "tcp": {"db.demos.svc.cluster.local": 41233}}}

(``tcp``: the loopback port the runtime gave each TCP backend and announced to the app.)

A sidecar behind ``meshplane proxy-init``'s iptables rules says so instead, and
gets App Mesh's layout (``0.0.0.0:15000``/``:15001``, original destinations)::

    {"meshplane": {"interception": "iptables"}}

``meshplane up --isolation netns`` adds ``"endpoints": "registered"``: its replicas register
their pod addresses when ready, and its sidecars reach callees through those endpoints only
(:attr:`~meshplane.translate.identity.NodeIdentity.discovery`).
"""

from __future__ import annotations

from typing import Any

from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format

from meshplane.translate.identity import (
    DEFAULT_APP_HOST,
    ENDPOINTS_REGISTERED,
    INTERCEPTED_BIND_ADDRESS,
    INTERCEPTION_IPTABLES,
    NodeIdentity,
)


def _port(value: Any) -> int | None:
    """A port number from node metadata (JSON numbers arrive as floats), else ``None``."""
    if isinstance(value, int | float) and float(value).is_integer() and 0 < value < 65536:
        return int(value)
    return None


def _ports(value: Any) -> dict[int, int]:
    """Listener port → port, keeping only the entries that are ports on both sides."""
    if not isinstance(value, dict):
        return {}
    found = {}
    for key, port in value.items():
        listener = int(key) if str(key).isdecimal() and str(key).isascii() else None
        if listener is not None and (bound := _port(port)) is not None:
            found[listener] = bound
    return found


def _services(value: Any) -> dict[str, int]:
    """Virtual service name → port, keeping only string names with valid ports."""
    if not isinstance(value, dict):
        return {}
    return {
        str(name): bound
        for name, port in value.items()
        if isinstance(name, str) and name and (bound := _port(port)) is not None
    }


STATS_HOST = "127.0.0.1"
"""The stats listener binds loopback only (it has no authentication)."""


def stats_address(node: base_pb2.Node) -> str | None:
    """``host:port`` of the sidecar's read-only stats listener, if its metadata names one.

    Only a port is announced and the host is always loopback, so a proxy cannot point the
    control plane's stats reads (``/meshplane/v1/proxies/stats``) at another machine.
    """
    try:
        metadata = json_format.MessageToDict(node.metadata).get("meshplane")
    except ValueError:
        return None
    port = _port(metadata.get("stats")) if isinstance(metadata, dict) else None
    return None if port is None else f"{STATS_HOST}:{port}"


def identify(node: base_pb2.Node) -> NodeIdentity | None:
    """The identity an Envoy announced, or ``None`` if its node id is not App Mesh's."""
    identity = NodeIdentity.from_node_id(node.id)
    if identity is None:
        return None
    try:
        metadata = json_format.MessageToDict(node.metadata).get("meshplane")
    except ValueError:  # NaN or infinity in a number value: no usable local facts
        return identity
    if not isinstance(metadata, dict):
        return identity
    app = {port: (DEFAULT_APP_HOST, target) for port, target in _ports(metadata.get("app")).items()}
    egress = _port(metadata.get("egress"))
    intercepted = metadata.get("interception") == INTERCEPTION_IPTABLES
    bind = INTERCEPTED_BIND_ADDRESS if intercepted else identity.bind_address
    return NodeIdentity(
        mesh=identity.mesh,
        kind=identity.kind,
        name=identity.name,
        bind_address=str(metadata.get("bind", bind)),
        egress_port=identity.egress_port if egress is None else egress,
        ingress_ports=_ports(metadata.get("ingress")),
        app_addresses=app,
        intercepted=intercepted,
        tcp_ports={} if intercepted else _services(metadata.get("tcp")),
        registered_only=metadata.get("endpoints") == ENDPOINTS_REGISTERED,
    )
