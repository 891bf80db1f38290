"""Snapshots, shared resource encoding, the wire format and the snapshot cache."""

from __future__ import annotations

import dataclasses

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2
from xds_configs import cluster, endpoints, listener, route_config, weighted

from meshplane.envoy import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshplane.kit.clock import FakeClock
from meshplane.xds import ResourceEncoder, Snapshot, SnapshotCache, node_key, replica_node_key, wire
from meshplane.xds import snapshot as xds_snapshot
from meshplane.xds.status import StatusBoard


def test_identical_content_shares_one_resource() -> None:
    """An encoder hands out the same Resource object for the same content."""
    encoder = ResourceEncoder()
    first = encoder.encode(route_config({"blue": 1}))
    second = encoder.encode(route_config({"blue": 1}))
    other = encoder.encode(route_config({"blue": 2}))
    assert first is second
    assert first.version != other.version
    assert first.name == "rds_main"
    assert first.type_url == ROUTE


def test_versions_are_content_hashes() -> None:
    """Two encoders agree on versions; the version changes only with content."""
    one = ResourceEncoder().encode(cluster("blue"))
    two = ResourceEncoder().encode(cluster("blue"))
    assert one is not two
    assert one.version == two.version
    assert len(one.version) == 16
    a = weighted(15000, {"blue": 1, "green": 2}, {"blue": 50, "green": 50}, ResourceEncoder())
    b = weighted(15000, {"blue": 1, "green": 2}, {"blue": 50, "green": 50}, ResourceEncoder())
    c = weighted(15000, {"blue": 1, "green": 2}, {"blue": 20, "green": 80}, ResourceEncoder())
    assert a == b
    assert a.version == b.version
    assert a.version != c.version
    assert a.type_version(CLUSTER) == c.type_version(CLUSTER)
    assert a.type_version(ROUTE) != c.type_version(ROUTE)


def test_framed_resource_is_the_any_envoy_expects() -> None:
    """The pre-serialized Any equals protobuf's own Any.Pack of the message."""
    message = endpoints("blue", 9001)
    resource = ResourceEncoder().encode(message)
    packed = any_pb2.Any()
    packed.Pack(message)
    response = discovery_pb2.DiscoveryResponse.FromString(
        wire.discovery_response("v1", [resource.framed], ENDPOINT, "7")
    )
    assert response.version_info == "v1"
    assert response.type_url == ENDPOINT
    assert response.nonce == "7"
    assert list(response.resources) == [packed]
    assert resource.decode() == message


def test_large_resources_use_multibyte_lengths() -> None:
    """Lengths above 127 bytes are varint-encoded correctly."""
    big = route_config({f"cluster-{i:04d}": 1 for i in range(300)})
    resource = ResourceEncoder().encode(big)
    assert len(resource.body) > 2**7 * 2**5  # a two-byte varint length
    response = discovery_pb2.DiscoveryResponse.FromString(
        wire.discovery_response("v" * 300, [resource.framed, resource.framed], ROUTE, "n")
    )
    assert len(response.resources) == 2
    assert response.resources[1].value == resource.body
    assert response.version_info == "v" * 300


def test_snapshot_groups_resources_by_type() -> None:
    """A snapshot indexes each type by resource name and lists references."""
    snapshot = Snapshot.of(
        [cluster("blue"), endpoints("blue", 1), listener(15000), route_config({"blue": 1})]
    )
    assert list(snapshot.resources(CLUSTER)) == ["blue"]
    assert list(snapshot.resources(ENDPOINT)) == ["blue"]
    assert list(snapshot.resources(LISTENER)) == ["lds_ingress"]
    assert list(snapshot.resources(ROUTE)) == ["rds_main"]
    assert snapshot.resources(CLUSTER)["blue"].references == ("blue",)
    assert snapshot.resources(LISTENER)["lds_ingress"].references == ("rds_main",)
    assert snapshot.resources(ROUTE)["rds_main"].references == ()
    assert repr(snapshot).startswith(f"Snapshot({snapshot.version}: ")


def test_duplicate_names_are_rejected() -> None:
    """Two resources of one type with one name are an error, not a silent overwrite."""
    with pytest.raises(ValueError, match=r"^duplicate .*Cluster resource 'blue'$"):
        Snapshot.of([cluster("blue"), cluster("blue")])


def test_default_node_key_adds_the_replica() -> None:
    """The default key is the node id, plus #replica when the metadata names one."""
    node = base_pb2.Node(id="mesh/demos/virtualNode/vn-a")
    assert replica_node_key(node) == "mesh/demos/virtualNode/vn-a"
    node.metadata.update({"meshplane": {"replica": "echo-0"}, "other": 1})
    assert replica_node_key(node) == "mesh/demos/virtualNode/vn-a#echo-0"
    assert node_key("mesh/demos/virtualNode/vn-a", "echo-0") == replica_node_key(node)
    odd = base_pb2.Node(id="n")
    odd.metadata.update({"meshplane": "not-a-struct"})
    assert replica_node_key(odd) == "n"


def test_cache_wakes_watchers_only_on_change() -> None:
    """set_snapshot calls the key's watchers when content changes, never for equal content."""
    cache = SnapshotCache()
    seen: list[str] = []
    unwatch = cache.watch("k", lambda s: seen.append(s.version))
    first = Snapshot.of([cluster("blue")])
    cache.set_snapshot("k", first)
    cache.set_snapshot("k", Snapshot.of([cluster("blue")]))
    cache.set_snapshot("other", Snapshot.of([cluster("green")]))
    second = Snapshot.of([cluster("green")])
    cache.set_snapshot("k", second)
    unwatch()
    cache.set_snapshot("k", first)
    assert seen == [first.version, second.version]
    assert sorted(cache.keys()) == ["k", "other"]
    cache.clear_snapshot("other")
    assert cache.snapshot("other") is None
    assert cache.snapshot("k") == first


def test_has_acked_needs_every_referenced_name() -> None:
    """A node is synced only when CDS/LDS match and every referenced EDS/RDS name is ACKed."""
    snapshot = Snapshot.of(
        [cluster("blue"), endpoints("blue", 1), listener(15000), route_config({"blue": 1})]
    )
    board = StatusBoard(FakeClock())
    events: list[object] = []
    board.subscribe(events.append)
    board.record_connected("k", base_pb2.Node(id="n"))
    for type_url in (CLUSTER, ENDPOINT, LISTENER):
        acked = {n: r.version for n, r in snapshot.resources(type_url).items()}
        board.record_sent("k", type_url, "v")
        board.record_acked("k", type_url, "v", acked)
    status = board.node("k")
    assert status is not None
    assert not status.has_acked(snapshot)
    board.record_acked("k", ROUTE, "v", {"rds_main": snapshot.resources(ROUTE)["rds_main"].version})
    status = board.node("k")
    assert status is not None
    assert status.has_acked(snapshot)
    assert status.connected_at == 1_700_000_000.0
    assert len(events) == 5


def test_a_route_configuration_is_versioned_from_its_hosts_as_its_bytes_determine() -> None:
    """Known parts give the version the bytes give; a stale part's digest gives another."""

    def config(weight: int) -> bytes:
        message = route_pb2.RouteConfiguration(name="rds")
        for name in ("a", "b"):
            host = message.virtual_hosts.add(name=name, domains=[name])
            route = host.routes.add(name=f"{name}-{weight}")
            route.match.prefix = "/"
        body: bytes = message.SerializeToString(deterministic=True)
        return body

    one, two = config(1), config(2)
    parts = xds_snapshot.parts_of(ROUTE, one)
    assert [one[p.payload : p.end] for p in parts] == [
        h.SerializeToString(deterministic=True)
        for h in route_pb2.RouteConfiguration.FromString(one).virtual_hosts
    ]
    encoder = ResourceEncoder()
    whole = encoder.encode_serialized(ROUTE, "rds", one)
    assert encoder.encode_serialized(ROUTE, "rds", one, parts=parts) is whole
    assert whole.version == xds_snapshot.content_digest(ROUTE, one)[:16]
    assert whole.version != encoder.encode_serialized(ROUTE, "rds", two).version
    stale = (parts[0], dataclasses.replace(parts[1], digest=bytes(32)))
    assert xds_snapshot.content_digest(ROUTE, one, stale) != xds_snapshot.content_digest(ROUTE, one)
