"""The xDS resource types meshplane serves, and the names that link them.

A SotW snapshot is consistent only if every EDS name a cluster asks for and every
RDS name a listener asks for is present; these helpers read those references out
of the protos so the xDS layer can check and gate on them without knowing who
built the resources.
"""

from __future__ import annotations

from collections.abc import Iterator

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf import message

_PREFIX = "type.googleapis.com/"
CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"
"""SDS: certificates and trust bundles, requested by name like EDS and RDS."""

TYPE_URLS = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
"""Every served type, in Envoy's own initialisation order (secrets as they are named)."""

WILDCARD_TYPES = frozenset({CLUSTER, LISTENER})
"""Types Envoy subscribes to as a whole: a SotW response must list every resource."""

_HCM_TYPE_URL = _PREFIX + "envoy.extensions.filters.network.http_connection_manager.v3"
_HCM_TYPE_URL += ".HttpConnectionManager"

_MESSAGE_TYPES: dict[str, type[message.Message]] = {
    CLUSTER: cluster_pb2.Cluster,
    LISTENER: listener_pb2.Listener,
    ROUTE: route_pb2.RouteConfiguration,
    ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    SECRET: secret_pb2.Secret,
}


def type_url_of(resource: message.Message) -> str:
    """The xDS type URL of a resource proto; ValueError for unsupported types."""
    full_name: str = resource.DESCRIPTOR.full_name
    type_url = _PREFIX + full_name
    if type_url not in _MESSAGE_TYPES:
        raise ValueError(f"not an xDS resource meshplane serves: {full_name}")
    return type_url


def message_type(type_url: str) -> type[message.Message]:
    """The proto class for a served type URL (used to decode responses)."""
    return _MESSAGE_TYPES[type_url]


def name_of(resource: message.Message) -> str:
    """The xDS resource name: ``name``, or ``cluster_name`` for a load assignment."""
    if isinstance(resource, endpoint_pb2.ClusterLoadAssignment):
        return str(resource.cluster_name)
    return str(getattr(resource, "name"))  # noqa: B009 - every other served type has .name


def endpoint_name(cluster: cluster_pb2.Cluster) -> str | None:
    """The EDS resource an EDS cluster subscribes to, or None for non-EDS clusters."""
    if cluster.type != cluster_pb2.Cluster.EDS:
        return None
    return str(cluster.eds_cluster_config.service_name or cluster.name)


def route_names(listener: listener_pb2.Listener) -> Iterator[str]:
    """The RDS names requested by the HTTP connection managers of a listener."""
    chains = [*listener.filter_chains]
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    for chain in chains:
        for network_filter in chain.filters:
            typed = network_filter.typed_config
            if typed.type_url != _HCM_TYPE_URL:
                continue
            manager = hcm_pb2.HttpConnectionManager()
            typed.Unpack(manager)
            if manager.HasField("rds"):
                yield str(manager.rds.route_config_name)


def references_of(resource: message.Message) -> tuple[str, ...]:
    """The EDS (for a cluster) or RDS (for a listener) names a resource needs, sorted."""
    if isinstance(resource, cluster_pb2.Cluster):
        name = endpoint_name(resource)
        return () if name is None else (name,)
    if isinstance(resource, listener_pb2.Listener):
        return tuple(sorted(set(route_names(resource))))
    return ()
