"""Clusters: the local app behind each listener, and each target node's listener.

App Mesh's shapes (``appmesh-controller.md`` §3.3): the local app is STATIC
with a 0.25 s connect timeout and the listener's ``connectionPool`` as its
circuit breakers; a target listener is reached over EDS when endpoints are
registered (Cloud Map's equivalent), else over DNS (LOADBALANCER → LOGICAL_DNS,
ENDPOINTS → STRICT_DNS) with a 1 s connect timeout, circuit breakers
effectively off, and the target listener's outlier detection and health check
applied on the caller's side. http2 and grpc listeners get HTTP/2 upstreams.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import config_source_pb2, health_check_pb2
from envoy.extensions.clusters.dynamic_forward_proxy.v3 import cluster_pb2 as dfp_cluster_pb2
from envoy.extensions.common.dynamic_forward_proxy.v3 import dns_cache_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.v3 import http_pb2

from meshplane.model import specs_generated as g
from meshplane.translate import durations, endpoints, names, specs, tls

LOCAL_CONNECT_TIMEOUT_MS = 250
EGRESS_CONNECT_TIMEOUT_MS = 1000
HTTP_OPTIONS_EXTENSION = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

LOOKUP_FAMILY = {
    "IPv4_ONLY": cluster_pb2.Cluster.V4_ONLY,
    "IPv6_ONLY": cluster_pb2.Cluster.V6_ONLY,
    "IPv4_PREFERRED": cluster_pb2.Cluster.V4_PREFERRED,
    "IPv6_PREFERRED": cluster_pb2.Cluster.AUTO,
}
DEFAULT_LOOKUP_FAMILY = cluster_pb2.Cluster.V4_PREFERRED
"""With no ipPreference, prefer IPv4: local apps listen on 127.0.0.1, not ::1."""


def build_local_cluster(
    name: str, listener: specs.Listener, address: tuple[str, int]
) -> cluster_pb2.Cluster:
    """The local app serving one listener, guarded by the listener's connection pool."""
    cluster = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.STATIC)
    cluster.connect_timeout.CopyFrom(durations.of_ms(LOCAL_CONNECT_TIMEOUT_MS))
    cluster.load_assignment.CopyFrom(endpoints.build_static_assignment(name, *address))
    limits = listener.limits
    cluster.circuit_breakers.thresholds.append(
        _thresholds(
            connections=limits.connections, pending=limits.pending, requests=limits.requests
        )
    )
    _set_protocol(cluster, listener.protocol)
    return cluster


def build_static_cluster(name: str, address: tuple[str, int]) -> cluster_pb2.Cluster:
    """A plain TCP cluster of one fixed address (the sidecar's own egress, for CONNECT tunnels)."""
    cluster = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.STATIC)
    cluster.connect_timeout.CopyFrom(durations.of_ms(LOCAL_CONNECT_TIMEOUT_MS))
    cluster.load_assignment.CopyFrom(endpoints.build_static_assignment(name, *address))
    return cluster


def build_egress_cluster(
    name: str,
    listener: specs.Listener,
    discovery: g.ServiceDiscovery | None,
    *,
    use_eds: bool,
    ip_preference: str | None,
    upstream_tls: tls_pb2.UpstreamTlsContext | None = None,
) -> cluster_pb2.Cluster:
    """A target node's listener as its callers see it (over TLS when ``upstream_tls``).

    Health checks use the cluster's transport socket, so they run over TLS too.
    """
    cluster = cluster_pb2.Cluster(name=name)
    cluster.connect_timeout.CopyFrom(durations.of_ms(EGRESS_CONNECT_TIMEOUT_MS))
    dns = discovery.dns if discovery is not None else None
    if use_eds or dns is None:
        cluster.type = cluster_pb2.Cluster.EDS
        eds = cluster.eds_cluster_config.eds_config
        eds.ads.SetInParent()
        eds.resource_api_version = config_source_pb2.V3
    else:
        cluster.type = (
            cluster_pb2.Cluster.STRICT_DNS
            if dns.response_type == "ENDPOINTS"
            else cluster_pb2.Cluster.LOGICAL_DNS
        )
        cluster.dns_lookup_family = LOOKUP_FAMILY.get(ip_preference or "", DEFAULT_LOOKUP_FAMILY)
        cluster.load_assignment.CopyFrom(
            endpoints.build_static_assignment(name, dns.hostname, listener.port)
        )
    cluster.circuit_breakers.thresholds.append(
        _thresholds(connections=None, pending=None, requests=None, retries=specs.UNLIMITED)
    )
    if listener.outlier_detection is not None:
        cluster.outlier_detection.CopyFrom(_outlier_detection(listener.outlier_detection))
    if listener.health_check is not None:
        cluster.health_checks.append(_health_check(listener.health_check))
    if upstream_tls is not None:
        cluster.transport_socket.CopyFrom(tls.socket(upstream_tls))
    _set_protocol(cluster, listener.protocol)
    return cluster


def build_allow_all_cluster(mesh: str) -> cluster_pb2.Cluster:
    """ALLOW_ALL's passthrough: a dynamic forward proxy resolving each request's Host.

    App Mesh uses an ORIGINAL_DST cluster fed by iptables; local mode has no
    iptables and the app speaks to the egress listener as an HTTP proxy, so
    the destination is the request's authority, which the dynamic forward
    proxy resolves (with the same DNS cache as the HTTP filter).
    """
    cluster = cluster_pb2.Cluster(name=names.allow_all_cluster(mesh))
    cluster.connect_timeout.CopyFrom(durations.of_ms(EGRESS_CONNECT_TIMEOUT_MS))
    cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    config = dfp_cluster_pb2.ClusterConfig(dns_cache_config=dns_cache())
    cluster.cluster_type.name = "envoy.clusters.dynamic_forward_proxy"
    cluster.cluster_type.typed_config.Pack(config)
    return cluster


def build_original_dst_cluster(mesh: str) -> cluster_pb2.Cluster:
    """ALLOW_ALL's passthrough behind iptables: App Mesh's ORIGINAL_DST cluster.

    The connection goes where the app sent it, the address iptables preserved
    and the listener's ``original_dst`` filter restored.
    """
    cluster = cluster_pb2.Cluster(name=names.allow_all_cluster(mesh))
    cluster.type = cluster_pb2.Cluster.ORIGINAL_DST
    cluster.connect_timeout.CopyFrom(durations.of_ms(EGRESS_CONNECT_TIMEOUT_MS))
    cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    return cluster


def dns_cache() -> dns_cache_pb2.DnsCacheConfig:
    """The DNS cache shared by the forward-proxy filter and cluster (they must be equal)."""
    return dns_cache_pb2.DnsCacheConfig(
        name=names.DNS_CACHE, dns_lookup_family=DEFAULT_LOOKUP_FAMILY
    )


def _thresholds(
    *,
    connections: int | None,
    pending: int | None,
    requests: int | None,
    retries: int = specs.UNLIMITED,
) -> circuit_breaker_pb2.CircuitBreakers.Thresholds:
    """Default-priority thresholds; anything unset is App Mesh's 2147483647."""
    thresholds = circuit_breaker_pb2.CircuitBreakers.Thresholds()
    thresholds.max_connections.value = _limit(connections)
    thresholds.max_pending_requests.value = _limit(pending)
    thresholds.max_requests.value = _limit(requests)
    thresholds.max_retries.value = retries
    return thresholds


def _limit(value: int | None) -> int:
    """A positive connection-pool limit, or unlimited."""
    return value if value is not None and value > 0 else specs.UNLIMITED


def _outlier_detection(spec: g.OutlierDetection) -> outlier_detection_pb2.OutlierDetection:
    """Outlier detection: maxServerErrors → consecutive 5xx; the rest as given."""
    detection = outlier_detection_pb2.OutlierDetection()
    detection.consecutive_5xx.value = spec.max_server_errors
    detection.max_ejection_percent.value = spec.max_ejection_percent
    interval = specs.duration_ms(spec.interval)
    if interval is not None:
        detection.interval.CopyFrom(durations.of_ms(interval))
    ejection = specs.duration_ms(spec.base_ejection_duration)
    if ejection is not None:
        detection.base_ejection_time.CopyFrom(durations.of_ms(ejection))
    return detection


def _health_check(spec: g.HealthCheckPolicy) -> health_check_pb2.HealthCheck:
    """An active health check run by each caller against the target's endpoints."""
    check = health_check_pb2.HealthCheck()
    check.timeout.CopyFrom(durations.of_ms(spec.timeout_millis))
    check.interval.CopyFrom(durations.of_ms(spec.interval_millis))
    check.healthy_threshold.value = spec.healthy_threshold
    check.unhealthy_threshold.value = spec.unhealthy_threshold
    if spec.protocol == "tcp":
        check.tcp_health_check.SetInParent()
    elif spec.protocol == "grpc":
        check.grpc_health_check.SetInParent()
    else:
        check.http_health_check.path = spec.path or "/"
        if spec.protocol == "http2":
            check.http_health_check.codec_client_type = http_pb2.HTTP2
    return check


def _set_protocol(cluster: cluster_pb2.Cluster, protocol: str) -> None:
    """http2 and grpc speak HTTP/2 upstream (typed protocol options, as Envoy 1.40 wants)."""
    if protocol not in specs.HTTP2_UPSTREAM:
        return
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.SetInParent()
    cluster.typed_extension_protocol_options[HTTP_OPTIONS_EXTENSION].Pack(options)
