"""ClusterLoadAssignments: where a target virtual node's replicas receive traffic.

Registered endpoints (the runtime's replicas, or Kubernetes' Ready pods) are
App Mesh's Cloud Map equivalent: the control plane pushes them over EDS.
Each assignment holds the endpoints of one node listener, sorted, so the same
replicas always give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.endpoint.v3 import endpoint_pb2

from meshplane.model.snapshot import Endpoint


def build_load_assignment(
    cluster: str, endpoints: Iterable[Endpoint], listener_port: int
) -> endpoint_pb2.ClusterLoadAssignment:
    """The assignment for one cluster: endpoints registered for ``listener_port``."""
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster)
    # Cloud Map instances differ by attributes too; Envoy needs each address once.
    chosen = sorted({(e.address, e.port) for e in endpoints if e.listener_port == listener_port})
    if chosen:
        locality = assignment.endpoints.add()
        for address, port in chosen:
            add_address(locality, address, port)
    return assignment


def build_static_assignment(
    cluster: str, address: str, port: int
) -> endpoint_pb2.ClusterLoadAssignment:
    """An inline assignment with a single address (the local app, a DNS name)."""
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster)
    add_address(assignment.endpoints.add(), address, port)
    return assignment


def add_address(locality: endpoint_pb2.LocalityLbEndpoints, address: str, port: int) -> None:
    """Append ``address:port`` as one load-balanced endpoint."""
    socket = locality.lb_endpoints.add().endpoint.address.socket_address
    socket.address = address
    socket.port_value = port
