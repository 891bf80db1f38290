"""The intercepted layout (behind proxy-init's iptables) next to local mode's, as outcomes."""

from __future__ import annotations

import dataclasses

from envoy.config.cluster.v3 import cluster_pb2

from meshplane.testing import routing as simulator
from meshplane.translate import build

from . import casefiles

BLUE = "cds_egress_demos_vn-echo-backend-blue_http_80"
GREEN = "cds_egress_demos_vn-echo-backend-green_http_80"


def test_intercepted_caller_routes_port_80_through_its_own_route_config() -> None:
    """vs-echo-backend:80 is served by rds_egress_http_80, split 50/50 as in local mode."""
    resources = build(*_case("intercepted-bluegreen"))
    [config] = [c for c in resources.route_configurations if c.name == "rds_egress_http_80"]
    assert simulator.route(config, "vs-echo-backend", "/").clusters == ((BLUE, 50), (GREEN, 50))


def test_dns_nodes_keep_dns_clusters_when_intercepted_but_local_mode_prefers_endpoints() -> None:
    """Registered endpoints give blue EDS in local mode; an intercepted caller resolves DNS."""
    snapshot, node = _case("intercepted-bluegreen")
    intercepted = {c.name: c.type for c in build(snapshot, node).clusters}
    local = build(snapshot, dataclasses.replace(node, intercepted=False, bind_address="127.0.0.1"))
    assert (intercepted[BLUE], intercepted[GREEN]) == (
        cluster_pb2.Cluster.LOGICAL_DNS,
        cluster_pb2.Cluster.STRICT_DNS,
    )
    assert {c.name: c.type for c in local.clusters}[BLUE] == cluster_pb2.Cluster.EDS


def test_intercepted_node_without_backends_gets_no_egress_listener() -> None:
    """Under DROP_ALL with nothing to reach, redirected connections are refused: no listener."""
    snapshot, node = _case("intercepted-bluegreen")
    backend = dataclasses.replace(node, name="vn-echo-backend-blue")
    resources = build(snapshot, backend)
    assert [listener.name for listener in resources.listeners] == ["lds_ingress_0.0.0.0_15000"]
    assert resources.warnings == ()


def test_virtual_gateway_keeps_its_layout_when_marked_intercepted() -> None:
    """App Mesh gives gateways no iptables, so the interception mark changes nothing for them."""
    snapshot, node = _case("gateway")
    marked = dataclasses.replace(node, intercepted=True)
    assert build(snapshot, marked) == build(snapshot, node)


def _case(name: str) -> tuple[casefiles.MeshSnapshot, casefiles.NodeIdentity]:
    """A case file's snapshot and sidecar."""
    case = casefiles.load(name)
    return case.snapshot, case.node
