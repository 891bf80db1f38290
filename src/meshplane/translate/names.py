"""App Mesh's names for the Envoy resources a sidecar receives.

Operators who know App Mesh config dumps recognise these names
(``appmesh-controller.md`` §3.2), so meshplane keeps them. Names contain ``_``
and so do App Mesh names: never parse them back, keep a reverse map instead.
"""

from __future__ import annotations


def ingress_listener(address: str, port: int) -> str:
    """The inbound listener: ``lds_ingress_127.0.0.1_15000``."""
    return f"lds_ingress_{address}_{port}"


def egress_listener(address: str, port: int) -> str:
    """The outbound listener the app's traffic enters: ``lds_egress_127.0.0.1_15001``."""
    return f"lds_egress_{address}_{port}"


def ingress_route_config(protocol: str, port: int) -> str:
    """Route configuration of one inbound listener: ``rds_ingress_http_80``."""
    return f"rds_ingress_{protocol}_{port}"


def egress_route_config(protocol: str, port: int) -> str:
    """Route configuration of the outbound HTTP listener: ``rds_egress_http_15001``."""
    return f"{_EGRESS_ROUTE_CONFIG}{protocol}_{port}"


_EGRESS_ROUTE_CONFIG = "rds_egress_"


def is_egress_route_config(name: str) -> bool:
    """Whether ``name`` is an :func:`egress_route_config` name (the backends' virtual hosts)."""
    return name.startswith(_EGRESS_ROUTE_CONFIG)


def local_cluster(mesh: str, node: str, protocol: str, port: int) -> str:
    """The local app behind one listener: ``cds_ingress_demos_vn-a_http_80``."""
    return f"cds_ingress_{mesh}_{node}_{protocol}_{port}"


def egress_cluster(mesh: str, node: str, protocol: str, port: int) -> str:
    """A target virtual node's listener as seen by callers: ``cds_egress_demos_vn-b_http_80``."""
    return f"cds_egress_{mesh}_{node}_{protocol}_{port}"


def allow_all_cluster(mesh: str) -> str:
    """The passthrough for unmodelled destinations under ALLOW_ALL."""
    return f"cds_egress_{mesh}_mesh-allow-all"


def tunnel_cluster(mesh: str, node: str, egress_port: int) -> str:
    """The egress listener itself, where a terminated CONNECT tunnel's bytes are routed again."""
    return f"cds_egress_{mesh}_{node}_connect_{egress_port}"


TCP_EGRESS_PREFIX = "lds_egress_tcp_"


def tcp_backend_listener(service: str, port: int) -> str:
    """The loopback port of one TCP backend in local mode: ``lds_egress_tcp_db.demos_41234``."""
    return f"{TCP_EGRESS_PREFIX}{service}_{port}"


CONNECT_ROUTE = "connect"
"""The route, last in each egress virtual host, that terminates an HTTP CONNECT tunnel."""


def self_redirect_cluster(
    mesh: str, gateway: str, protocol: str, egress_port: int, listener_port: int | None = None
) -> str:
    """A virtual gateway's hop from a listener into its own egress routing.

    ``listener_port`` is given when the gateway has several listeners.
    """
    middle = f"{listener_port}_{protocol}" if listener_port is not None else protocol
    return f"cds_ingress_{mesh}_{gateway}_self_redirect_{middle}_{egress_port}"


def ingress_stat_prefix(protocol: str, port: int, *, several: bool) -> str:
    """``ingress`` for a single listener, ``ingress.<proto>.<port>`` when there are several."""
    return f"ingress.{protocol}.{port}" if several else "ingress"


ALLOW_ALL_VIRTUAL_HOST = "mesh-allow-all"
"""The catch-all virtual host that sends unknown hosts to the passthrough."""

DNS_CACHE = "meshplane_allow_all_dns_cache"
"""The dynamic forward proxy's DNS cache, shared by its filter and its cluster."""
