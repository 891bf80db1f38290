"""Sidecar identities: App Mesh node ids parsed as its bootstrap generator does, and defaults."""

from __future__ import annotations

import pytest

from meshplane.translate import NodeIdentity


def test_short_node_id_is_parsed() -> None:
    """``mesh/M/virtualNode/N`` (what the injector sets) names mesh, kind and name."""
    assert NodeIdentity.from_node_id("mesh/demos/virtualNode/vn-a") == NodeIdentity(
        mesh="demos", kind="virtualNode", name="vn-a"
    )


def test_arn_node_id_and_shared_mesh_owner_are_parsed() -> None:
    """The full ARN form and ``mesh@owner`` both give the same identity."""
    arn = "arn:aws:appmesh:us-west-2:111122223333:mesh/demos@444455556666/virtualGateway/vg"
    assert NodeIdentity.from_node_id(arn) == NodeIdentity(
        mesh="demos", kind="virtualGateway", name="vg"
    )


@pytest.mark.parametrize(
    "node_id",
    [
        "",
        "mesh/demos",
        "mesh/demos/virtualRouter/vr",
        "mesh//virtualNode/vn",
        "x/demos/virtualNode/a",
        "arn:aws:appmesh",
    ],
)
def test_other_node_ids_are_not_identities(node_id: str) -> None:
    """Anything that is not a node or gateway id parses to None."""
    assert NodeIdentity.from_node_id(node_id) is None


def test_defaults_follow_app_mesh() -> None:
    """Absent local facts: loopback bind, ingress 15000, egress 15001, app on its listener port."""
    node = NodeIdentity(mesh="demos", kind="virtualNode", name="vn-a")
    assert node.node_id == "mesh/demos/virtualNode/vn-a"
    assert (node.bind_address, node.egress_port, node.ingress_port(8080)) == (
        "127.0.0.1",
        15001,
        15000,
    )
    assert node.app_address(8080) == ("127.0.0.1", 8080)


def test_local_facts_override_defaults() -> None:
    """Local mode gives each listener its own bind port and app address."""
    node = NodeIdentity(
        mesh="demos",
        kind="virtualNode",
        name="vn-a",
        ingress_ports={8080: 20000},
        app_addresses={8080: ("127.0.0.1", 18080)},
    )
    assert (node.ingress_port(8080), node.app_address(8080)) == (20000, ("127.0.0.1", 18080))
    assert node.ingress_port(9090) == 15000


def test_gateway_listeners_bind_their_own_port_by_default() -> None:
    """A virtual gateway binds each listener's port, as App Mesh gateways do."""
    gateway = NodeIdentity(mesh="demos", kind="virtualGateway", name="vg")
    assert gateway.ingress_port(8088) == 8088


def test_identity_is_hashable() -> None:
    """Identities can key dictionaries even with local-fact mappings."""
    node = NodeIdentity(mesh="demos", kind="virtualNode", name="vn-a", ingress_ports={1: 2})
    assert {node: 1}[node] == 1
