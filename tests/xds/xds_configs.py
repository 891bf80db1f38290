"""Envoy resource builders for the xds tests: one listener, weighted routes, EDS clusters."""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2, message

from meshplane.xds import ResourceEncoder, Snapshot

LISTENER_NAME = "lds_ingress"
ROUTE_NAME = "rds_main"


def _ads() -> config_source_pb2.ConfigSource:
    source = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
    source.ads.SetInParent()  # an empty message must be marked present explicitly
    return source


def _packed(msg: message.Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(msg)
    return packed


def cluster(name: str) -> cluster_pb2.Cluster:
    """An EDS cluster whose endpoints come over ADS."""
    built = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
    built.connect_timeout.FromMilliseconds(5000)  # a starved test backend may accept late
    built.eds_cluster_config.eds_config.CopyFrom(_ads())
    return built


def endpoints(name: str, port: int) -> endpoint_pb2.ClusterLoadAssignment:
    """One endpoint, 127.0.0.1:port, for cluster ``name``."""
    address = address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=port)
    )
    lb_endpoint = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(address=address)
    )
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=name,
        endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[lb_endpoint])],
    )


def listener(
    port: int, route_name: str = ROUTE_NAME, name: str = LISTENER_NAME
) -> listener_pb2.Listener:
    """An HTTP listener on 127.0.0.1:port taking its routes from RDS ``route_name``."""
    manager = hcm_pb2.HttpConnectionManager(stat_prefix="ingress")
    manager.rds.route_config_name = route_name
    manager.rds.config_source.CopyFrom(_ads())
    manager.http_filters.add(
        name="envoy.filters.http.router", typed_config=_packed(router_pb2.Router())
    )
    return listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=port)
        ),
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[
                    listener_components_pb2.Filter(
                        name="envoy.filters.network.http_connection_manager",
                        typed_config=_packed(manager),
                    )
                ]
            )
        ],
    )


def route_config(
    weights: Mapping[str, int], name: str = ROUTE_NAME
) -> route_pb2.RouteConfiguration:
    """Every request on every host to ``weights``' clusters, split by weight."""
    action = route_components_pb2.RouteAction()
    for cluster_name, weight in weights.items():
        target = action.weighted_clusters.clusters.add(name=cluster_name)
        target.weight.value = weight
    route = route_components_pb2.Route(route=action)
    route.match.prefix = "/"
    host = route_components_pb2.VirtualHost(name="all", domains=["*"], routes=[route])
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=[host])


def weighted(
    listener_port: int,
    backends: Mapping[str, int],
    weights: Mapping[str, int],
    encoder: ResourceEncoder,
) -> Snapshot:
    """A snapshot: one listener routing to ``weights``' clusters, backed by ``backends``' ports."""
    messages: list[message.Message] = [listener(listener_port), route_config(weights)]
    for name in weights:
        messages += [cluster(name), endpoints(name, backends[name])]
    return Snapshot.of(messages, encoder)
