"""Listeners: the sidecar's inbound side per virtual-node listener, and its egress.

Inbound, App Mesh binds one port (15000) and tells listeners apart by the
original destination port that iptables preserved. Local mode binds one port
per listener instead; both shapes come out of the same rule: listeners sharing
a bind port get ``original_dst`` and a ``destination_port`` match per chain, a
listener alone on its port gets one plain chain.

Outbound, the app speaks to the egress port as to an HTTP proxy
(``HTTP_PROXY``): one HTTP connection manager, whose route configuration
holds every backend's virtual hosts, is the default path. TCP backends get a
chain per destination port (reachable when traffic is redirected with its
original destination, as App Mesh does; not through ``HTTP_PROXY``).

An intercepted sidecar (iptables in front, :mod:`meshplane.interception`) is
App Mesh's layout on both sides: every chain matches the original
destination port, HTTP ports included (one route configuration each), and
under ALLOW_ALL a default chain passes any other port through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.filters.http.dynamic_forward_proxy.v3 import dynamic_forward_proxy_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import struct_pb2, wrappers_pb2

from meshplane.translate import clusters, durations, specs, tls
from meshplane.translate.plan import TcpPlan

HCM_FILTER = "envoy.filters.network.http_connection_manager"
TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"
ROUTER_FILTER = "envoy.filters.http.router"
FORWARD_PROXY_FILTER = "envoy.filters.http.dynamic_forward_proxy"
ORIGINAL_DST_FILTER = "envoy.filters.listener.original_dst"
FILE_ACCESS_LOG = "envoy.access_loggers.file"


def build_ingress_listener(
    name: str,
    address: str,
    port: int,
    chains: Sequence[tuple[specs.Listener, listener_components_pb2.Filter]],
    secured: Mapping[int, tls.ServerTls] | None = None,
    *,
    by_destination_port: bool = False,
) -> listener_pb2.Listener:
    """One bound inbound port serving one or several virtual-node listeners.

    ``secured`` maps a listener port to its TLS: STRICT puts the TLS socket on
    the listener's chain; PERMISSIVE adds a second chain for plaintext, the two
    told apart by ``tls_inspector``'s transport protocol. ``by_destination_port``
    matches even a single chain on its original destination port, as behind
    iptables, where every app port lands here.
    """
    secured = secured or {}
    listener = _listener(name, address, port, base_pb2.INBOUND)
    shared = len(chains) > 1 or by_destination_port
    if shared:
        listener.listener_filters.append(_original_dst())
    modes = {secured[entry.port].mode for entry, _ in chains if entry.port in secured}
    if "PERMISSIVE" in modes:
        listener.listener_filters.append(_tls_inspector())
    for node_listener, network_filter in chains:
        server = secured.get(node_listener.port)
        base = f"{node_listener.protocol}_{node_listener.port}"
        variants: list[tuple[str, str | None, tls.ServerTls | None]] = [(base, None, server)]
        if server is not None and server.mode == "PERMISSIVE":
            variants = [(f"{base}_tls", "tls", server), (base, "raw_buffer", None)]
        for chain_name, transport, context in variants:
            chain = listener.filter_chains.add(name=chain_name)
            if shared:
                chain.filter_chain_match.destination_port.value = node_listener.port
            if transport is not None:
                chain.filter_chain_match.transport_protocol = transport
            if context is not None:
                chain.transport_socket.CopyFrom(tls.socket(context.context))
            chain.filters.append(network_filter)
    return listener


def build_egress_listener(
    name: str,
    address: str,
    port: int,
    http_filter: listener_components_pb2.Filter,
    tcp: Sequence[tuple[TcpPlan, listener_components_pb2.Filter]],
) -> listener_pb2.Listener:
    """The outbound port: the HTTP proxy chain, plus one chain per TCP backend port."""
    listener = _listener(name, address, port, base_pb2.OUTBOUND)
    if tcp:
        listener.listener_filters.append(_original_dst())
    http_chain = listener.filter_chains.add(name="http")
    http_chain.filters.append(http_filter)
    for plan, network_filter in tcp:
        chain = listener.filter_chains.add(name=f"tcp_{plan.port}")
        chain.filter_chain_match.destination_port.value = plan.port
        chain.filters.append(network_filter)
    return listener


def build_tcp_backend_listener(
    name: str, address: str, port: int, network_filter: listener_components_pb2.Filter
) -> listener_pb2.Listener:
    """One TCP backend's own loopback port (local mode): every connection is that backend's."""
    listener = _listener(name, address, port, base_pb2.OUTBOUND)
    listener.filter_chains.add(name="tcp").filters.append(network_filter)
    return listener


def build_intercepted_egress_listener(
    name: str,
    address: str,
    port: int,
    chains: Sequence[tuple[str, int, listener_components_pb2.Filter]],
    default: listener_components_pb2.Filter | None,
) -> listener_pb2.Listener:
    """The outbound port behind iptables: a chain per original destination port.

    ``chains`` are (chain name, destination port, network filter); ``default``
    serves every other port (ALLOW_ALL's passthrough), or, when ``None``, such
    connections find no chain and are closed, as under App Mesh's DROP_ALL.
    """
    listener = _listener(name, address, port, base_pb2.OUTBOUND)
    listener.listener_filters.append(_original_dst())
    for chain_name, destination_port, network_filter in chains:
        chain = listener.filter_chains.add(name=chain_name)
        chain.filter_chain_match.destination_port.value = destination_port
        chain.filters.append(network_filter)
    if default is not None:
        listener.default_filter_chain.name = "passthrough"
        listener.default_filter_chain.filters.append(default)
    return listener


def http_connection_manager(
    stat_prefix: str,
    route_config: str,
    *,
    protocol: str,
    logging: specs.Logging | None,
    forward_proxy: bool = False,
    connect: bool = False,
) -> listener_components_pb2.Filter:
    """An HCM filter fetching ``route_config`` over ADS.

    Path normalisation and slash merging are on, as App Mesh turns them on for
    path matching; http listeners accept websocket upgrades. ``forward_proxy``
    adds the dynamic forward proxy filter ALLOW_ALL's passthrough needs; it
    leaves requests routed to ordinary clusters alone. ``connect`` accepts HTTP
    CONNECT (the routes decide which authorities are tunnelled).
    """
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        codec_type=hcm_pb2.HttpConnectionManager.AUTO,
        normalize_path=wrappers_pb2.BoolValue(value=True),
        merge_slashes=True,
        path_with_escaped_slashes_action=hcm_pb2.HttpConnectionManager.KEEP_UNCHANGED,
    )
    manager.rds.route_config_name = route_config
    manager.rds.config_source.ads.SetInParent()
    manager.rds.config_source.resource_api_version = config_source_pb2.V3
    if protocol == "http":
        manager.upgrade_configs.add(upgrade_type="websocket")
    if connect:
        manager.upgrade_configs.add(upgrade_type="CONNECT")
    if forward_proxy:
        proxy = manager.http_filters.add(name=FORWARD_PROXY_FILTER)
        proxy.typed_config.Pack(
            dynamic_forward_proxy_pb2.FilterConfig(dns_cache_config=clusters.dns_cache())
        )
    manager.http_filters.add(name=ROUTER_FILTER).typed_config.Pack(router_pb2.Router())
    manager.access_log.extend(access_logs(logging))
    network_filter = listener_components_pb2.Filter(name=HCM_FILTER)
    network_filter.typed_config.Pack(manager)
    return network_filter


def tcp_proxy(
    stat_prefix: str,
    weighted: Sequence[tuple[str, int]],
    *,
    idle_ms: int,
    logging: specs.Logging | None,
) -> listener_components_pb2.Filter:
    """A tcp_proxy to one cluster, or to weighted clusters when there are several."""
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix)
    if len(weighted) == 1:
        proxy.cluster = weighted[0][0]
    else:
        for cluster, weight in weighted:
            proxy.weighted_clusters.clusters.add(name=cluster, weight=weight)
    proxy.idle_timeout.CopyFrom(durations.of_ms(idle_ms))
    proxy.access_log.extend(access_logs(logging))
    network_filter = listener_components_pb2.Filter(name=TCP_PROXY_FILTER)
    network_filter.typed_config.Pack(proxy)
    return network_filter


def access_logs(logging: specs.Logging | None) -> list[accesslog_pb2.AccessLog]:
    """The node's ``logging.accessLog.file`` as Envoy file access logs (text or JSON)."""
    access_log = logging.access_log if logging is not None else None
    file = access_log.file if access_log is not None else None
    if file is None or not file.path:
        return []
    config = file_pb2.FileAccessLog(path=file.path)
    text = file.format.text if file.format is not None else None
    pairs = file.format.json if file.format is not None else None
    if text is not None:
        config.log_format.text_format_source.inline_string = text
    elif pairs:
        fields = struct_pb2.Struct()
        for pair in pairs:
            fields[pair.key] = pair.value
        config.log_format.json_format.CopyFrom(fields)
    log = accesslog_pb2.AccessLog(name=FILE_ACCESS_LOG)
    log.typed_config.Pack(config)
    return [log]


def _listener(
    name: str, address: str, port: int, direction: base_pb2.TrafficDirection.ValueType
) -> listener_pb2.Listener:
    """A TCP listener bound to ``address:port``."""
    listener = listener_pb2.Listener(name=name, traffic_direction=direction)
    listener.address.socket_address.address = address
    listener.address.socket_address.port_value = port
    return listener


def _tls_inspector() -> listener_components_pb2.ListenerFilter:
    """Detect TLS, so a PERMISSIVE listener's chains can match on the transport protocol."""
    listener_filter = listener_components_pb2.ListenerFilter(name=tls.TLS_INSPECTOR)
    listener_filter.typed_config.Pack(tls_inspector_pb2.TlsInspector())
    return listener_filter


def _original_dst() -> listener_components_pb2.ListenerFilter:
    """Restore the pre-redirect destination so chains can match on its port."""
    listener_filter = listener_components_pb2.ListenerFilter(name=ORIGINAL_DST_FILTER)
    listener_filter.typed_config.Pack(original_dst_pb2.OriginalDst())
    return listener_filter
