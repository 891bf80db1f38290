"""Who a connected Envoy is: its node id and the local ports in its node metadata."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from google.protobuf import struct_pb2

from meshplane.sync import identities
from meshplane.translate.identity import NodeIdentity

NODE_ID = "mesh/demos/virtualNode/vn-blue"


def _node(meshplane: dict[str, object]) -> base_pb2.Node:
    metadata = struct_pb2.Struct()
    metadata.update({"meshplane": meshplane})
    return base_pb2.Node(id=NODE_ID, metadata=metadata)


def test_runtime_metadata_gives_the_replicas_ports() -> None:
    """The ports the runtime writes (JSON numbers, so floats) become the identity's ports."""
    node = _node({"ingress": {"80": 41231}, "app": {"80": 41230}, "egress": 41232})
    assert identities.identify(node) == NodeIdentity(
        mesh="demos",
        kind="virtualNode",
        name="vn-blue",
        egress_port=41232,
        ingress_ports={80: 41231},
        app_addresses={80: ("127.0.0.1", 41230)},
    )


def test_metadata_that_is_not_ports_is_ignored_not_a_crash() -> None:
    """Strings, fractions, non-ASCII digits and out-of-range numbers fall back to the defaults."""
    node = _node({"ingress": {"80": "x", "81": 1.5, "٣": 3}, "app": {"80": 70000}, "egress": 1e20})
    identity = identities.identify(node)
    assert identity == NodeIdentity(mesh="demos", kind="virtualNode", name="vn-blue")
    assert (identity.ingress_ports, identity.app_addresses, identity.egress_port) == ({}, {}, 15001)


def test_interception_metadata_gives_app_meshs_layout() -> None:
    """``interception: iptables`` marks the sidecar intercepted, bound to 0.0.0.0:15000/15001."""
    identity = identities.identify(_node({"interception": "iptables"}))
    assert identity == NodeIdentity(
        mesh="demos", kind="virtualNode", name="vn-blue", bind_address="0.0.0.0", intercepted=True
    )
    assert (identity.ingress_port(80), identity.egress_port) == (15000, 15001)


def test_interception_keeps_an_explicit_bind_and_ignores_other_values() -> None:
    """A ``bind`` in the metadata wins; an unknown interception value means local mode."""
    pinned = identities.identify(_node({"interception": "iptables", "bind": "10.1.2.3"}))
    assert pinned is not None
    assert (pinned.bind_address, pinned.intercepted) == ("10.1.2.3", True)
    other = identities.identify(_node({"interception": "ebpf"}))
    assert other == NodeIdentity(mesh="demos", kind="virtualNode", name="vn-blue")


def test_tcp_backend_ports_are_read_and_bad_entries_dropped() -> None:
    """``tcp`` maps a TCP backend's virtual service to its loopback port; non-ports are dropped."""
    node = _node({"egress": 41232, "tcp": {"db.demos": 41233, "bad": "x", "": 41234}})
    identity = identities.identify(node)
    assert identity is not None
    assert dict(identity.tcp_ports) == {"db.demos": 41233}
    intercepted = identities.identify(_node({"interception": "iptables", "tcp": {"db": 1}}))
    assert intercepted is not None
    assert dict(intercepted.tcp_ports) == {}


def test_netns_metadata_asks_for_registered_endpoints_only() -> None:
    """``endpoints: registered`` (``up --isolation netns``) reaches callees by EDS only."""
    netns = identities.identify(_node({"interception": "iptables", "endpoints": "registered"}))
    assert netns is not None
    assert (netns.intercepted, netns.registered_only, netns.discovery) == (
        True,
        True,
        "registered-only",
    )
    kubernetes = identities.identify(_node({"interception": "iptables"}))
    assert kubernetes is not None
    assert (kubernetes.registered_only, kubernetes.discovery) == (False, "dns-first")
    local = identities.identify(_node({"endpoints": "dns"}))
    assert local is not None
    assert (local.registered_only, local.discovery) == (False, "registered-first")
